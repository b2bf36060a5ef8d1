package books

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"gatehouse/storage"
)

// Store is the part of storage.Store the books API uses. Every method is
// scoped to the owner: another user's book is storage.ErrNotFound.
type Store interface {
	CreateBook(ctx context.Context, b storage.Book) error
	GetBook(ctx context.Context, userID, id string) (storage.Book, error) // storage.ErrNotFound
	// ListBooks returns up to limit books with an ID greater than afterID,
	// ordered by ID.
	ListBooks(ctx context.Context, userID, afterID string, limit int) ([]storage.Book, error)
	UpdateBook(ctx context.Context, b storage.Book) error    // storage.ErrNotFound
	DeleteBook(ctx context.Context, userID, id string) error // storage.ErrNotFound
	// BookChanges counts the writes to userID's books; storage.ErrNotFound
	// when the user is gone.
	BookChanges(ctx context.Context, userID string) (int64, error)
}

// Handler serves the books API.
type Handler struct {
	Store Store
	// UserID returns the end user the request's verified access token acts
	// for, or "" when there is none.
	UserID func(ctx context.Context) string
	Logger *slog.Logger
	Now    func() time.Time
	// Changes, when set, returns userID's BookChanges if the request has
	// read it already (the server's token check reads it in the token's
	// statement); otherwise the handler reads it from Store.
	Changes func(ctx context.Context, userID string) (int64, bool)

	pages *pageCache
}

// New returns a Handler that reads the clock with time.Now. A nil logger
// discards.
func New(store Store, userID func(context.Context) string, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{Store: store, UserID: userID, Logger: logger, Now: time.Now, pages: newPageCache()}
}

// Mount registers the API on mux. read guards the GET routes (HEAD comes
// with them) and write guards the routes that change books; the server
// passes its bearer-token middlewares for books:read and books:write.
func (h *Handler) Mount(mux *http.ServeMux, read, write func(http.Handler) http.Handler) {
	mux.Handle("GET /api/books", read(http.HandlerFunc(h.list)))
	mux.Handle("POST /api/books", write(http.HandlerFunc(h.create)))
	mux.Handle("GET /api/books/{id}", read(http.HandlerFunc(h.get)))
	mux.Handle("PUT /api/books/{id}", write(http.HandlerFunc(h.update)))
	mux.Handle("DELETE /api/books/{id}", write(http.HandlerFunc(h.delete)))

	// Without these ServeMux would answer other methods and unknown
	// sub-paths itself, in plain text; the API promises JSON errors.
	mux.Handle("/api/books", h.methodNotAllowed("GET, HEAD, POST"))
	mux.Handle("/api/books/{id}", h.methodNotAllowed("GET, HEAD, PUT, DELETE"))
	mux.HandleFunc("/api/books/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, storage.ErrNotFound)
	})
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	after, err := decodeCursor(q.Get("cursor"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page, err := h.page(r.Context(), user, pageKey{after: after, limit: limit})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writePage(w, page)
}

// page returns the encoded page k of user's books, from the cache while
// the user's books have not changed since it was read. The count is read
// before the books, so a page is never older than the count it is cached
// with; a user already gone has no count, and no page is cached.
func (h *Handler) page(ctx context.Context, user string, k pageKey) ([]byte, error) {
	var n int64
	var err error
	cacheable := false
	if h.Changes != nil {
		n, cacheable = h.Changes(ctx, user)
	}
	if !cacheable {
		n, err = h.Store.BookChanges(ctx, user)
		cacheable = err == nil
	}
	switch {
	case cacheable:
		if page, ok := h.pages.get(user, n, k); ok {
			return page, nil
		}
	case !errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("list books: %w", err)
	}
	// One book more than the page tells whether another page follows.
	books, err := h.Store.ListBooks(ctx, user, k.after, k.limit+1)
	if err != nil {
		return nil, fmt.Errorf("list books: %w", err)
	}
	var next string
	if len(books) > k.limit {
		books = books[:k.limit]
		next = encodeCursor(books[k.limit-1].ID)
	}
	page := appendPage(make([]byte, 0, 64+192*len(books)), books, next)
	if cacheable {
		h.pages.put(user, n, k, page)
	}
	return page, nil
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	user, ok := h.user(w, r)
	if !ok {
		return
	}
	in, err := readBook(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	now := h.now()
	b := storage.Book{
		ID:        storage.NewID(),
		UserID:    user,
		Title:     in.Title,
		Author:    in.Author,
		Year:      in.Year,
		CreatedAt: now,
		UpdatedAt: now,
	}
	if err := h.Store.CreateBook(r.Context(), b); err != nil {
		h.writeError(w, r, fmt.Errorf("create book: %w", err))
		return
	}
	w.Header().Set("Location", "/api/books/"+b.ID)
	writeJSON(w, http.StatusCreated, newBookJSON(b))
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	user, id, ok := h.target(w, r)
	if !ok {
		return
	}
	b, err := h.Store.GetBook(r.Context(), user, id)
	if err != nil {
		h.writeError(w, r, fmt.Errorf("get book %q: %w", id, err))
		return
	}
	writeJSON(w, http.StatusOK, newBookJSON(b))
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	user, id, ok := h.target(w, r)
	if !ok {
		return
	}
	in, err := readBook(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// The response carries created_at, which only the stored book knows.
	b, err := h.Store.GetBook(r.Context(), user, id)
	if err != nil {
		h.writeError(w, r, fmt.Errorf("get book %q: %w", id, err))
		return
	}
	b.Title, b.Author, b.Year = in.Title, in.Author, in.Year
	b.UpdatedAt = h.now()
	if err := h.Store.UpdateBook(r.Context(), b); err != nil {
		h.writeError(w, r, fmt.Errorf("update book %q: %w", id, err))
		return
	}
	writeJSON(w, http.StatusOK, newBookJSON(b))
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	user, id, ok := h.target(w, r)
	if !ok {
		return
	}
	if err := h.Store.DeleteBook(r.Context(), user, id); err != nil {
		h.writeError(w, r, fmt.Errorf("delete book %q: %w", id, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, &methodError{allow: allow})
	})
}

// user returns the user the request acts for. The bearer middleware already
// refuses tokens without an end user, so "" means a wiring mistake; it is
// answered like a bad token rather than serving books that belong to no one.
func (h *Handler) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := h.UserID(r.Context())
	if id == "" {
		h.writeError(w, r, errNoUser)
		return "", false
	}
	return id, true
}

// now is truncated to microseconds, the precision PostgreSQL keeps, so the
// times in a write's response equal those a later read returns.
func (h *Handler) now() time.Time {
	return h.Now().UTC().Truncate(time.Microsecond)
}

// target reads the caller and the id of a /api/books/{id} request,
// answering itself when either is missing. An id that storage.NewID could
// not have made names no book, so it is a 404 without a query.
func (h *Handler) target(w http.ResponseWriter, r *http.Request) (user, id string, ok bool) {
	if user, ok = h.user(w, r); !ok {
		return "", "", false
	}
	if id = r.PathValue("id"); !wellFormedID(id) {
		h.writeError(w, r, storage.ErrNotFound)
		return "", "", false
	}
	return user, id, true
}
