package main

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"gatehouse/storage"
)

// inputValue reads the value of the input with the given id from a page.
func inputValue(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// registerUser signs a new user up through the /register page.
func (b *browser) registerUser(name, password string) {
	b.t.Helper()
	resp, body := b.post("/register", url.Values{"username": {name}, "password": {password}})
	wantStatus(b.t, resp, body, http.StatusSeeOther)
}

// TestAppConsole drives the console as a developer would: register an app,
// use its credentials in a code flow, rotate the secret, delete the app.
func TestAppConsole(t *testing.T) {
	srv := newTestServer(t)
	dev := newBrowser(t, srv.URL)
	dev.registerUser("dana", "developer password")

	resp, page := dev.post("/apps", url.Values{
		"name":          {"Dana's Reader"},
		"redirect_uris": {"http://127.0.0.1:9999/callback\nhttps://reader.example/cb"},
		"client_type":   {"confidential"},
	})
	wantStatus(t, resp, page, http.StatusCreated)
	id, secret := inputValue(t, page, "client-id"), inputValue(t, page, "client-secret")
	if id == "" || len(secret) != 43 {
		t.Fatalf("creation page shows client id %q and secret %q", id, secret)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("page with a secret has Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	resp, page = dev.get("/apps/" + id)
	wantStatus(t, resp, page, http.StatusOK)
	if strings.Contains(page, secret) {
		t.Fatal("the secret is shown again after creation")
	}
	if resp, page := dev.get("/apps"); !strings.Contains(page, "Dana&#39;s Reader") && !strings.Contains(page, "Dana's Reader") {
		t.Fatalf("app list (%d) lacks the new app", resp.StatusCode)
	}

	c := storage.Client{ID: id, RedirectURIs: []string{"http://127.0.0.1:9999/callback"}}
	srv.mustCreateUser(t, "alice", "correct horse battery")
	conf := srv.oauthConfig(c, secret, "offline_access", "books:read")
	ctx := context.Background()
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(ctx, authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("code flow with console credentials: %v", err)
	}

	t.Run("other users get 404", func(t *testing.T) {
		eve := newBrowser(t, srv.URL)
		eve.registerUser("eve", "eavesdropper pw")
		for _, req := range []struct {
			method, path string
			form         url.Values
		}{
			{"GET", "/apps/" + id, nil},
			{"POST", "/apps/" + id, url.Values{"name": {"Eve's now"}, "redirect_uris": {"https://evil.example/cb"}}},
			{"POST", "/apps/" + id + "/secret", url.Values{}},
			{"POST", "/apps/" + id + "/delete", url.Values{}},
		} {
			var resp *http.Response
			var body string
			if req.method == "GET" {
				resp, body = eve.get(req.path)
			} else {
				resp, body = eve.post(req.path, req.form)
			}
			if resp.StatusCode != http.StatusNotFound || strings.Contains(body, secret) {
				t.Fatalf("%s %s as another user: %d, want 404", req.method, req.path, resp.StatusCode)
			}
		}
		if got, err := srv.store.GetClient(ctx, id); err != nil || got.Name != "Dana's Reader" {
			t.Fatalf("the app changed: %+v %v", got, err)
		}
	})

	t.Run("rotate the secret", func(t *testing.T) {
		resp, page := dev.post("/apps/"+id+"/secret", url.Values{})
		wantStatus(t, resp, page, http.StatusOK)
		newSecret := inputValue(t, page, "client-secret")
		if len(newSecret) != 43 || newSecret == secret {
			t.Fatalf("rotation shows secret %q", newSecret)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
		if resp, body := tokenRequest(t, srv.URL, form, id, secret); resp.StatusCode != http.StatusUnauthorized || errorCode(body) != "invalid_client" {
			t.Fatalf("old secret after rotation: %d %s, want 401 invalid_client", resp.StatusCode, fmtErr(body))
		}
		resp, body := tokenRequest(t, srv.URL, form, id, newSecret)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("new secret: %d %s", resp.StatusCode, fmtErr(body))
		}
		tok.AccessToken = body["access_token"].(string)
	})

	t.Run("delete revokes its tokens", func(t *testing.T) {
		if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("token before deletion: %d", resp.StatusCode)
		}
		resp, body := dev.post("/apps/"+id+"/delete", url.Values{})
		wantStatus(t, resp, body, http.StatusSeeOther)
		if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token of a deleted app: %d, want 401", resp.StatusCode)
		}
		if resp, _ := dev.get("/apps/" + id); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("deleted app page: %d, want 404", resp.StatusCode)
		}
	})
}

