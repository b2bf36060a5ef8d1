package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/audit"
)

// secrets collects every value that must never reach a log line.
type secrets struct {
	t      *testing.T
	values map[string]string // value -> what it is
}

func (s *secrets) add(what, v string) {
	s.t.Helper()
	if v == "" {
		s.t.Fatalf("no %s to look for", what)
	}
	s.values[v] = what
	// An opaque token is key.signature; the signature alone is what the
	// database stores and finds the token by, so it must not leak either.
	for part := range strings.SplitSeq(v, ".") {
		if len(part) >= 16 && part != v {
			s.values[part] = what + " (part)"
		}
	}
}

func (s *secrets) token(what string, tok *oauth2.Token) {
	s.add(what+" access token", tok.AccessToken)
	if tok.RefreshToken != "" {
		s.add(what+" refresh token", tok.RefreshToken)
	}
	if id, ok := tok.Extra("id_token").(string); ok {
		s.add(what+" ID token", id)
	}
}

// cookies records every cookie the server set on resp.
func (s *secrets) cookies(resp *http.Response) {
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			s.add("cookie "+c.Name, c.Value)
		}
	}
}

// TestLogsHoldNoSecrets drives every endpoint, failures included, with the
// logger at debug level, then looks for every password, secret, code,
// token and cookie value in what was logged.
func TestLogsHoldNoSecrets(t *testing.T) {
	srv := newTestServer(t, "--dynamic-registration")
	s := &secrets{t: t, values: map[string]string{}}
	const password, wrongPassword = "correct horse battery", "incorrect horse battery"
	s.add("password", password)
	s.add("wrong password", wrongPassword)

	// Registration, a failed and a good sign-in, through the pages.
	b := newBrowser(t, srv.URL)
	resp, body := b.post("/register", url.Values{"username": {"alice"}, "password": {password}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	s.cookies(resp)
	resp, body = b.post("/logout", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {wrongPassword}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {password}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	s.cookies(resp)

	// The console: an app, then a rotated secret.
	resp, body = b.post("/apps", url.Values{"name": {"Leaky"}, "redirect_uris": {"http://127.0.0.1:9999/callback"}, "client_type": {"confidential"}})
	wantStatus(t, resp, body, http.StatusCreated)
	clientID := inputValue(t, body, "client-id")
	s.add("first client secret", inputValue(t, body, "client-secret"))
	resp, body = b.post("/apps/"+clientID+"/secret", nil)
	wantStatus(t, resp, body, http.StatusOK)
	secret := inputValue(t, body, "client-secret")
	s.add("client secret", secret)

	c, err := srv.store.GetClient(t.Context(), clientID)
	if err != nil {
		t.Fatal(err)
	}
	conf := srv.oauthConfig(c, secret, "openid", "profile", "offline_access", "books:read", "books:write")
	v := oauth2.GenerateVerifier()
	code := authorizedCode(t, srv, b, conf, v, "alice", password)
	s.add("code", code)
	s.add("PKCE verifier", v)
	tok, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	s.token("first", tok)

	// A replayed code, a wrong secret, a wrong verifier.
	resp, out := tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {conf.RedirectURL}, "code_verifier": {v}}, clientID, secret)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed code: %d %s", resp.StatusCode, fmtErr(out))
	}
	v2 := oauth2.GenerateVerifier()
	code2 := authorizedCode(t, srv, b, conf, v2, "alice", password)
	s.add("second code", code2)
	resp, out = tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code2}, "redirect_uri": {conf.RedirectURL}, "code_verifier": {v2}}, clientID, "wrong-"+secret)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d %s", resp.StatusCode, fmtErr(out))
	}
	resp, out = tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code2}, "redirect_uri": {conf.RedirectURL}, "code_verifier": {oauth2.GenerateVerifier()}}, clientID, secret)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong verifier: %d %s", resp.StatusCode, fmtErr(out))
	}

	// A fresh grant, refreshed; the rotated refresh token replayed.
	v3 := oauth2.GenerateVerifier()
	code3 := authorizedCode(t, srv, b, conf, v3, "alice", password)
	s.add("third code", code3)
	tok, err = conf.Exchange(t.Context(), code3, oauth2.VerifierOption(v3))
	if err != nil {
		t.Fatal(err)
	}
	s.token("second", tok)
	fresh, err := conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err != nil {
		t.Fatal(err)
	}
	s.token("refreshed", fresh)

	// Resource, UserInfo, introspection, revocation.
	resp, book := api(t, http.MethodPost, srv.URL+"/api/books", fresh.AccessToken, map[string]any{"title": "Dune"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create book: %d %v", resp.StatusCode, book)
	}
	api(t, http.MethodGet, srv.URL+"/api/books", fresh.AccessToken, nil)
	api(t, http.MethodGet, srv.URL+"/api/books?access_token="+fresh.AccessToken, "", nil)
	api(t, http.MethodGet, srv.URL+"/userinfo", fresh.AccessToken, nil)
	api(t, http.MethodGet, srv.URL+"/api/books", fresh.AccessToken+"x", nil)
	for _, endpoint := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
		for _, tk := range []string{fresh.AccessToken, fresh.RefreshToken} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+endpoint, strings.NewReader(url.Values{"token": {tk}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(clientID, secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readBody(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", endpoint, resp.StatusCode)
			}
		}
	}
	resp, out = tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, clientID, secret)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed refresh token: %d %s", resp.StatusCode, fmtErr(out))
	}

	// Dynamic registration hands out a secret too.
	resp, reg := api(t, http.MethodPost, srv.URL+"/oauth2/register", "", map[string]any{"client_name": "Dynamic", "redirect_uris": []string{"https://dyn.example/cb"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("dynamic registration: %d %v", resp.StatusCode, reg)
	}
	dynSecret, _ := reg["client_secret"].(string)
	s.add("registered client secret", dynSecret)

	// The connected-apps page, and revoking the grant from it.
	resp, body = b.get("/account/connections")
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = b.post("/account/connections/"+clientID+"/revoke", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	for _, ck := range b.client.Jar.Cookies(mustParseURL(t, srv.URL)) {
		s.add("cookie "+ck.Name, ck.Value)
	}

	logs := srv.logs.String()
	if !strings.Contains(logs, `"level":"DEBUG"`) && !strings.Contains(logs, `"msg":"request"`) {
		t.Fatalf("the logs look empty; the test proves nothing:\n%.2000s", logs)
	}
	for v, what := range s.values {
		if strings.Contains(logs, v) {
			i := strings.Index(logs, v)
			t.Errorf("the logs hold the %s: …%s…", what, logs[max(0, i-200):min(len(logs), i+len(v)+50)])
		}
	}
	t.Logf("%d secret values looked for in %d bytes of logs", len(s.values), len(logs))

	// The audit log saw the same actions; no field of it may hold a
	// secret either.
	events, err := srv.store.ListAuditEvents(t.Context(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) < 7 {
		t.Fatalf("only %d audit events for every action above; the check proves little", len(events))
	}
	raw, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	for v, what := range s.values {
		if i := strings.Index(string(raw), v); i >= 0 {
			t.Errorf("the audit log holds the %s: …%s…", what, raw[max(0, i-200):min(len(raw), i+len(v)+50)])
		}
	}
}
