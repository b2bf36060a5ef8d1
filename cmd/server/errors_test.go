package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"gatehouse/clients"
)

// TestErrorResponses covers every error code each endpoint can answer,
// with the status and headers the RFCs name.
func TestErrorResponses(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	web, webSecret := srv.mustCreateClient(t, clients.Registration{Scope: "offline_access books:read", RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	machine, machineSecret := srv.mustCreateClient(t, clients.Registration{Name: "Machine", GrantTypes: []string{"client_credentials"}})
	public, _ := srv.mustCreateClient(t, clients.Registration{Name: "Native", Public: true, RedirectURIs: []string{"http://127.0.0.1:9999/cb"}})
	conf := srv.oauthConfig(web, webSecret, "offline_access", "books:read")
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(context.Background(), authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v, "alice", "correct horse battery"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	// A second grant whose code is replayed below (which revokes that
	// grant's tokens, not tok).
	v2 := oauth2.GenerateVerifier()
	code := authorizedCode(t, srv, newBrowser(t, srv.URL), conf, v2, "alice", "correct horse battery")
	if _, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(v2)); err != nil {
		t.Fatal(err)
	}
	fresh, freshSecret := srv.mustCreateClient(t, clients.Registration{Name: "Fresh", RedirectURIs: []string{"http://127.0.0.1:9999/fresh"}})
	form := func(kv ...string) url.Values {
		f := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			f.Add(kv[i], kv[i+1])
		}
		return f
	}
	type creds struct{ id, secret string }
	basic := func(id, secret string) *creds { return &creds{id, secret} }

	postForm := []struct {
		name      string
		path      string
		form      url.Values
		auth      *creds
		status    int
		code      string
		challenge string // WWW-Authenticate prefix, "" for none; every 401 has one
	}{
		{"token: no grant_type", "/oauth2/token", form(), basic(web.ID, webSecret), 400, "invalid_request", ""},
		{"token: repeated parameter", "/oauth2/token", form("grant_type", "client_credentials", "grant_type", "client_credentials"), basic(machine.ID, machineSecret), 400, "invalid_request", ""},
		{"token: wrong secret, basic", "/oauth2/token", form("grant_type", "client_credentials"), basic(machine.ID, "wrong"), 401, "invalid_client", "Basic"},
		{"token: unknown client, post", "/oauth2/token", form("grant_type", "client_credentials", "client_id", "nobody", "client_secret", "x"), nil, 401, "invalid_client", `Basic realm="gatehouse"`},
		{"token: used code", "/oauth2/token", form("grant_type", "authorization_code", "code", code, "redirect_uri", conf.RedirectURL, "code_verifier", v2), basic(web.ID, webSecret), 400, "invalid_grant", ""},
		{"token: unknown code", "/oauth2/token", form("grant_type", "authorization_code", "code", "gatehouse_ac_x.y", "redirect_uri", conf.RedirectURL), basic(web.ID, webSecret), 400, "invalid_grant", ""},
		{"token: unknown refresh token", "/oauth2/token", form("grant_type", "refresh_token", "refresh_token", "gatehouse_rt_x.y"), basic(web.ID, webSecret), 400, "invalid_grant", ""},
		{"token: grant the client may not use", "/oauth2/token", form("grant_type", "client_credentials"), basic(web.ID, webSecret), 400, "unauthorized_client", ""},
		{"token: password grant", "/oauth2/token", form("grant_type", "password", "username", "alice", "password", "correct horse battery"), basic(web.ID, webSecret), 400, "unsupported_grant_type", ""},
		{"token: implicit-era grant", "/oauth2/token", form("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), basic(web.ID, webSecret), 400, "unsupported_grant_type", ""},
		{"token: books scope without a user", "/oauth2/token", form("grant_type", "client_credentials", "scope", "books:read"), basic(machine.ID, machineSecret), 400, "invalid_scope", ""},
		{"token: scope not registered", "/oauth2/token", form("grant_type", "refresh_token", "refresh_token", tok.RefreshToken, "scope", "books:write"), basic(web.ID, webSecret), 400, "invalid_scope", ""},
		{"revoke: no token", "/oauth2/revoke", form(), basic(web.ID, webSecret), 400, "invalid_request", ""},
		{"token: no client authentication", "/oauth2/token", form("grant_type", "client_credentials"), nil, 401, "invalid_client", `Basic realm="gatehouse"`},
		{"revoke: unknown client, post", "/oauth2/revoke", form("token", tok.AccessToken, "client_id", "nobody", "client_secret", "x"), nil, 401, "invalid_client", `Basic realm="gatehouse"`},
		{"introspect: wrong secret, post", "/oauth2/introspect", form("token", tok.AccessToken, "client_id", web.ID, "client_secret", "wrong"), nil, 401, "invalid_client", `Basic realm="gatehouse"`},
		{"revoke: wrong secret", "/oauth2/revoke", form("token", tok.AccessToken), basic(web.ID, "wrong"), 401, "invalid_client", "Basic"},
		{"introspect: no token", "/oauth2/introspect", form(), basic(web.ID, webSecret), 400, "invalid_request", ""},
		{"introspect: wrong secret", "/oauth2/introspect", form("token", tok.AccessToken), basic(web.ID, "wrong"), 401, "invalid_client", "Basic"},
		{"introspect: public client", "/oauth2/introspect", form("token", tok.AccessToken, "client_id", public.ID), nil, 401, "invalid_client", `Basic realm="gatehouse"`},
		{"introspect: no credentials", "/oauth2/introspect", form("token", tok.AccessToken), nil, 401, "invalid_client", `Basic realm="gatehouse"`},
	}
	for _, tc := range postForm {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.auth != nil {
				req.SetBasicAuth(tc.auth.id, tc.auth.secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw := readBody(t, resp)
			var body map[string]any
			if err := json.Unmarshal([]byte(raw), &body); err != nil {
				t.Fatalf("body is not JSON: %q", raw)
			}
			if resp.StatusCode != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, fmtErr(body), tc.status, tc.code)
			}
			if ch := resp.Header.Get("WWW-Authenticate"); (tc.challenge == "") != (ch == "") || !strings.HasPrefix(ch, tc.challenge) {
				t.Fatalf("WWW-Authenticate %q, want prefix %q", ch, tc.challenge)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
			}
		})
	}

	// Authorization errors go back to the client once the client and the
	// redirect URI are known to be good.
	b := newBrowser(t, srv.URL)
	authorize := []struct {
		name   string
		conf   *oauth2.Config
		opts   []oauth2.AuthCodeOption
		signIn bool
		code   string
	}{
		{"public client without PKCE", srv.oauthConfig(public, "", "books:read"), nil, true, "invalid_request"},
		{"token response type", conf, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("response_type", "token")}, true, "unsupported_response_type"},
		{"unregistered scope", srv.oauthConfig(web, webSecret, "books:write"), nil, true, "invalid_scope"},
		{"repeated parameter", conf, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("scope", "books:read&scope=books:read")}, true, "invalid_request"},
		{"prompt=none, signed out", conf, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}, false, "login_required"},
		{"prompt=none, no grant yet", srv.oauthConfig(fresh, freshSecret, "books:read"), []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}, true, "consent_required"},
	}
	for _, tc := range authorize {
		t.Run("authorize: "+tc.name, func(t *testing.T) {
			browser := newBrowser(t, srv.URL)
			if tc.signIn {
				browser = b
				if resp, _ := b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}}); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("sign in: %d", resp.StatusCode)
				}
			}
			state := newState(t)
			opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier())}, tc.opts...)
			if tc.name == "public client without PKCE" {
				opts = nil
			}
			u := strings.ReplaceAll(tc.conf.AuthCodeURL(state, opts...), "%26scope%3D", "&scope=")
			resp, body := browser.get(u)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("got %d, want a 303 to the client; body %.300s", resp.StatusCode, body)
			}
			back := mustParseURL(t, resp.Header.Get("Location"))
			if back.Scheme+"://"+back.Host+back.Path != tc.conf.RedirectURL {
				t.Fatalf("redirected to %s, want the registered %s", back, tc.conf.RedirectURL)
			}
			q := back.Query()
			if q.Get("error") != tc.code || q.Get("state") != state || q.Get("iss") != srv.URL {
				t.Fatalf("query %v, want error=%s with state and iss", q, tc.code)
			}
		})
	}

	bearer := []struct {
		name      string
		method    string
		path      string
		token     string
		status    int
		code      string
		challenge string
	}{
		{"books: no token", "GET", "/api/books", "", 401, "invalid_token", `Bearer realm="gatehouse", resource_metadata="` + srv.URL + `/.well-known/oauth-protected-resource/api/books"`},
		{"books: bad token", "GET", "/api/books", "gatehouse_at_bad.token", 401, "invalid_token", `Bearer realm="gatehouse", error="invalid_token"`},
		{"books: refresh token as bearer", "GET", "/api/books", tok.RefreshToken, 401, "invalid_token", `Bearer realm="gatehouse", error="invalid_token"`},
		{"books: missing scope", "POST", "/api/books", tok.AccessToken, 403, "insufficient_scope", `Bearer realm="gatehouse", error="insufficient_scope", scope="books:write"`},
		{"userinfo: no openid scope", "GET", "/userinfo", tok.AccessToken, 403, "insufficient_scope", `Bearer realm="gatehouse", error="insufficient_scope", scope="openid"`},
		{"userinfo: no token", "GET", "/userinfo", "", 401, "invalid_token", `Bearer realm="gatehouse"`},
	}
	for _, tc := range bearer {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.method == "POST" {
				body = map[string]any{"title": "x"}
			}
			resp, out := api(t, tc.method, srv.URL+tc.path, tc.token, body)
			if resp.StatusCode != tc.status || errorCode(out) != tc.code {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, out, tc.status, tc.code)
			}
			ch := resp.Header.Get("WWW-Authenticate")
			if tc.challenge == `Bearer realm="gatehouse"` && ch != tc.challenge || !strings.HasPrefix(ch, tc.challenge) {
				t.Fatalf("WWW-Authenticate %q, want %q", ch, tc.challenge)
			}
		})
	}
}
