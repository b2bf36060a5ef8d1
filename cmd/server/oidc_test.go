package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"gatehouse/clients"
)

// TestOpenIDConnect verifies an ID token the way a relying party does:
// go-oidc discovers the issuer, fetches the JWKS and checks the signature,
// audience and nonce; UserInfo answers for the same subject.
func TestOpenIDConnect(t *testing.T) {
	srv := newTestServer(t)
	alice := srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	ctx := context.Background()

	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	conf := srv.oauthConfig(c, secret, oidc.ScopeOpenID, "profile")
	conf.Endpoint = provider.Endpoint()
	verifier := provider.Verifier(&oidc.Config{ClientID: c.ID})

	idToken := func(t *testing.T) (*oidc.IDToken, *oauth2.Token, string) {
		t.Helper()
		nonce, pkce := newState(t), oauth2.GenerateVerifier()
		back := newBrowser(t, srv.URL).signInAndAuthorize(conf.AuthCodeURL(newState(t), oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce)), "alice", "correct horse battery", "allow")
		tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		id, err := verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify ID token: %v", err)
		}
		return id, tok, nonce
	}

	id, tok, nonce := idToken(t)
	if id.Nonce != nonce || id.Subject != alice.ID || id.Issuer != srv.URL {
		t.Fatalf("ID token nonce=%q sub=%q iss=%q, want %q %q %q", id.Nonce, id.Subject, id.Issuer, nonce, alice.ID, srv.URL)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var claims struct {
		AuthTime          int64    `json:"auth_time"`
		PreferredUsername string   `json:"preferred_username"`
		AMR               []string `json:"amr"`
	}
	if err := id.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.AuthTime == 0 || time.Since(time.Unix(claims.AuthTime, 0)) > time.Minute || claims.PreferredUsername != "alice" {
		t.Fatalf("claims %+v: want a recent auth_time and preferred_username alice", claims)
	}
	if !slices.Equal(claims.AMR, []string{"pwd"}) {
		t.Fatalf("amr %q, want [pwd] after a password sign-in", claims.AMR)
	}

	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != alice.ID {
		t.Fatalf("userinfo sub %q, want %q", info.Subject, alice.ID)
	}

	t.Run("audience is checked", func(t *testing.T) {
		other := provider.Verifier(&oidc.Config{ClientID: "another-client"})
		if _, err := other.Verify(ctx, tok.Extra("id_token").(string)); err == nil {
			t.Fatal("an ID token for one client verified for another")
		}
	})

	t.Run("key rotation keeps old tokens verifiable", func(t *testing.T) {
		if err := srv.oauth.RotateSigningKey(ctx); err != nil {
			t.Fatal(err)
		}
		var jwks struct{ Keys []struct{ Kid string } }
		getJSON(t, srv.URL+"/.well-known/jwks.json", &jwks)
		if len(jwks.Keys) != 2 {
			t.Fatalf("JWKS has %d keys after rotation, want the new and the old", len(jwks.Keys))
		}
		// A fresh verifier fetches the new JWKS: both the old and the new
		// tokens verify.
		fresh, err := oidc.NewProvider(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		v := fresh.Verifier(&oidc.Config{ClientID: c.ID})
		if _, err := v.Verify(ctx, tok.Extra("id_token").(string)); err != nil {
			t.Fatalf("token signed before rotation: %v", err)
		}
		id2, _, _ := idToken(t)
		if _, err := v.Verify(ctx, id2.AccessTokenHash); err == nil {
			t.Fatal("garbage verified")
		}
	})
}

func getJSON(t *testing.T, u string, v any) *http.Response {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", u, err)
	}
	return resp
}

