package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gatehouse/books"
	"gatehouse/storage"
)

// Config is what the endpoint needs from the server.
type Config struct {
	Store books.Store
	// Identity returns the end user and the granted scopes of the
	// request's verified access token.
	Identity func(r *http.Request) (userID string, scopes []string)
	// Denied answers a request whose token lacks scope, with a 403
	// insufficient_scope challenge.
	Denied func(w http.ResponseWriter, r *http.Request, scope string)
	// ResourceMetadata is the URL of the endpoint's RFC 9728 metadata.
	ResourceMetadata string
	Logger           *slog.Logger
	Now              func() time.Time
	Version          string
}

// maxBody caps a JSON-RPC message; a tool's arguments are a few fields.
const maxBody = 1 << 20

// toolScopes is the scope each tool needs.
var toolScopes = map[string]string{
	"list_books":  "books:read",
	"get_book":    "books:read",
	"add_book":    "books:write",
	"update_book": "books:write",
	"delete_book": "books:write",
}

// New returns the /mcp handler.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &tools{store: cfg.Store, logger: cfg.Logger, now: cfg.Now}
	server := sdk.NewServer(&sdk.Implementation{Name: "gatehouse-books", Title: "Gatehouse books", Version: cfg.Version}, &sdk.ServerOptions{
		Instructions: "The signed-in user's books: list, read, add, change and delete them.",
		Logger:       cfg.Logger,
	})
	t.register(server)
	transport := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return server }, &sdk.StreamableHTTPOptions{
		Logger:              cfg.Logger,
		MaxRequestBodyBytes: maxBody,
		SessionTimeout:      30 * time.Minute,
	})
	// The transport binds each session to the user who opened it and
	// passes the user to the tools; the token itself was verified before
	// this handler runs.
	verified := auth.RequireBearerToken(func(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		user, scopes := cfg.Identity(r)
		if user == "" {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: user, Scopes: scopes}, nil
	}, &auth.RequireBearerTokenOptions{ResourceMetadataURL: cfg.ResourceMetadata, AllowMissingExpiration: true})
	return checkScopes(cfg, verified(transport))
}

