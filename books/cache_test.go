package books

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"gatehouse/storage"
)

// listTitles lists a page for user and returns its titles and next cursor.
func listTitles(t *testing.T, srv http.Handler, user, query string) ([]string, string) {
	t.Helper()
	p := mustDecode[pageJSON](t, testRequest{method: "GET", target: "/api/books" + query, user: user}.do(t, srv))
	var titles []string
	for _, b := range p.Books {
		titles = append(titles, b.Title)
	}
	return titles, p.NextCursor
}

func wantList(t *testing.T, what string, srv http.Handler, user, query string, want ...string) string {
	t.Helper()
	got, next := listTitles(t, srv, user, query)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: titles %q, want %q", what, got, want)
	}
	return next
}

func TestListFollowsWritesThroughTheAPI(t *testing.T) {
	srv := newTestServer(t, newFakeStore(), nil)
	wantList(t, "empty", srv, "alice", "")
	wantList(t, "empty, again", srv, "alice", "")

	w := testRequest{method: "POST", target: "/api/books", user: "alice", contentType: "application/json", body: `{"title":"Dune"}`}.do(t, srv)
	created := mustDecode[bookJSON](t, w)
	wantList(t, "after create", srv, "alice", "", "Dune")

	testRequest{method: "PUT", target: "/api/books/" + created.ID, user: "alice", contentType: "application/json", body: `{"title":"Emma"}`}.do(t, srv)
	wantList(t, "after update", srv, "alice", "", "Emma")

	testRequest{method: "DELETE", target: "/api/books/" + created.ID, user: "alice"}.do(t, srv)
	wantList(t, "after delete", srv, "alice", "")
}

func TestListNeverServesAnotherUsersPage(t *testing.T) {
	srv := newTestServer(t, newFakeStore(newTestBook("alice", "Alice's", nil), newTestBook("bob", "Bob's", nil)), nil)
	for range 2 {
		wantList(t, "alice", srv, "alice", "?limit=5", "Alice's")
		wantList(t, "bob", srv, "bob", "?limit=5", "Bob's")
	}
}

func TestListPagesFromTheCache(t *testing.T) {
	store := newFakeStore()
	for i := range 3 {
		b := newTestBook("alice", fmt.Sprintf("Book %d", i), nil)
		b.ID = fmt.Sprintf("%025d%d", 0, i)
		store.books[b.ID] = b
	}
	srv := newTestServer(t, store, nil)
	for range 2 {
		next := wantList(t, "first page", srv, "alice", "?limit=2", "Book 0", "Book 1")
		wantList(t, "second page", srv, "alice", "?limit=2&cursor="+next, "Book 2")
		wantList(t, "a larger page", srv, "alice", "?limit=3", "Book 0", "Book 1", "Book 2")
	}
}

// A deleted user has no count; a page cached at a count they once had
// must not be served.
func TestListOfADeletedUserIsNotCached(t *testing.T) {
	store := newFakeStore(newTestBook("alice", "Dune", nil))
	srv := newTestServer(t, store, nil)
	wantList(t, "before", srv, "alice", "", "Dune")
	store.deleteUser("alice")
	wantList(t, "after deleting alice", srv, "alice", "")
}

func TestPageCacheKeepsTheNewestCount(t *testing.T) {
	c := newPageCache()
	k := pageKey{limit: 20}
	c.put("alice", 2, k, []byte("two"))
	c.put("alice", 1, k, []byte("one, from a request that raced a write"))
	if got, ok := c.get("alice", 2, k); !ok || !bytes.Equal(got, []byte("two")) {
		t.Errorf("get at count 2 = %q, %v; want two", got, ok)
	}
	if _, ok := c.get("alice", 1, k); ok {
		t.Error("get at count 1 found a page")
	}
	c.put("alice", 3, pageKey{limit: 5}, []byte("three"))
	if _, ok := c.get("alice", 3, k); ok {
		t.Error("a page cached at count 2 is served at count 3")
	}
}

func TestPageCacheIsBounded(t *testing.T) {
	c := newPageCache()
	page := make([]byte, 1<<20)
	for i := range 2 * maxCachedBytes / len(page) {
		c.put(storage.NewID(), int64(i), pageKey{limit: 20}, page)
		if c.bytes > maxCachedBytes {
			t.Fatalf("after %d pages the cache holds %d bytes, more than %d", i+1, c.bytes, maxCachedBytes)
		}
	}
	c.put("alice", 1, pageKey{limit: 20}, page)
	if _, ok := c.get("alice", 1, pageKey{limit: 20}); !ok {
		t.Error("the page put last is not there")
	}
}

// The server's token check reads the count with the token; the handler
// then uses it instead of reading it again, and follows it all the same.
func TestListUsesTheCountTheRequestRead(t *testing.T) {
	store := newFakeStore(newTestBook("alice", "Dune", nil))
	var read atomic.Int64
	h := New(store, func(context.Context) string { return "alice" }, nil)
	h.Changes = func(_ context.Context, userID string) (int64, bool) {
		return read.Load(), userID == "alice"
	}
	mux := http.NewServeMux()
	h.Mount(mux, newTestGuard("read"), newTestGuard("write"))

	wantList(t, "first", mux, "alice", "", "Dune")
	b := newTestBook("alice", "Emma", nil)
	b.ID = strings.Repeat("z", idLen) // after Dune's
	store.mu.Lock()
	store.books[b.ID] = b // behind the handler's back, as another instance writes
	store.mu.Unlock()
	wantList(t, "from the cache, the count unchanged", mux, "alice", "", "Dune")
	read.Add(1)
	wantList(t, "after the count moved", mux, "alice", "", "Dune", "Emma")
	if store.changesReads != 0 {
		t.Errorf("the handler read the count from the store %d times, want 0", store.changesReads)
	}
}
