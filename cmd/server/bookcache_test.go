package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/storage"
	"gatehouse/storage/storagetest"
)

// Instances keep the book pages they served in memory (see
// books/cache.go). TestMultiInstanceBookPages writes books through one
// instance, its store, and behind the API's back while the other has the
// page cached, and checks that the very next list shows the write.
func TestMultiInstanceBookPages(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "gatehouse.db")
		testBookPages(t, startInstance(t, db), startInstance(t, db))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		if os.Getenv(storagetest.PostgresEnv) == "" {
			t.Skip(storagetest.PostgresEnv + " not set")
		}
		a, b := startPair(t)
		testBookPages(t, a, b)
	})
}

func testBookPages(t *testing.T, a, b *instance) {
	aliceUser := a.mustCreateUser(t, "alice", alicePassword)
	a.mustCreateUser(t, "bob", alicePassword)
	c, secret := a.mustCreateClient(t, createReg("Reader"))
	alice, bob := bookToken(t, a, c, secret, "alice"), bookToken(t, a, c, secret, "bob")

	wantTitles(t, "alice, empty", b, alice, "", 20)
	wantTitles(t, "alice, empty, from the cache", b, alice, "", 20)

	resp, created := api(t, http.MethodPost, a.base+"/api/books", alice, map[string]any{"title": "Dune"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create on A: %d %v", resp.StatusCode, created)
	}
	id := created["id"].(string)
	wantTitles(t, "created on A", b, alice, "", 20, "Dune")
	wantTitles(t, "bob, after alice's page was cached", b, bob, "", 20)

	book, err := a.store.GetBook(t.Context(), aliceUser.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	book.Title, book.UpdatedAt = "Dune Messiah", time.Now()
	if err := a.store.UpdateBook(t.Context(), book); err != nil {
		t.Fatal(err)
	}
	wantTitles(t, "updated in A's store", b, alice, "", 20, "Dune Messiah")

	if resp, body := api(t, http.MethodDelete, a.base+"/api/books/"+id, alice, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete on A: %d %v", resp.StatusCode, body)
	}
	wantTitles(t, "deleted on A", b, alice, "", 20)

	// Pages after a cursor follow writes too.
	for _, title := range []string{"One", "Two", "Three"} {
		mustAddBook(t, a.store, aliceUser.ID, title)
	}
	cursor := wantTitles(t, "first page", b, alice, "", 2, "One", "Two")
	wantTitles(t, "second page", b, alice, cursor, 2, "Three")
	wantTitles(t, "second page, from the cache", b, alice, cursor, 2, "Three")
	mustAddBook(t, a.store, aliceUser.ID, "Four")
	wantTitles(t, "second page after a write on A", b, alice, cursor, 2, "Three", "Four")
	wantTitles(t, "bob, after alice's pages were cached", b, bob, "", 20)

	if err := a.store.DeleteUser(t.Context(), aliceUser.ID); err != nil {
		t.Fatal(err)
	}
	if resp, body := api(t, http.MethodGet, b.base+"/api/books?limit=2", alice, nil); resp.StatusCode == http.StatusOK {
		t.Fatalf("alice deleted on A, her list on B: %d %v", resp.StatusCode, body)
	}
}

// bookToken signs name in on a and returns its access token.
func bookToken(t *testing.T, a *instance, c storage.Client, secret, name string) string {
	t.Helper()
	conf := multiConf(c, secret, a, a, "offline_access", "books:read", "books:write")
	v := oauth2.GenerateVerifier()
	code := authorizedCode(t, a.testServer, newBrowser(t, a.base), conf, v, name, alicePassword)
	access, _ := mustTokens(t, a.base, codeForm(conf, code, v), c, secret)
	return access
}

func mustAddBook(t *testing.T, s storage.Store, userID, title string) {
	t.Helper()
	now := time.Now()
	if err := s.CreateBook(t.Context(), storage.Book{ID: storage.NewID(), UserID: userID, Title: title, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// IDs order books by the millisecond they were made in.
	time.Sleep(2 * time.Millisecond)
}

// wantTitles lists a page on in and checks its titles; it returns the
// page's next cursor.
func wantTitles(t *testing.T, what string, in *instance, token, cursor string, limit int, want ...string) string {
	t.Helper()
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	resp, body := api(t, http.MethodGet, in.base+"/api/books?"+q.Encode(), token, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v", what, resp.StatusCode, body)
	}
	var got []string
	books, _ := body["books"].([]any)
	for _, b := range books {
		got = append(got, b.(map[string]any)["title"].(string))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: titles %q, want %q", what, got, want)
	}
	next, _ := body["next_cursor"].(string)
	return next
}