// checkScopes refuses a tool call whose token lacks the tool's scope with
// an HTTP 403 challenge, as the MCP authorization spec asks, so the client
// can step up; the JSON-RPC message is read, then handed on unchanged.
func checkScopes(cfg Config, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, "The request body is too large or could not be read.", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		_, scopes := cfg.Identity(r)
		for _, name := range calledTools(body) {
			if need, ok := toolScopes[name]; ok && !slices.Contains(scopes, need) {
				cfg.Denied(w, r, need)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// calledTools names the tools a JSON-RPC message (or batch) calls.
// Anything unreadable is left for the transport to answer.
func calledTools(body []byte) []string {
	type call struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	var calls []call
	if body = bytes.TrimSpace(body); len(body) > 0 && body[0] == '[' {
		if json.Unmarshal(body, &calls) != nil {
			return nil
		}
	} else {
		var c call
		if json.Unmarshal(body, &c) != nil {
			return nil
		}
		calls = []call{c}
	}
	var names []string
	for _, c := range calls {
		if c.Method == "tools/call" {
			names = append(names, c.Params.Name)
		}
	}
	return names
}

// tools are the books as MCP tools, each acting for the session's user.
type tools struct {
	store  books.Store
	logger *slog.Logger
	now    func() time.Time
}

// Book is a book as the tools return it, as the REST API does.
type Book struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Author    string `json:"author"`
	Year      *int   `json:"year"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func newBook(b storage.Book) Book {
	return Book{ID: b.ID, Title: b.Title, Author: b.Author, Year: b.Year,
		CreatedAt: b.CreatedAt.UTC().Format(time.RFC3339Nano), UpdatedAt: b.UpdatedAt.UTC().Format(time.RFC3339Nano)}
}

type listIn struct {
	Limit  int    `json:"limit,omitempty" jsonschema:"how many books to return, 1-200 (default 50)"`
	Cursor string `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page, to continue from it"`
}

type listOut struct {
	Books      []Book `json:"books"`
	NextCursor string `json:"next_cursor,omitempty" jsonschema:"pass as cursor to get the next page; absent on the last page"`
}

type idIn struct {
	ID string `json:"id" jsonschema:"the book's id"`
}

type addIn struct {
	Title  string `json:"title" jsonschema:"1-300 characters"`
	Author string `json:"author,omitempty" jsonschema:"at most 200 characters"`
	Year   *int   `json:"year,omitempty" jsonschema:"year of publication, -9999 to 9999"`
}

type updateIn struct {
	ID     string  `json:"id" jsonschema:"the book's id"`
	Title  *string `json:"title,omitempty" jsonschema:"new title, 1-300 characters; absent keeps the old one"`
	Author *string `json:"author,omitempty" jsonschema:"new author, at most 200 characters; absent keeps the old one"`
	Year   *int    `json:"year,omitempty" jsonschema:"new year; absent keeps the old one"`
}

type deleteOut struct {
	Deleted string `json:"deleted"`
}

func (t *tools) register(s *sdk.Server) {
	readOnly := &sdk.ToolAnnotations{ReadOnlyHint: true}
	sdk.AddTool(s, &sdk.Tool{Name: "list_books", Description: "List the user's books, a page at a time, oldest first. Needs books:read.", Annotations: readOnly}, t.list)
	sdk.AddTool(s, &sdk.Tool{Name: "get_book", Description: "Get one of the user's books by id. Needs books:read.", Annotations: readOnly}, t.get)
	sdk.AddTool(s, &sdk.Tool{Name: "add_book", Description: "Add a book to the user's list. Needs books:write."}, t.add)
	sdk.AddTool(s, &sdk.Tool{Name: "update_book", Description: "Change the given fields of one of the user's books. Needs books:write.", Annotations: &sdk.ToolAnnotations{IdempotentHint: true}}, t.update)
	sdk.AddTool(s, &sdk.Tool{Name: "delete_book", Description: "Delete one of the user's books. Needs books:write.", Annotations: &sdk.ToolAnnotations{DestructiveHint: new(true), IdempotentHint: true}}, t.delete)
}

// errNotFound is what a tool says of another user's book and of a missing
// one alike.
var errNotFound = errors.New("no book with this id")

// user is the session's user; a call without one never gets here, since
// the transport refuses requests without verified token information.
func user(req *sdk.CallToolRequest) (string, error) {
	if req.Extra == nil || req.Extra.TokenInfo == nil || req.Extra.TokenInfo.UserID == "" {
		return "", errors.New("this call carries no signed-in user")
	}
	return req.Extra.TokenInfo.UserID, nil
}

// storeError turns a storage failure into what the tool reports: not
// found as such, anything else logged and hidden.
func (t *tools) storeError(ctx context.Context, op string, err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound
	}
	t.logger.ErrorContext(ctx, "mcp tool", "op", op, "err", err)
	return errors.New("the books could not be reached; try again")
}

func (t *tools) list(ctx context.Context, req *sdk.CallToolRequest, in listIn) (*sdk.CallToolResult, listOut, error) {
	uid, err := user(req)
	if err != nil {
		return nil, listOut{}, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = books.DefaultLimit
	}
	if limit < 1 || limit > books.MaxLimit {
		return nil, listOut{}, fmt.Errorf("limit must be from 1 to %d", books.MaxLimit)
	}
	after, err := books.ParseCursor(in.Cursor)
	if err != nil {
		return nil, listOut{}, err
	}
	bs, err := t.store.ListBooks(ctx, uid, after, limit+1)
	if err != nil {
		return nil, listOut{}, t.storeError(ctx, "list", err)
	}
	out := listOut{Books: []Book{}}
	if len(bs) > limit {
		bs = bs[:limit]
		out.NextCursor = books.Cursor(bs[len(bs)-1].ID)
	}
	for _, b := range bs {
		out.Books = append(out.Books, newBook(b))
	}
	return nil, out, nil
}

func (t *tools) get(ctx context.Context, req *sdk.CallToolRequest, in idIn) (*sdk.CallToolResult, Book, error) {
	uid, err := user(req)
	if err != nil {
		return nil, Book{}, err
	}
	if !books.WellFormedID(in.ID) {
		return nil, Book{}, errNotFound
	}
	b, err := t.store.GetBook(ctx, uid, in.ID)
	if err != nil {
		return nil, Book{}, t.storeError(ctx, "get", err)
	}
	return nil, newBook(b), nil
}

func (t *tools) add(ctx context.Context, req *sdk.CallToolRequest, in addIn) (*sdk.CallToolResult, Book, error) {
	uid, err := user(req)
	if err != nil {
		return nil, Book{}, err
	}
	if err := books.CheckBook(in.Title, in.Author, in.Year); err != nil {
		return nil, Book{}, err
	}
	now := t.now()
	b := storage.Book{ID: storage.NewID(), UserID: uid, Title: in.Title, Author: in.Author, Year: in.Year, CreatedAt: now, UpdatedAt: now}
	if err := t.store.CreateBook(ctx, b); err != nil {
		return nil, Book{}, t.storeError(ctx, "add", err)
	}
	return nil, newBook(b), nil
}

func (t *tools) update(ctx context.Context, req *sdk.CallToolRequest, in updateIn) (*sdk.CallToolResult, Book, error) {
	uid, err := user(req)
	if err != nil {
		return nil, Book{}, err
	}
	if !books.WellFormedID(in.ID) {
		return nil, Book{}, errNotFound
	}
	b, err := t.store.GetBook(ctx, uid, in.ID)
	if err != nil {
		return nil, Book{}, t.storeError(ctx, "update", err)
	}
	if in.Title != nil {
		b.Title = *in.Title
	}
	if in.Author != nil {
		b.Author = *in.Author
	}
	if in.Year != nil {
		b.Year = in.Year
	}
	if err := books.CheckBook(b.Title, b.Author, b.Year); err != nil {
		return nil, Book{}, err
	}
	b.UpdatedAt = t.now()
	if err := t.store.UpdateBook(ctx, b); err != nil {
		return nil, Book{}, t.storeError(ctx, "update", err)
	}
	return nil, newBook(b), nil
}

func (t *tools) delete(ctx context.Context, req *sdk.CallToolRequest, in idIn) (*sdk.CallToolResult, deleteOut, error) {
	uid, err := user(req)
	if err != nil {
		return nil, deleteOut{}, err
	}
	if !books.WellFormedID(in.ID) {
		return nil, deleteOut{}, errNotFound
	}
	if err := t.store.DeleteBook(ctx, uid, in.ID); err != nil {
		return nil, deleteOut{}, t.storeError(ctx, "delete", err)
	}
	return nil, deleteOut{Deleted: in.ID}, nil
}