func TestDiscovery(t *testing.T) {
	srv := newTestServer(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		var m map[string]any
		getJSON(t, srv.URL+path, &m)
		if m["issuer"] != srv.URL || m["token_endpoint"] != srv.URL+"/oauth2/token" || m["authorization_response_iss_parameter_supported"] != true {
			t.Fatalf("%s: %v", path, m)
		}
		for key, want := range map[string][]string{
			"response_types_supported":                         {"code"},
			"code_challenge_methods_supported":                 {"S256"},
			"grant_types_supported":                            {"authorization_code", "refresh_token", "client_credentials", clients.GrantDeviceCode},
			"token_endpoint_auth_methods_supported":            {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
			"dpop_signing_alg_values_supported":                {"ES256", "PS256", "RS256", "EdDSA"},
			"token_endpoint_auth_signing_alg_values_supported": {"ES256", "PS256", "RS256", "EdDSA"},
			"scopes_supported":                                 {"openid", "profile", "email", "offline_access", "books:read", "books:write"},
		} {
			var got []string
			for _, v := range m[key].([]any) {
				got = append(got, v.(string))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %s = %v, want %v", path, key, got, want)
			}
		}
		if _, ok := m["registration_endpoint"]; ok {
			t.Errorf("%s lists registration_endpoint although dynamic registration is off", path)
		}
	}
}

func TestClientCredentials(t *testing.T) {
	srv := newTestServer(t)
	c, secret := srv.mustCreateClient(t, clients.Registration{Name: "Machine", GrantTypes: []string{"client_credentials"}})
	ctx := context.Background()
	cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: secret, TokenURL: srv.URL + "/oauth2/token"}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Fatal("client credentials must not yield a refresh token")
	}
	// The token is live, but the books API needs an end user behind it.
	resp, body := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil)
	if resp.StatusCode != http.StatusForbidden || errorCode(body) != "insufficient_scope" {
		t.Fatalf("books with a machine token: %d %v, want 403 insufficient_scope", resp.StatusCode, body)
	}
	cc.Scopes = []string{"books:read"}
	_, err = cc.Token(ctx)
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_scope" {
		t.Fatalf("client credentials asking for books:read: %v, want invalid_scope", err)
	}
}

// introspect calls the introspection endpoint as the given client.
func introspect(t *testing.T, base, token, clientID, secret string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(readBody(t, resp)), &out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %v", resp.StatusCode, out)
	}
	return out
}

func revoke(t *testing.T, base, token, clientID, secret string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

func TestRevocationAndIntrospection(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	other, otherSecret := srv.mustCreateClient(t, clients.Registration{Name: "Other", RedirectURIs: []string{"http://127.0.0.1:9999/other"}})
	conf := srv.oauthConfig(c, secret, "offline_access", "books:read")
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(context.Background(), authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}

	got := introspect(t, srv.URL, tok.AccessToken, c.ID, secret)
	if got["active"] != true || got["client_id"] != c.ID || got["scope"] != "offline_access books:read" || got["token_type"] != "Bearer" {
		t.Fatalf("introspection of a live token: %v", got)
	}
	if exp, _ := got["exp"].(float64); time.Until(time.Unix(int64(exp), 0)) < 59*time.Minute {
		t.Fatalf("exp %v is not about an hour away", got["exp"])
	}
	if got := introspect(t, srv.URL, tok.AccessToken, other.ID, otherSecret); got["active"] != false || len(got) != 1 {
		t.Fatalf("another client introspecting the token learned %v, want only active:false", got)
	}
	// Another client's revocation is answered like one of an unknown token
	// (RFC 7009 §2.2), so it learns nothing, and the token lives on.
	if resp, body := revoke(t, srv.URL, tok.AccessToken, other.ID, otherSecret); resp.StatusCode != http.StatusOK {
		t.Fatalf("another client's revocation: %d %s, want 200", resp.StatusCode, body)
	}
	if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("token after another client's revocation attempt: %d, want it still working", resp.StatusCode)
	}
	if resp, body := revoke(t, srv.URL, tok.AccessToken, c.ID, "wrong"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("revocation with a wrong secret: %d %q %s, want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}

	if resp, body := revoke(t, srv.URL, tok.RefreshToken, c.ID, secret); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	for _, token := range []string{tok.AccessToken, tok.RefreshToken} {
		if got := introspect(t, srv.URL, token, c.ID, secret); got["active"] != false {
			t.Fatalf("introspection after revocation: %v", got)
		}
	}
	if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("books after revocation: %d, want 401", resp.StatusCode)
	}
	// RFC 7009: revoking an unknown or already revoked token is not an error.
	if resp, body := revoke(t, srv.URL, "not-a-token", c.ID, secret); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoking garbage: %d %s, want 200", resp.StatusCode, body)
	}
}

