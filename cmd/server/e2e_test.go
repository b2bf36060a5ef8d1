package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/clients"
)

// TestAuthorizationCodeFlow is the whole spine: a user signs in and
// consents in a browser, golang.org/x/oauth2 exchanges the code with PKCE,
// every books endpoint answers, and the refresh token rotates.
func TestAuthorizationCodeFlow(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	conf := srv.oauthConfig(c, secret, "openid", "offline_access", "books:read", "books:write")

	verifier := oauth2.GenerateVerifier()
	state := newState(t)
	b := newBrowser(t, srv.URL)
	back := b.signInAndAuthorize(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), "alice", "correct horse battery", "allow")
	q := back.Query()
	if got := back.Scheme + "://" + back.Host + back.Path; got != c.RedirectURIs[0] {
		t.Fatalf("redirected to %s, want %s", got, c.RedirectURIs[0])
	}
	if q.Get("state") != state || q.Get("code") == "" || q.Get("iss") != srv.URL {
		t.Fatalf("redirect query %v: want code, state %q and iss %q", q, state, srv.URL)
	}

	ctx := context.Background()
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil || tok.Expiry.IsZero() {
		t.Fatalf("token response lacks refresh token, id_token or expiry: %+v", tok)
	}

	books := srv.URL + "/api/books"
	resp, created := api(t, http.MethodPost, books, tok.AccessToken, map[string]any{"title": "Dune", "author": "Frank Herbert", "year": 1965})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, created)
	}
	id, _ := created["id"].(string)
	if resp.Header.Get("Location") != "/api/books/"+id {
		t.Fatalf("Location %q, want /api/books/%s", resp.Header.Get("Location"), id)
	}
	resp, list := api(t, http.MethodGet, books, tok.AccessToken, nil)
	if resp.StatusCode != http.StatusOK || len(list["books"].([]any)) != 1 {
		t.Fatalf("list: %d %v", resp.StatusCode, list)
	}
	resp, got := api(t, http.MethodGet, books+"/"+id, tok.AccessToken, nil)
	if resp.StatusCode != http.StatusOK || got["title"] != "Dune" {
		t.Fatalf("read: %d %v", resp.StatusCode, got)
	}
	resp, got = api(t, http.MethodPut, books+"/"+id, tok.AccessToken, map[string]any{"title": "Dune Messiah", "author": "Frank Herbert", "year": 1969})
	if resp.StatusCode != http.StatusOK || got["title"] != "Dune Messiah" {
		t.Fatalf("replace: %d %v", resp.StatusCode, got)
	}

	// Refresh: a new pair, the old refresh token is dead, and so is the
	// access token issued with it.
	expired := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
	fresh, err := conf.TokenSource(ctx, expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.RefreshToken == "" {
		t.Fatal("refresh did not rotate both tokens")
	}
	if resp, _ := api(t, http.MethodGet, books, tok.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("access token of a rotated refresh token: %d, want 401", resp.StatusCode)
	}
	resp, _ = api(t, http.MethodDelete, books+"/"+id, fresh.AccessToken, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp, _ := api(t, http.MethodGet, books+"/"+id, fresh.AccessToken, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("read after delete: %d, want 404", resp.StatusCode)
	}

	// Presenting the rotated refresh token again revokes the whole grant.
	resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, c.ID, secret)
	if resp.StatusCode != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %s, want 400 invalid_grant", resp.StatusCode, fmtErr(body))
	}
	if resp, _ := api(t, http.MethodGet, books, fresh.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token of a grant whose refresh token was replayed: %d, want 401", resp.StatusCode)
	}
}

// authorizedCode runs the browser part of a flow and returns the code.
func authorizedCode(t *testing.T, srv *testServer, b *browser, conf *oauth2.Config, verifier string, user, pass string) string {
	t.Helper()
	back := b.signInAndAuthorize(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(verifier)), user, pass, "allow")
	code := back.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", back)
	}
	return code
}

