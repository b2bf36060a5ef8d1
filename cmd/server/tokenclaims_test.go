package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"gatehouse/clients"
	"gatehouse/storage"
)

// TestAccessTokenClaims checks that an access token is checked the same
// from its row's claim columns as from the stored request, which rows
// written before the columns existed still carry alone, and that an
// expired row stops at once.
func TestAccessTokenClaims(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	conf := srv.oauthConfig(c, secret, "offline_access", "books:read")
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(context.Background(), authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, sig, _ := strings.Cut(tok.AccessToken, ".")
	row, err := srv.store.GetToken(ctx, storage.KindAccess, sig)
	if err != nil {
		t.Fatal(err)
	}
	want := &storage.TokenClaims{Username: "alice", Scopes: []string{"offline_access", "books:read"}}
	if diff := cmp.Diff(want, row.Claims); diff != "" {
		t.Fatalf("claims of the access token's row (-want +got):\n%s", diff)
	}
	fromColumns := introspect(t, srv.URL, tok.AccessToken, c.ID, secret)
	if fromColumns["active"] != true || fromColumns["username"] != "alice" {
		t.Fatalf("introspection: %v", fromColumns)
	}

	replace := func(t *testing.T, edit func(*storage.Token)) {
		t.Helper()
		r := row
		edit(&r)
		if err := srv.store.DeleteToken(ctx, r.Kind, r.Signature); err != nil {
			t.Fatal(err)
		}
		if err := srv.store.CreateToken(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("row without claims", func(t *testing.T) {
		replace(t, func(r *storage.Token) { r.Claims = nil })
		if diff := cmp.Diff(fromColumns, introspect(t, srv.URL, tok.AccessToken, c.ID, secret)); diff != "" {
			t.Errorf("introspection from the stored request (-columns +request):\n%s", diff)
		}
		if resp, out := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("books API: %d %v", resp.StatusCode, out)
		}
	})

	t.Run("expired", func(t *testing.T) {
		replace(t, func(r *storage.Token) { r.ExpiresAt = time.Now().Add(-time.Second) })
		if got := introspect(t, srv.URL, tok.AccessToken, c.ID, secret); got["active"] != false {
			t.Errorf("introspection of an expired token: %v", got)
		}
		resp, out := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil)
		if resp.StatusCode != http.StatusUnauthorized || errorCode(out) != "invalid_token" || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("books API with an expired token: %d %v %q", resp.StatusCode, out, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("forged", func(t *testing.T) {
		replace(t, func(*storage.Token) {})
		key, _, _ := strings.Cut(tok.AccessToken, ".")
		forged := key + "x." + sig
		if got := introspect(t, srv.URL, forged, c.ID, secret); got["active"] != false {
			t.Errorf("introspection of a token whose HMAC fails: %v", got)
		}
		if resp, out := api(t, http.MethodGet, srv.URL+"/api/books", forged, nil); resp.StatusCode != http.StatusUnauthorized || errorCode(out) != "invalid_token" {
			t.Errorf("books API with a token whose HMAC fails: %d %v", resp.StatusCode, out)
		}
		if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("books API with the real token: %d", resp.StatusCode)
		}
	})
}