func TestPKCEAndRefreshRules(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	pub, _ := srv.mustCreateClient(t, clients.Registration{Name: "Native", Public: true, RedirectURIs: []string{"http://127.0.0.1:9999/cb"}})
	conf := srv.oauthConfig(pub, "", "offline_access", "books:read")
	ctx := context.Background()

	authorizeFails := func(t *testing.T, opts ...oauth2.AuthCodeOption) url.Values {
		t.Helper()
		b := newBrowser(t, srv.URL)
		back := b.signInAndAuthorize(conf.AuthCodeURL(newState(t), opts...), "alice", "correct horse battery", "allow")
		if back.Query().Get("code") != "" {
			t.Fatalf("got a code, want an error: %s", back)
		}
		return back.Query()
	}
	t.Run("public client without PKCE", func(t *testing.T) {
		if q := authorizeFails(t); q.Get("error") != "invalid_request" {
			t.Fatalf("error %q, want invalid_request", q.Get("error"))
		}
	})
	t.Run("plain PKCE", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		q := authorizeFails(t, oauth2.SetAuthURLParam("code_challenge", v), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		if q.Get("error") != "invalid_request" {
			t.Fatalf("error %q, want invalid_request", q.Get("error"))
		}
	})
	t.Run("wrong verifier, then no verifier", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		code := authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery")
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Fatal("wrong verifier accepted")
		}
		if _, err := conf.Exchange(ctx, code); err == nil {
			t.Fatal("a retry without a verifier passed after a failed attempt")
		}
	})

	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(ctx, authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("public client with PKCE: %v", err)
	}
	t.Run("refresh by another client", func(t *testing.T) {
		other, otherSecret := srv.mustCreateClient(t, clients.Registration{Name: "Other", RedirectURIs: []string{"http://127.0.0.1:9999/other"}})
		resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, other.ID, otherSecret)
		if resp.StatusCode != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
			t.Fatalf("got %d %s, want 400 invalid_grant", resp.StatusCode, fmtErr(body))
		}
	})
	t.Run("scope escalation on refresh", func(t *testing.T) {
		resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {pub.ID}, "scope": {"books:read books:write"}}, "", "")
		if resp.StatusCode != http.StatusBadRequest || errorCode(body) != "invalid_scope" {
			t.Fatalf("got %d %s, want 400 invalid_scope", resp.StatusCode, fmtErr(body))
		}
	})
	t.Run("twenty racing refreshes, one winner", func(t *testing.T) {
		const n = 20
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, start := 0, make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {pub.ID}}, "", "")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case resp.StatusCode == http.StatusOK:
					wins++
				case resp.StatusCode != http.StatusBadRequest || errorCode(body) != "invalid_grant":
					t.Errorf("racing refresh: %d %s, want 200 or 400 invalid_grant", resp.StatusCode, fmtErr(body))
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d refreshes got new tokens, want exactly 1", wins)
		}
	})
}

func TestServerFlags(t *testing.T) {
	t.Run("require-pkce", func(t *testing.T) {
		srv := newTestServer(t, "--require-pkce")
		srv.mustCreateUser(t, "alice", "correct horse battery")
		c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
		conf := srv.oauthConfig(c, secret, "books:read")
		back := newBrowser(t, srv.URL).signInAndAuthorize(conf.AuthCodeURL(newState(t)), "alice", "correct horse battery", "allow")
		if back.Query().Get("error") != "invalid_request" {
			t.Fatalf("confidential client without PKCE under --require-pkce: %s", back)
		}
	})
	for _, allowed := range []bool{false, true} {
		name := "query token refused by default"
		args := []string{}
		want := http.StatusUnauthorized
		if allowed {
			name, args, want = "query token with --allow-query-token", []string{"--allow-query-token"}, http.StatusOK
		}
		t.Run(name, func(t *testing.T) {
			srv := newTestServer(t, args...)
			srv.mustCreateUser(t, "alice", "correct horse battery")
			c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
			conf := srv.oauthConfig(c, secret, "books:read")
			v := oauth2.GenerateVerifier()
			tok, err := conf.Exchange(context.Background(), authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
			if err != nil {
				t.Fatal(err)
			}
			if resp, body := api(t, http.MethodGet, srv.URL+"/api/books?access_token="+url.QueryEscape(tok.AccessToken), "", nil); resp.StatusCode != want {
				t.Fatalf("got %d %v, want %d", resp.StatusCode, body, want)
			}
		})
	}
	t.Run("lifetimes", func(t *testing.T) {
		srv := newTestServer(t, "--access-token-ttl", "5m")
		c, secret := srv.mustCreateClient(t, clients.Registration{Name: "Machine", GrantTypes: []string{"client_credentials"}})
		resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %d Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		if exp, _ := body["expires_in"].(float64); exp < 290 || exp > 300 {
			t.Fatalf("expires_in %v, want about 300", body["expires_in"])
		}
	})
}