func TestFlowFailures(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	srv.mustCreateUser(t, "bob", "tr0ub4dor&3 is weak")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	conf := srv.oauthConfig(c, secret, "books:read", "books:write")
	ctx := context.Background()

	t.Run("wrong client secret", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		code := authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery")
		resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {conf.RedirectURL}, "code_verifier": {v}}, c.ID, "not-the-secret")
		if resp.StatusCode != http.StatusUnauthorized || errorCode(body) != "invalid_client" {
			t.Fatalf("got %d %s, want 401 invalid_client", resp.StatusCode, fmtErr(body))
		}
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("WWW-Authenticate = %q, want a Basic challenge", resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("code used twice", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		code := authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery")
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("fresh token: %d", resp.StatusCode)
		}
		_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(v))
		var re *oauth2.RetrieveError
		if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("second exchange: %v, want invalid_grant", err)
		}
		if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token from a replayed code: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("unregistered redirect_uri does not redirect", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		bad := *conf
		bad.RedirectURL = "https://evil.example/callback"
		resp, body := b.get(bad.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("got %d Location=%q, want 400 without redirect", resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || strings.Contains(body, "evil.example") {
			t.Fatalf("want an HTML page that does not link to the unregistered URI; got %s", resp.Header.Get("Content-Type"))
		}
	})

	t.Run("unknown client does not redirect", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		bad := *conf
		bad.ClientID = "no-such-client"
		resp, _ := b.get(bad.AuthCodeURL(newState(t)))
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Fatalf("got %d Location=%q, want 400 without redirect", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("deny", func(t *testing.T) {
		state := newState(t)
		// alice allowed these scopes in the cases above; prompt=consent asks again.
		authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "consent"))
		back := newBrowser(t, srv.URL).signInAndAuthorize(authURL, "alice", "correct horse battery", "deny")
		q := back.Query()
		if q.Get("error") != "access_denied" || q.Get("state") != state || q.Get("code") != "" || q.Get("iss") != srv.URL {
			t.Fatalf("deny redirected with %v, want error=access_denied, the state and iss", q)
		}
	})

	t.Run("read-only token cannot write", func(t *testing.T) {
		ro := srv.oauthConfig(c, secret, "books:read")
		v := oauth2.GenerateVerifier()
		tok, err := ro.Exchange(ctx, authorizedCode(t, srv, newBrowser(t, srv.URL), ro, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := api(t, http.MethodPost, srv.URL+"/api/books", tok.AccessToken, map[string]any{"title": "x"})
		if resp.StatusCode != http.StatusForbidden || errorCode(body) != "insufficient_scope" || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="books:write"`) {
			t.Fatalf("got %d %v %q, want 403 insufficient_scope naming books:write", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("another user's book is not found", func(t *testing.T) {
		va, vb := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
		ta, err := conf.Exchange(ctx, authorizedCode(t, srv, newBrowser(t, srv.URL), conf, va, "alice", "correct horse battery"), oauth2.VerifierOption(va))
		if err != nil {
			t.Fatal(err)
		}
		tb, err := conf.Exchange(ctx, authorizedCode(t, srv, newBrowser(t, srv.URL), conf, vb, "bob", "tr0ub4dor&3 is weak"), oauth2.VerifierOption(vb))
		if err != nil {
			t.Fatal(err)
		}
		_, book := api(t, http.MethodPost, srv.URL+"/api/books", ta.AccessToken, map[string]any{"title": "Alice's"})
		u := srv.URL + "/api/books/" + book["id"].(string)
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			var body any
			if m == http.MethodPut {
				body = map[string]any{"title": "Bob's now"}
			}
			if resp, out := api(t, m, u, tb.AccessToken, body); resp.StatusCode != http.StatusNotFound || errorCode(out) != "not_found" {
				t.Fatalf("%s with bob's token: %d %v, want 404 not_found", m, resp.StatusCode, out)
			}
		}
		if resp, _ := api(t, http.MethodGet, u, ta.AccessToken, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("alice still reads her book: %d", resp.StatusCode)
		}
	})

	t.Run("no token", func(t *testing.T) {
		resp, body := api(t, http.MethodGet, srv.URL+"/api/books", "", nil)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="gatehouse", resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/api/books"` {
			t.Fatalf("got %d %q %v, want 401 with a Bearer challenge naming only the resource metadata", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	})

	t.Run("malformed JSON names the field", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		tok, err := conf.Exchange(ctx, authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := api(t, http.MethodPost, srv.URL+"/api/books", tok.AccessToken, `{"title": "ok", "year": "nineteen"}`)
		if resp.StatusCode != http.StatusBadRequest || errorCode(body) != "invalid_request" || !strings.Contains(body["error_description"].(string), "year") {
			t.Fatalf("got %d %v, want 400 invalid_request naming year", resp.StatusCode, body)
		}
	})
}

// TestCodeRedemptionRace redeems one code from 20 goroutines at once:
// exactly one gets tokens, the others invalid_grant, none a server error.
func TestCodeRedemptionRace(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	conf := srv.oauthConfig(c, secret, "books:read")
	v := oauth2.GenerateVerifier()
	code := authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery")

	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	codes := make([]string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {conf.RedirectURL}, "code_verifier": {v}}, c.ID, secret)
			statuses[i], codes[i] = resp.StatusCode, errorCode(body)
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for i := range n {
		switch {
		case statuses[i] == http.StatusOK:
			wins++
		case statuses[i] == http.StatusBadRequest && codes[i] == "invalid_grant":
		default:
			t.Errorf("request %d: %d %s, want 200 or 400 invalid_grant", i, statuses[i], codes[i])
		}
	}
	if wins != 1 {
		t.Fatalf("%d requests got tokens, want exactly 1", wins)
	}
}
