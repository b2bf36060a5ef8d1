package books

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/storage"
)

// testNow is in a non-UTC zone and has nanoseconds, so responses show the
// conversion to UTC and the truncation to microseconds.
var testNow = time.Date(2026, 11, 23, 4, 22, 0, 123456789, time.FixedZone("CET", 60*60))

const testStamp = "2026-11-23T03:22:00.123456Z"

var seeded = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const seededStamp = "2025-01-02T03:04:05Z"

type userKey struct{}

// newTestServer mounts a Handler over store. The Test-User request header
// names the user a request acts for, and each scope wrapper stamps the
// Test-Guard response header, so tests see which one guarded a route.
func newTestServer(t testing.TB, store Store, logger *slog.Logger) http.Handler {
	t.Helper()
	h := New(store, func(ctx context.Context) string {
		user, _ := ctx.Value(userKey{}).(string)
		return user
	}, logger)
	h.Now = func() time.Time { return testNow }
	mux := http.NewServeMux()
	h.Mount(mux, newTestGuard("read"), newTestGuard("write"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), userKey{}, r.Header.Get("Test-User"))
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
}

func newTestGuard(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Test-Guard", scope)
			next.ServeHTTP(w, r)
		})
	}
}

type testRequest struct {
	method, target string
	user           string
	contentType    string
	body           string
}

func (tr testRequest) do(t testing.TB, srv http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(tr.method, tr.target, strings.NewReader(tr.body))
	if tr.user != "" {
		r.Header.Set("Test-User", tr.user)
	}
	if tr.contentType != "" {
		r.Header.Set("Content-Type", tr.contentType)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	return w
}

func mustDecode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var v T
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode response: %v", err)
	}
	return v
}

func newTestBook(user, title string, year *int) storage.Book {
	return storage.Book{
		ID:        storage.NewID(),
		UserID:    user,
		Title:     title,
		Year:      year,
		CreatedAt: seeded,
		UpdatedAt: seeded,
	}
}

