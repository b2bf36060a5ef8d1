package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"gatehouse/clients"
)

// Tokens name Gatehouse, so secret scanners can tell whose they are, and
// tokens issued under fosite's own prefixes, before the change, keep
// working until they expire.
func TestTokenPrefixes(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	conf := srv.oauthConfig(c, secret, "offline_access", "books:read")
	v := oauth2.GenerateVerifier()
	code := authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery")
	if !strings.HasPrefix(code, "gatehouse_ac_") {
		t.Errorf("code %.16s…, want the prefix gatehouse_ac_", code)
	}
	tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	// The contract fixes the token response's "bearer" (RFC 6749 §5.1:
	// case-insensitive); introspection says "Bearer".
	if tok.TokenType != "bearer" {
		t.Errorf("token_type %q, want bearer as the contract gives it", tok.TokenType)
	}
	if !strings.HasPrefix(tok.AccessToken, "gatehouse_at_") || !strings.HasPrefix(tok.RefreshToken, "gatehouse_rt_") {
		t.Fatalf("tokens %.16s… and %.16s…, want the prefixes gatehouse_at_ and gatehouse_rt_", tok.AccessToken, tok.RefreshToken)
	}

	legacy := "ory_at_" + strings.TrimPrefix(tok.AccessToken, "gatehouse_at_")
	if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", legacy, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("books with the access token under fosite's prefix: %d, want 200", resp.StatusCode)
	}
	if got := introspect(t, srv.URL, legacy, c.ID, secret); got["active"] != true {
		t.Fatalf("introspection under fosite's prefix: %v", got)
	}
	// A prefix alone changes nothing: a token of one kind under another
	// kind's prefix is still refused.
	swapped := "gatehouse_rt_" + strings.TrimPrefix(tok.AccessToken, "gatehouse_at_")
	if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", swapped, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("books with an access token under the refresh prefix: %d, want 401", resp.StatusCode)
	}

	refreshed, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: "ory_rt_" + strings.TrimPrefix(tok.RefreshToken, "gatehouse_rt_")}).Token()
	if err != nil {
		t.Fatalf("refresh with the token under fosite's prefix: %v", err)
	}
	if !strings.HasPrefix(refreshed.RefreshToken, "gatehouse_rt_") {
		t.Fatalf("rotated refresh token %.16s…, want the prefix gatehouse_rt_", refreshed.RefreshToken)
	}
}