// TestRememberedConsent: an Allow is remembered, prompt=consent asks again,
// and revoking the connection kills the app's tokens at once.
func TestRememberedConsent(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, createReg("Reader"))
	conf := srv.oauthConfig(c, secret, "offline_access", "books:read")
	b := newBrowser(t, srv.URL)
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(context.Background(), authorizedCode(t, srv, b, conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}

	// Same browser, a subset of the granted scopes: straight back with a code.
	sub := srv.oauthConfig(c, secret, "books:read")
	resp, body := b.get(sub.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if resp.StatusCode != http.StatusSeeOther || mustParseURL(t, resp.Header.Get("Location")).Query().Get("code") == "" {
		t.Fatalf("remembered consent: %d %.200s, want a redirect with a code", resp.StatusCode, body)
	}
	// prompt=consent shows the page again.
	resp, body = b.get(sub.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "consent")))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "decision") {
		t.Fatalf("prompt=consent: %d, want the consent page", resp.StatusCode)
	}
	// A scope never granted needs consent again.
	more := srv.oauthConfig(c, secret, "books:read", "books:write")
	if resp, _ := b.get(more.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); resp.StatusCode != http.StatusOK {
		t.Fatalf("new scope: %d, want the consent page", resp.StatusCode)
	}

	resp, body = b.get("/account/connections")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Reader") || !strings.Contains(body, "books:read") {
		t.Fatalf("connections page lacks the app or its scopes: %.2000s", body)
	}
	resp, body = b.post("/account/connections/"+c.ID+"/revoke", url.Values{})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("access token after revoking the connection: %d, want 401", resp.StatusCode)
	}
	if resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, c.ID, secret); resp.StatusCode != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
		t.Fatalf("refresh after revoking the connection: %d %s, want invalid_grant", resp.StatusCode, fmtErr(body))
	}
	if _, body := b.get("/account/connections"); strings.Contains(body, "Reader") {
		t.Fatal("the revoked connection is still listed")
	}
	if resp, _ := b.get(sub.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); resp.StatusCode != http.StatusOK {
		t.Fatalf("after revocation the app needs consent again; got %d", resp.StatusCode)
	}
}

// TestDynamicRegistration registers a client over RFC 7591 and uses the
// returned credentials with golang.org/x/oauth2.
func TestDynamicRegistration(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		srv := newTestServer(t)
		resp, err := http.Post(srv.URL+"/oauth2/register", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("registration endpoint without the flag: %d", resp.StatusCode)
		}
	})
	srv := newTestServer(t, "--dynamic-registration")
	var meta map[string]any
	getJSON(t, srv.URL+"/.well-known/openid-configuration", &meta)
	if meta["registration_endpoint"] != srv.URL+"/oauth2/register" {
		t.Fatalf("discovery registration_endpoint = %v", meta["registration_endpoint"])
	}
	register := func(body string) (*http.Response, map[string]any) {
		resp, err := http.Post(srv.URL+"/oauth2/register", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(readBody(t, resp)), &out); err != nil {
			t.Fatal(err)
		}
		return resp, out
	}
	for _, tc := range []struct{ body, code string }{
		{`{"client_name":"x","redirect_uris":["http://evil.example/cb"]}`, "invalid_redirect_uri"},
		{`{"client_name":"x","redirect_uris":["https://a.example/cb#frag"]}`, "invalid_redirect_uri"},
		{`{"client_name":"x","redirect_uris":["https://a.example/cb"],"grant_types":["password"]}`, "invalid_client_metadata"},
		{`{"client_name":"x","redirect_uris":["https://a.example/cb"],"scope":"admin"}`, "invalid_client_metadata"},
		{`{not json`, "invalid_client_metadata"},
	} {
		if resp, out := register(tc.body); resp.StatusCode != http.StatusBadRequest || out["error"] != tc.code {
			t.Errorf("register %s: %d %v, want 400 %s", tc.body, resp.StatusCode, out, tc.code)
		}
	}
	resp, out := register(`{"client_name":"Dynamic App","redirect_uris":["http://127.0.0.1:9999/callback"],"scope":"offline_access books:read"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %v", resp.StatusCode, out)
	}
	id, _ := out["client_id"].(string)
	secret, _ := out["client_secret"].(string)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	conf := srv.oauthConfig(storage.Client{ID: id, RedirectURIs: []string{"http://127.0.0.1:9999/callback"}}, secret, "offline_access", "books:read")
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(context.Background(), authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("code flow with dynamically registered credentials: %v", err)
	}
	if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("books: %d", resp.StatusCode)
	}
}