func TestAPI(t *testing.T) {
	const jsonType = "application/json"
	tooBig := `{"title":"` + strings.Repeat("a", maxBody) + `"}`

	tests := []struct {
		name       string
		req        testRequest
		wantStatus int
		wantGuard  string
		wantError  string // the error code; "" for a success
		wantDesc   string // part of error_description
		wantHeader map[string]string
		// checkStore runs afterwards on the store, with the seeded books.
		checkStore func(t *testing.T, s *fakeStore, alice, bob storage.Book)
	}{
		{
			name:       "list",
			req:        testRequest{method: "GET", target: "/api/books"},
			wantStatus: http.StatusOK, wantGuard: "read",
		},
		{
			name:       "head list",
			req:        testRequest{method: "HEAD", target: "/api/books"},
			wantStatus: http.StatusOK, wantGuard: "read",
		},
		{
			name:       "create",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"Emma","author":"Jane Austen","year":1815}`},
			wantStatus: http.StatusCreated, wantGuard: "write",
		},
		{
			name:       "create with charset",
			req:        testRequest{method: "POST", target: "/api/books", contentType: "application/json; charset=UTF-8", body: `{"title":"Emma"}`},
			wantStatus: http.StatusCreated, wantGuard: "write",
		},
		{
			name:       "get",
			req:        testRequest{method: "GET", target: "/api/books/{alice}"},
			wantStatus: http.StatusOK, wantGuard: "read",
		},
		{
			name:       "head one",
			req:        testRequest{method: "HEAD", target: "/api/books/{alice}"},
			wantStatus: http.StatusOK, wantGuard: "read",
		},
		{
			name:       "put",
			req:        testRequest{method: "PUT", target: "/api/books/{alice}", contentType: jsonType, body: `{"title":"Dune Messiah"}`},
			wantStatus: http.StatusOK, wantGuard: "write",
		},
		{
			name:       "delete",
			req:        testRequest{method: "DELETE", target: "/api/books/{alice}"},
			wantStatus: http.StatusNoContent, wantGuard: "write",
			checkStore: func(t *testing.T, s *fakeStore, alice, _ storage.Book) {
				if _, ok := s.book(alice.ID); ok {
					t.Error("the book is still stored")
				}
			},
		},
		{
			name:       "limit 0",
			req:        testRequest{method: "GET", target: "/api/books?limit=0"},
			wantStatus: http.StatusBadRequest, wantGuard: "read", wantError: "invalid_request", wantDesc: "limit: ",
		},
		{
			name:       "limit 201",
			req:        testRequest{method: "GET", target: "/api/books?limit=201"},
			wantStatus: http.StatusBadRequest, wantGuard: "read", wantError: "invalid_request", wantDesc: "limit: ",
		},
		{
			name:       "limit abc",
			req:        testRequest{method: "GET", target: "/api/books?limit=abc"},
			wantStatus: http.StatusBadRequest, wantGuard: "read", wantError: "invalid_request", wantDesc: "limit: ",
		},
		{
			name:       "cursor not base64",
			req:        testRequest{method: "GET", target: "/api/books?cursor=%21%21"},
			wantStatus: http.StatusBadRequest, wantGuard: "read", wantError: "invalid_request", wantDesc: "cursor: ",
		},
		{
			name:       "cursor not an id",
			req:        testRequest{method: "GET", target: "/api/books?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("not-an-id"))},
			wantStatus: http.StatusBadRequest, wantGuard: "read", wantError: "invalid_request", wantDesc: "cursor: ",
		},
		{
			name:       "cursor padded",
			req:        testRequest{method: "GET", target: "/api/books?cursor=" + base64.URLEncoding.EncodeToString([]byte(storage.NewID()))},
			wantStatus: http.StatusBadRequest, wantGuard: "read", wantError: "invalid_request", wantDesc: "cursor: ",
		},
		{
			name:       "get unknown",
			req:        testRequest{method: "GET", target: "/api/books/" + storage.NewID()},
			wantStatus: http.StatusNotFound, wantGuard: "read", wantError: "not_found",
		},
		{
			name:       "get malformed id",
			req:        testRequest{method: "GET", target: "/api/books/no-such-book"},
			wantStatus: http.StatusNotFound, wantGuard: "read", wantError: "not_found",
		},
		{
			name:       "get upper-case id",
			req:        testRequest{method: "GET", target: "/api/books/{ALICE}"},
			wantStatus: http.StatusNotFound, wantGuard: "read", wantError: "not_found",
		},
		{
			name:       "put malformed id",
			req:        testRequest{method: "PUT", target: "/api/books/%2e%2e", contentType: jsonType, body: `{"title":"x"}`},
			wantStatus: http.StatusNotFound, wantGuard: "write", wantError: "not_found",
		},
		{
			name:       "delete malformed id",
			req:        testRequest{method: "DELETE", target: "/api/books/x%2Fy"},
			wantStatus: http.StatusNotFound, wantGuard: "write", wantError: "not_found",
		},
		{
			name:       "get other user's book",
			req:        testRequest{method: "GET", target: "/api/books/{bob}"},
			wantStatus: http.StatusNotFound, wantGuard: "read", wantError: "not_found",
		},
		{
			name:       "put other user's book",
			req:        testRequest{method: "PUT", target: "/api/books/{bob}", contentType: jsonType, body: `{"title":"Mine now"}`},
			wantStatus: http.StatusNotFound, wantGuard: "write", wantError: "not_found",
			checkStore: func(t *testing.T, s *fakeStore, _, bob storage.Book) {
				if got, _ := s.book(bob.ID); got.Title != bob.Title {
					t.Errorf("bob's title = %q, want %q", got.Title, bob.Title)
				}
			},
		},
		{
			name:       "delete other user's book",
			req:        testRequest{method: "DELETE", target: "/api/books/{bob}"},
			wantStatus: http.StatusNotFound, wantGuard: "write", wantError: "not_found",
			checkStore: func(t *testing.T, s *fakeStore, _, bob storage.Book) {
				if _, ok := s.book(bob.ID); !ok {
					t.Error("bob's book was deleted")
				}
			},
		},
		{
			name:       "no content type",
			req:        testRequest{method: "POST", target: "/api/books", body: `{"title":"x"}`},
			wantStatus: http.StatusUnsupportedMediaType, wantGuard: "write", wantError: "unsupported_media_type",
		},
		{
			name:       "form content type",
			req:        testRequest{method: "PUT", target: "/api/books/{alice}", contentType: "application/x-www-form-urlencoded", body: "title=x"},
			wantStatus: http.StatusUnsupportedMediaType, wantGuard: "write", wantError: "unsupported_media_type",
		},
		{
			name:       "latin-1 charset",
			req:        testRequest{method: "POST", target: "/api/books", contentType: "application/json; charset=iso-8859-1", body: `{"title":"x"}`},
			wantStatus: http.StatusUnsupportedMediaType, wantGuard: "write", wantError: "unsupported_media_type",
		},
		{
			name:       "body over 1 MiB",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: tooBig},
			wantStatus: http.StatusRequestEntityTooLarge, wantGuard: "write", wantError: "request_too_large",
		},
		{
			name:       "malformed JSON",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title" "x"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "not valid JSON: invalid character '\"' after object key (offset 10)",
		},
		{
			name:       "truncated JSON",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "not valid JSON: unexpected end (offset 9)",
		},
		{
			name:       "empty body",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "request body is empty",
		},
		{
			name:       "null body",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: "null"},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "must be a JSON object",
		},
		{
			name:       "array body",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `[{"title":"x"}]`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "must be a JSON object",
		},
		{
			name:       "invalid UTF-8",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: "{\"title\":\"\xff\"}"},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "not valid UTF-8",
		},
		{
			name:       "unknown field",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"x","isbn":"0441013597"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: `unknown field "isbn"`,
		},
		{
			name:       "trailing data",
			req:        testRequest{method: "PUT", target: "/api/books/{alice}", contentType: jsonType, body: `{"title":"x"} {"title":"y"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "data after the JSON object (offset 14)",
		},
		{
			name:       "title too long",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"` + strings.Repeat("é", maxTitle+1) + `"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "title: must be 1-300 characters",
		},
		{
			name:       "title of 300 multibyte characters",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"` + strings.Repeat("本", maxTitle) + `"}`},
			wantStatus: http.StatusCreated, wantGuard: "write",
		},
		{
			name:       "empty title",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"","author":"Anon"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "title: must be 1-300 characters",
		},
		{
			name:       "missing title",
			req:        testRequest{method: "PUT", target: "/api/books/{alice}", contentType: jsonType, body: `{"author":"Anon"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "title: ",
		},
		{
			name:       "blank title",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":" \t\u3000"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "title: must not be blank",
		},
		{
			name:       "title with NUL",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"a\u0000b"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "title: must not contain control characters",
		},
		{
			name:       "title a number",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":42}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "title: ",
		},
		{
			name:       "author too long",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"x","author":"` + strings.Repeat("ü", maxAuthor+1) + `"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "author: must be at most 200 characters",
		},
		{
			name:       "year a string",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"x","year":"x"}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "year: must be an integer",
		},
		{
			name:       "year 1e9",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"x","year":1e9}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "year: must be an integer",
		},
		{
			name:       "year 1000000000",
			req:        testRequest{method: "PUT", target: "/api/books/{alice}", contentType: jsonType, body: `{"title":"x","year":1000000000}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "year: must be an integer",
		},
		{
			name:       "year a fraction",
			req:        testRequest{method: "POST", target: "/api/books", contentType: jsonType, body: `{"title":"x","year":1999.5}`},
			wantStatus: http.StatusBadRequest, wantGuard: "write", wantError: "invalid_request", wantDesc: "year: must be an integer",
		},
		{
			name:       "patch list",
			req:        testRequest{method: "PATCH", target: "/api/books"},
			wantStatus: http.StatusMethodNotAllowed, wantError: "method_not_allowed",
			wantHeader: map[string]string{"Allow": "GET, HEAD, POST"},
		},
		{
			name:       "patch book",
			req:        testRequest{method: "PATCH", target: "/api/books/{alice}", contentType: jsonType, body: `{"title":"x"}`},
			wantStatus: http.StatusMethodNotAllowed, wantError: "method_not_allowed",
			wantHeader: map[string]string{"Allow": "GET, HEAD, PUT, DELETE"},
		},
		{
			name:       "post to a book",
			req:        testRequest{method: "POST", target: "/api/books/{alice}", contentType: jsonType, body: `{"title":"x"}`},
			wantStatus: http.StatusMethodNotAllowed, wantError: "method_not_allowed",
			wantHeader: map[string]string{"Allow": "GET, HEAD, PUT, DELETE"},
		},
		{
			name:       "path below a book",
			req:        testRequest{method: "GET", target: "/api/books/{alice}/pages"},
			wantStatus: http.StatusNotFound, wantError: "not_found",
		},
		{
			name:       "trailing slash",
			req:        testRequest{method: "GET", target: "/api/books/"},
			wantStatus: http.StatusNotFound, wantError: "not_found",
		},
		{
			name:       "no end user",
			req:        testRequest{method: "GET", target: "/api/books", user: "-"},
			wantStatus: http.StatusUnauthorized, wantGuard: "read", wantError: "invalid_token",
			wantHeader: map[string]string{"WWW-Authenticate": `Bearer realm="gatehouse", error="invalid_token"`},
		},
		{
			name:       "no end user writing",
			req:        testRequest{method: "DELETE", target: "/api/books/{alice}", user: "-"},
			wantStatus: http.StatusUnauthorized, wantGuard: "write", wantError: "invalid_token",
			checkStore: func(t *testing.T, s *fakeStore, alice, _ storage.Book) {
				if _, ok := s.book(alice.ID); !ok {
					t.Error("the book was deleted")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alice := newTestBook("alice", "Dune", nil)
			bob := newTestBook("bob", "Neuromancer", nil)
			store := newFakeStore(alice, bob)
			srv := newTestServer(t, store, nil)

			req := tt.req
			req.target = strings.NewReplacer(
				"{alice}", alice.ID, "{ALICE}", strings.ToUpper(alice.ID), "{bob}", bob.ID,
			).Replace(req.target)
			switch req.user {
			case "":
				req.user = "alice"
			case "-":
				req.user = ""
			}
			w := req.do(t, srv)

			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("Test-Guard"); got != tt.wantGuard {
				t.Errorf("guarded by %q, want %q", got, tt.wantGuard)
			}
			for k, want := range tt.wantHeader {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if tt.wantError != "" {
				e := mustDecode[errorJSON](t, w)
				if e.Error != tt.wantError {
					t.Errorf("error = %q, want %q", e.Error, tt.wantError)
				}
				if e.Description == "" || !strings.Contains(e.Description, tt.wantDesc) {
					t.Errorf("error_description = %q, want it to contain %q", e.Description, tt.wantDesc)
				}
			}
			if tt.checkStore != nil {
				tt.checkStore(t, store, alice, bob)
			}
		})
	}
}

func TestBookLifecycle(t *testing.T) {
	store := newFakeStore()
	srv := newTestServer(t, store, nil)

	w := testRequest{method: "POST", target: "/api/books", user: "alice", contentType: "application/json",
		body: `{"title":"Le Petit Prince","author":"Antoine de Saint-Exupéry","year":1943}`}.do(t, srv)
	if w.Code != http.StatusCreated {
		t.Fatalf("POST status = %d; body %s", w.Code, w.Body)
	}
	created := mustDecode[bookJSON](t, w)
	year := 1943
	want := bookJSON{
		ID:        created.ID,
		Title:     "Le Petit Prince",
		Author:    "Antoine de Saint-Exupéry",
		Year:      &year,
		CreatedAt: testStamp,
		UpdatedAt: testStamp,
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("POST body (-want +got):\n%s", diff)
	}
	if !wellFormedID(created.ID) {
		t.Errorf("id %q is not well-formed", created.ID)
	}
	location := w.Header().Get("Location")
	if location != "/api/books/"+created.ID {
		t.Errorf("Location = %q, want /api/books/%s", location, created.ID)
	}
	if got, _ := store.book(created.ID); got.UserID != "alice" {
		t.Errorf("stored for %q, want alice", got.UserID)
	}

	w = testRequest{method: "GET", target: location, user: "alice"}.do(t, srv)
	if w.Code != http.StatusOK {
		t.Fatalf("GET status = %d; body %s", w.Code, w.Body)
	}
	if diff := cmp.Diff(want, mustDecode[bookJSON](t, w)); diff != "" {
		t.Errorf("GET body (-want +got):\n%s", diff)
	}

	// PUT replaces: the author and year it leaves out are cleared.
	later := testNow.Add(time.Hour)
	h := New(store, func(context.Context) string { return "alice" }, nil)
	h.Now = func() time.Time { return later }
	mux := http.NewServeMux()
	pass := func(next http.Handler) http.Handler { return next }
	h.Mount(mux, pass, pass)
	w = testRequest{method: "PUT", target: location, contentType: "application/json", body: `{"title":"The Little Prince"}`}.do(t, mux)
	if w.Code != http.StatusOK {
		t.Fatalf("PUT status = %d; body %s", w.Code, w.Body)
	}
	replaced := bookJSON{
		ID:        created.ID,
		Title:     "The Little Prince",
		CreatedAt: testStamp,
		UpdatedAt: "2026-11-23T04:22:00.123456Z",
	}
	if diff := cmp.Diff(replaced, mustDecode[bookJSON](t, w)); diff != "" {
		t.Errorf("PUT body (-want +got):\n%s", diff)
	}
	w = testRequest{method: "GET", target: location}.do(t, mux)
	raw := w.Body.String()
	if !strings.Contains(raw, `"author":""`) || !strings.Contains(raw, `"year":null`) {
		t.Errorf("GET after PUT = %s, want author \"\" and year null present", raw)
	}

	w = testRequest{method: "DELETE", target: location}.do(t, mux)
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("DELETE = %d with %d bytes, want 204 and no body", w.Code, w.Body.Len())
	}
	w = testRequest{method: "GET", target: location}.do(t, mux)
	if w.Code != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d, want 404", w.Code)
	}
}

func TestListPages(t *testing.T) {
	var mine []storage.Book
	store := newFakeStore(newTestBook("bob", "Not alice's", nil))
	for i := range 5 {
		b := newTestBook("alice", fmt.Sprintf("Book %d", i), &i)
		// Ordered IDs, as storage.NewID makes across milliseconds.
		b.ID = fmt.Sprintf("%025d%d", 0, i)
		mine = append(mine, b)
		store.books[b.ID] = b
	}
	srv := newTestServer(t, store, nil)

	var got []string
	target := "/api/books?limit=2"
	for page := 1; ; page++ {
		if page > 3 {
			t.Fatal("more than 3 pages")
		}
		w := testRequest{method: "GET", target: target, user: "alice"}.do(t, srv)
		if w.Code != http.StatusOK {
			t.Fatalf("page %d: status = %d; body %s", page, w.Code, w.Body)
		}
		raw := w.Body.Bytes()
		p := mustDecode[pageJSON](t, w)
		for _, b := range p.Books {
			got = append(got, b.ID)
		}
		if page < 3 {
			if len(p.Books) != 2 || p.NextCursor == "" {
				t.Fatalf("page %d: %d books, next_cursor %q; want 2 books and a cursor", page, len(p.Books), p.NextCursor)
			}
			target = "/api/books?limit=2&cursor=" + p.NextCursor
			continue
		}
		if bytes.Contains(raw, []byte("next_cursor")) {
			t.Errorf("last page has next_cursor: %s", raw)
		}
		break
	}
	var want []string
	for _, b := range mine {
		want = append(want, b.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("IDs across pages (-want +got):\n%s", diff)
	}

	if first := mustDecode[pageJSON](t, testRequest{method: "GET", target: "/api/books", user: "alice"}.do(t, srv)); len(first.Books) != 5 || first.NextCursor != "" {
		t.Errorf("default page: %d books, next_cursor %q; want all 5 and none", len(first.Books), first.NextCursor)
	}
}

func TestListEmpty(t *testing.T) {
	srv := newTestServer(t, newFakeStore(), nil)
	w := testRequest{method: "GET", target: "/api/books", user: "alice"}.do(t, srv)
	if got := strings.TrimSpace(w.Body.String()); got != `{"books":[]}` {
		t.Errorf("body = %s, want {\"books\":[]}", got)
	}
}

func TestListDefaultLimit(t *testing.T) {
	store := newFakeStore()
	for range defaultLimit + 1 {
		b := newTestBook("alice", "x", nil)
		store.books[b.ID] = b
	}
	srv := newTestServer(t, store, nil)
	p := mustDecode[pageJSON](t, testRequest{method: "GET", target: "/api/books", user: "alice"}.do(t, srv))
	if len(p.Books) != defaultLimit || p.NextCursor == "" {
		t.Errorf("%d books, next_cursor %q; want %d and a cursor", len(p.Books), p.NextCursor, defaultLimit)
	}
}

func TestServerError(t *testing.T) {
	const secret = "disk on fire"
	id := storage.NewID()
	reqs := []testRequest{
		{method: "GET", target: "/api/books"},
		{method: "POST", target: "/api/books", contentType: "application/json", body: `{"title":"x"}`},
		{method: "GET", target: "/api/books/" + id},
		{method: "PUT", target: "/api/books/" + id, contentType: "application/json", body: `{"title":"x"}`},
		{method: "DELETE", target: "/api/books/" + id},
	}
	for _, req := range reqs {
		t.Run(req.method+" "+req.target, func(t *testing.T) {
			var logs bytes.Buffer
			store := newFakeStore()
			store.fail = errors.New(secret)
			srv := newTestServer(t, store, slog.New(slog.NewJSONHandler(&logs, nil)))
			req.user = "alice"
			req.target += "?access_token=t0ken"
			w := req.do(t, srv)

			if w.Code != http.StatusInternalServerError {
				t.Fatalf("status = %d, want 500", w.Code)
			}
			if strings.Contains(w.Body.String(), secret) {
				t.Errorf("response reveals the cause: %s", w.Body)
			}
			want := errorJSON{Error: "server_error", Description: "internal server error"}
			if diff := cmp.Diff(want, mustDecode[errorJSON](t, w)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], secret) || !strings.Contains(lines[0], `"level":"ERROR"`) {
				t.Errorf("log = %q, want one error record with the cause", lines)
			}
			if strings.Contains(logs.String(), "t0ken") {
				t.Errorf("log contains the access token: %s", logs.String())
			}
		})
	}
}

func TestWellFormedID(t *testing.T) {
	for range 100 {
		if id := storage.NewID(); !wellFormedID(id) {
			t.Fatalf("storage.NewID() = %q, not well-formed", id)
		}
	}
	for _, id := range []string{"", "0", strings.Repeat("0", idLen+1), strings.Repeat("i", idLen), strings.Repeat("A", idLen)} {
		if wellFormedID(id) {
			t.Errorf("wellFormedID(%q) = true", id)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	id := storage.NewID()
	got, err := decodeCursor(encodeCursor(id))
	if err != nil || got != id {
		t.Errorf("decodeCursor(encodeCursor(%q)) = %q, %v", id, got, err)
	}
}

// BenchmarkListBooks is a page served from the cache: the books have not
// changed since the last list.
func BenchmarkListBooks(b *testing.B) {
	benchmarkListBooks(b, func(*fakeStore) {})
}

// BenchmarkListBooksMiss is a page read and encoded again: every list
// follows a write.
func BenchmarkListBooksMiss(b *testing.B) {
	benchmarkListBooks(b, func(s *fakeStore) {
		s.mu.Lock()
		s.changes++
		s.mu.Unlock()
	})
}

func benchmarkListBooks(b *testing.B, between func(*fakeStore)) {
	store := newFakeStore()
	for range 100 {
		bk := newTestBook("alice", "A book of some length", nil)
		store.books[bk.ID] = bk
	}
	srv := newTestServer(b, store, nil)
	req := testRequest{method: "GET", target: "/api/books?limit=20", user: "alice"}
	b.ReportAllocs()
	for b.Loop() {
		between(store)
		if w := req.do(b, srv); w.Code != http.StatusOK {
			b.Fatalf("status = %d", w.Code)
		}
	}
}
