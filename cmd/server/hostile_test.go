package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"gatehouse/clients"
	"gatehouse/storage"
)

// Payloads for every text field: none may change a query, and none may
// come back unescaped in a page.
const (
	sqlInjection    = `' OR '1'='1'; DROP TABLE users; --`
	scriptInjection = `<script>alert(1)</script>`
)

// hostileEnv is what the hostile requests aim at: two confidential clients
// and a public one, alice signed in, with tokens and fresh codes on demand.
type hostileEnv struct {
	t           *testing.T
	srv         *testServer
	a, b, pub   storage.Client
	aSecret     string
	bSecret     string
	alice       *browser      // signed in; codes come from here
	visitor     *browser      // whose cookies the hostile requests carry
	aliceBooks  *oauth2.Token // client a, books:read books:write offline_access
	bobBooks    *oauth2.Token // client a, bob's
	aliceBookID string
	bobOnlyApp  string // an app in bob's console
	registered  map[string]bool
}

const (
	aRedirect   = "https://app.example/cb"
	aLoopback   = "http://127.0.0.1:9999/callback"
	bRedirect   = "https://b.example/cb"
	bLoopback   = "http://localhost/cb" // any port
	pubRedirect = "com.example.app:/cb"
)

func newHostileEnv(t *testing.T) *hostileEnv {
	srv := newTestServer(t, "--dynamic-registration")
	e := &hostileEnv{t: t, srv: srv, registered: map[string]bool{}}
	srv.mustCreateUser(t, "alice", "correct horse battery")
	bob := srv.mustCreateUser(t, "bob", "tr0ub4dor&3 is weak")
	e.a, e.aSecret = srv.mustCreateClient(t, clients.Registration{Name: "App A", RedirectURIs: []string{aRedirect, aLoopback}})
	e.b, e.bSecret = srv.mustCreateClient(t, clients.Registration{Name: "App B", RedirectURIs: []string{bRedirect, bLoopback}, GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}})
	e.pub, _ = srv.mustCreateClient(t, clients.Registration{Name: "Native", RedirectURIs: []string{pubRedirect}, Public: true})
	bobs, _ := srv.mustCreateClient(t, clients.Registration{Name: "Bob's", RedirectURIs: []string{"https://bob.example/cb"}, OwnerID: bob.ID})
	e.bobOnlyApp = bobs.ID
	for _, c := range []storage.Client{e.a, e.b, e.pub, bobs} {
		for _, u := range c.RedirectURIs {
			e.registered[u] = true
		}
	}
	e.alice = newBrowser(t, srv.URL)
	e.visitor = e.alice
	e.aliceBooks = e.exchange(e.alice, e.a, e.aSecret, "alice", "correct horse battery")
	e.bobBooks = e.exchange(newBrowser(t, srv.URL), e.a, e.aSecret, "bob", "tr0ub4dor&3 is weak")
	_, book := api(t, http.MethodPost, srv.URL+"/api/books", e.aliceBooks.AccessToken, map[string]any{"title": "Alice's"})
	e.aliceBookID, _ = book["id"].(string)
	return e
}

func (e *hostileEnv) conf(c storage.Client, secret, redirect string) *oauth2.Config {
	conf := e.srv.oauthConfig(c, secret, "offline_access", "books:read", "books:write")
	conf.RedirectURL = redirect
	return conf
}

func (e *hostileEnv) exchange(b *browser, c storage.Client, secret, user, pass string) *oauth2.Token {
	conf := e.conf(c, secret, c.RedirectURIs[0])
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(e.t.Context(), authorizedCode(e.t, e.srv, b, conf, v, user, pass), oauth2.VerifierOption(v))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	return tok
}

// code is a fresh code of client c for alice, with its PKCE verifier.
func (e *hostileEnv) code(c storage.Client, secret string) (code, verifier string) {
	verifier = oauth2.GenerateVerifier()
	return authorizedCode(e.t, e.srv, e.alice, e.conf(c, secret, c.RedirectURIs[0]), verifier, "alice", "correct horse battery"), verifier
}

// authz is an authorization query for client a, changed by edit.
func (e *hostileEnv) authz(edit func(q url.Values)) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {e.a.ID},
		"redirect_uri":          {aRedirect},
		"scope":                 {"books:read"},
		"state":                 {"st4te-value"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())},
		"code_challenge_method": {"S256"},
	}
	if edit != nil {
		edit(q)
	}
	return "/oauth2/authorize?" + q.Encode()
}

func redirectTo(u string) func(url.Values) { return func(q url.Values) { q.Set("redirect_uri", u) } }

func set(k, v string) func(url.Values) { return func(q url.Values) { q.Set(k, v) } }

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// hostileCase is one request and what it must get. code is the OAuth
// error in a JSON body or in the redirect, or text an HTML page must show.
type hostileCase struct {
	name   string
	req    func(e *hostileEnv) *http.Request
	raw    func(e *hostileEnv) string // a request written byte for byte instead
	status int
	code   string
	// after checks what the request must not have changed, or what it
	// must have stored.
	after func(e *hostileEnv, resp *http.Response, body string)
}

func (e *hostileEnv) request(method, path, contentType, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func (e *hostileEnv) get(path string) *http.Request { return e.request(http.MethodGet, path, "", "") }

func (e *hostileEnv) post(path, body string) *http.Request {
	return e.request(http.MethodPost, path, "application/x-www-form-urlencoded", body)
}

func (e *hostileEnv) basic(r *http.Request, id, secret string) *http.Request {
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return r
}

// tokenA posts a token request authenticated as client a.
func (e *hostileEnv) tokenA(body string) *http.Request {
	return e.basic(e.post("/oauth2/token", body), e.a.ID, e.aSecret)
}

func bearer(r *http.Request, token string) *http.Request {
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func hostileCases() []hostileCase {
	authorizePage := func(edit func(url.Values), status int, code string) hostileCase {
		return hostileCase{req: func(e *hostileEnv) *http.Request { return e.get(e.authz(edit)) }, status: status, code: code}
	}
	named := func(name string, c hostileCase) hostileCase { c.name = name; return c }
	rawAuthorize := func(suffix string) func(e *hostileEnv) *http.Request {
		return func(e *hostileEnv) *http.Request { return e.get(e.authz(nil) + suffix) }
	}
	return []hostileCase{
		// Redirect URIs that are not exactly a registered one: a page, no redirect.
		named("redirect_uri prefix", authorizePage(redirectTo(aRedirect+"/extra"), 400, "invalid_request")),
		named("redirect_uri suffix", authorizePage(redirectTo(aRedirect+"x"), 400, "invalid_request")),
		named("redirect_uri path traversal", authorizePage(redirectTo(aRedirect+"/../../evil"), 400, "invalid_request")),
		named("redirect_uri encoded path traversal", authorizePage(redirectTo(aRedirect+"/..%2F..%2Fevil"), 400, "invalid_request")),
		named("redirect_uri other port", authorizePage(redirectTo("https://app.example:8443/cb"), 400, "invalid_request")),
		named("redirect_uri user@host", authorizePage(redirectTo("https://app.example@evil.example/cb"), 400, "invalid_request")),
		named("redirect_uri host@registered", authorizePage(redirectTo("https://evil.example@app.example/cb"), 400, "invalid_request")),
		named("redirect_uri backslash", authorizePage(redirectTo(`https://app.example\@evil.example/cb`), 400, "invalid_request")),
		named("redirect_uri fragment", authorizePage(redirectTo(aRedirect+"#frag"), 400, "invalid_request")),
		named("redirect_uri added query", authorizePage(redirectTo(aRedirect+"?next=https://evil.example"), 400, "invalid_request")),
		named("redirect_uri host case change", authorizePage(redirectTo("https://APP.EXAMPLE/cb"), 400, "invalid_request")),
		named("redirect_uri path case change", authorizePage(redirectTo("https://app.example/CB"), 400, "invalid_request")),
		named("redirect_uri percent-encoded path", authorizePage(redirectTo("https://app.example/%63b"), 400, "invalid_request")),
		named("redirect_uri percent-encoded host", authorizePage(redirectTo("https://app%2Eexample/cb"), 400, "invalid_request")),
		named("redirect_uri trailing dot host", authorizePage(redirectTo("https://app.example./cb"), 400, "invalid_request")),
		named("redirect_uri http downgrade", authorizePage(redirectTo("http://app.example/cb"), 400, "invalid_request")),
		named("redirect_uri javascript", authorizePage(redirectTo("javascript:alert(1)"), 400, "invalid_request")),
		named("redirect_uri script injection", authorizePage(redirectTo(aRedirect+"?"+scriptInjection), 400, "invalid_request")),
		named("redirect_uri SQL injection", authorizePage(redirectTo(aRedirect+sqlInjection), 400, "invalid_request")),
		named("redirect_uri of another client", authorizePage(redirectTo(bRedirect), 400, "invalid_request")),
		named("redirect_uri missing with two registered", authorizePage(func(q url.Values) { q.Del("redirect_uri") }, 400, "invalid_request")),
		named("redirect_uri loopback other host", authorizePage(redirectTo("http://127.0.0.2:9999/callback"), 400, "invalid_request")),
		named("redirect_uri loopback registered port is exact", authorizePage(redirectTo("http://127.0.0.1:1234/callback"), 400, "invalid_request")),
		named("redirect_uri loopback port dropped", authorizePage(redirectTo("http://127.0.0.1/callback"), 400, "invalid_request")),
		named("redirect_uri loopback https upgrade", authorizePage(redirectTo("https://127.0.0.1:9999/callback"), 400, "invalid_request")),
		named("redirect_uri loopback percent-encoded path", authorizePage(redirectTo("http://127.0.0.1:9999/%63allback"), 400, "invalid_request")),
		named("redirect_uri portless loopback any port", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(func(q url.Values) { q.Set("client_id", e.b.ID); q.Set("redirect_uri", "http://localhost:49152/cb") }))
		}, status: 200, code: "Allow App B?"}),
		named("redirect_uri portless loopback other host", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(func(q url.Values) { q.Set("client_id", e.b.ID); q.Set("redirect_uri", "http://127.0.0.1:49152/cb") }))
		}, status: 400, code: "invalid_request"}),
		named("redirect_uri portless loopback empty port", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(func(q url.Values) { q.Set("client_id", e.b.ID); q.Set("redirect_uri", "http://localhost:/cb") }))
		}, status: 400, code: "invalid_request"}),
		named("redirect_uri portless loopback port with leading zero", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(func(q url.Values) { q.Set("client_id", e.b.ID); q.Set("redirect_uri", "http://localhost:08080/cb") }))
		}, status: 400, code: "invalid_request"}),
		named("redirect_uri portless loopback userinfo", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(func(q url.Values) {
				q.Set("client_id", e.b.ID)
				q.Set("redirect_uri", "http://localhost:8080@evil.example/cb")
			}))
		}, status: 400, code: "invalid_request"}),
		named("unknown client_id", authorizePage(set("client_id", "no-such-client"), 400, "not registered")),
		named("client_id SQL injection", authorizePage(set("client_id", sqlInjection), 400, "not registered")),
		named("client_id invalid UTF-8", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(func(q url.Values) { q.Del("client_id") }) + "&client_id=%FF%FE")
		}, status: 400, code: "not registered"}),
		named("duplicate redirect_uri", hostileCase{req: rawAuthorize("&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"), status: 400, code: "must not be repeated"}),
		named("duplicate redirect_uri, both registered", hostileCase{req: rawAuthorize("&redirect_uri=" + url.QueryEscape(aLoopback)), status: 400, code: "must not be repeated"}),

		// Request errors once client and redirect URI are trusted: back to
		// the client with error=.
		named("response_type token", authorizePage(set("response_type", "token"), 303, "unsupported_response_type")),
		named("PKCE plain", authorizePage(set("code_challenge_method", "plain"), 303, "invalid_request")),
		named("PKCE unknown method", authorizePage(set("code_challenge_method", "S512"), 303, "invalid_request")),
		named("public client without PKCE", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(func(q url.Values) {
				q.Set("client_id", e.pub.ID)
				q.Set("redirect_uri", pubRedirect)
				q.Del("code_challenge")
				q.Del("code_challenge_method")
			}))
		}, status: 303, code: "invalid_request"}),
		named("unregistered scope", authorizePage(set("scope", "books:read admin"), 303, "invalid_scope")),
		named("scope SQL injection", authorizePage(set("scope", sqlInjection), 303, "invalid_scope")),
		named("duplicate state", hostileCase{req: rawAuthorize("&state=other"), status: 303, code: "invalid_request"}),
		named("duplicate client_id", hostileCase{req: func(e *hostileEnv) *http.Request { return e.get(e.authz(nil) + "&client_id=" + e.b.ID) }, status: 400, code: "must not be repeated"}),
		named("duplicate client_id, the same twice", hostileCase{req: func(e *hostileEnv) *http.Request { return e.get(e.authz(nil) + "&client_id=" + e.a.ID) }, status: 400, code: "must not be repeated"}),
		named("state invalid UTF-8", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(func(q url.Values) { q.Del("state") }) + "&state=%FF%FE-long-enough-state")
		}, status: 303, code: "invalid_request"}),
		named("state script injection on consent page", authorizePage(func(q url.Values) {
			q.Set("state", scriptInjection)
			q.Set("prompt", "consent")
		}, 200, "")),
		named("state SQL injection", hostileCase{req: func(e *hostileEnv) *http.Request { return e.get(e.authz(set("state", sqlInjection))) }, status: 303,
			after: func(e *hostileEnv, resp *http.Response, _ string) {
				if q := mustParseURL(e.t, resp.Header.Get("Location")).Query(); q.Get("state") != sqlInjection || q.Get("code") == "" {
					e.t.Fatalf("redirect query %v: want a code and the state unchanged", q)
				}
			}}),
		named("nonce script injection", authorizePage(func(q url.Values) {
			q.Set("nonce", scriptInjection+"-long-enough-nonce")
			q.Set("scope", "openid books:read")
			q.Set("prompt", "consent")
		}, 200, "")),
		named("prompt none without consent", authorizePage(func(q url.Values) {
			q.Set("prompt", "none")
			q.Set("scope", "openid profile")
		}, 303, "consent_required")),
		named("consent decision neither allow nor deny", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post(e.authz(nil), "decision=maybe")
		}, status: 303, code: "invalid_request"}),
		named("consent with smuggled field", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post(e.authz(nil), "decision=allow&redirect_uri=https%3A%2F%2Fevil.example")
		}, status: 400, code: "unexpected fields"}),
		named("consent posted cross-site", hostileCase{req: func(e *hostileEnv) *http.Request {
			r := e.post(e.authz(nil), "decision=allow")
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, status: 403, code: "Cross-origin"}),

		// Parameters Gatehouse does not take, once client and redirect URI are trusted.
		named("request_uri PAR-style, never pushed", authorizePage(set("request_uri", "urn:ietf:params:oauth:request_uri:abc"), 400, "")),
		named("request_uri to fetch", authorizePage(set("request_uri", "http://169.254.169.254/latest/meta-data"), 303, "request_uri_not_supported")),
		named("request object", authorizePage(set("request", "eyJhbGciOiJub25lIn0.e30."), 303, "request_not_supported")),
		named("registration parameter", authorizePage(set("registration", `{"redirect_uris":["https://evil.example"]}`), 303, "registration_not_supported")),
		named("response_mode fragment", authorizePage(set("response_mode", "fragment"), 303, "unsupported_response_mode")),
		named("response_mode form_post", authorizePage(set("response_mode", "form_post"), 200, "")),
		named("duplicate response_mode", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get(e.authz(set("response_mode", "query")) + "&response_mode=form_post")
		}, status: 303, code: "invalid_request"}),
		named("max_age not a number", authorizePage(set("max_age", "soon"), 303, "invalid_request")),
		named("authorize HEAD", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.request(http.MethodHead, e.authz(nil), "", "")
		}, status: 405, code: ""}),
		named("authorize GET with a multipart body", hostileCase{req: func(e *hostileEnv) *http.Request {
			ct, body := multipartBody(e.t, 1<<20, "scope", "books:write", "redirect_uri", "https://evil.example/cb")
			return e.request(http.MethodGet, e.authz(set("prompt", "consent")), ct, body.String())
		}, status: 200, code: "", after: func(e *hostileEnv, _ *http.Response, body string) {
			if strings.Contains(body, "evil.example") || strings.Contains(body, "Add, change and delete") {
				e.t.Fatal("the GET body reached the consent page")
			}
		}}),
		named("consent decision as multipart", hostileCase{req: func(e *hostileEnv) *http.Request {
			ct, body := multipartBody(e.t, 0, "decision", "allow")
			return e.request(http.MethodPost, e.authz(nil), ct, body.String())
		}, status: 400, code: "not sent as a form"}),
		named("consent decision as JSON", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.request(http.MethodPost, e.authz(nil), "application/json", `{"decision":"allow"}`)
		}, status: 400, code: "not sent as a form"}),

		// Token endpoint.
		named("token JSON body", hostileCase{req: func(e *hostileEnv) *http.Request {
			r := e.tokenA(`{"grant_type":"client_credentials"}`)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, status: 400, code: "invalid_request"}),
		named("token text/plain body", hostileCase{req: func(e *hostileEnv) *http.Request {
			r := e.tokenA("grant_type=client_credentials")
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, status: 400, code: "invalid_request"}),
		named("token body over 64 KiB", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA("grant_type=client_credentials&scope=" + strings.Repeat("a", 70<<10))
		}, status: 400, code: "invalid_request"}),
		named("token truncated body", hostileCase{raw: func(e *hostileEnv) string {
			auth := "Basic " + basicCredentials(e.a.ID, e.aSecret)
			return "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
				"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\ngrant_type=client_cre"
		}, status: 400, code: "invalid_request"}),
		named("token multipart with two codes and a second secret", hostileCase{req: func(e *hostileEnv) *http.Request {
			code, v := e.code(e.a, e.aSecret)
			ct, body := multipartBody(e.t, 0, "grant_type", "authorization_code", "code", code, "code", "x",
				"redirect_uri", aRedirect, "redirect_uri", aLoopback, "client_secret", "wrong", "code_verifier", v)
			return e.basic(e.request(http.MethodPost, "/oauth2/token", ct, body.String()), e.a.ID, e.aSecret)
		}, status: 400, code: "invalid_request"}),
		named("token multipart client_credentials", hostileCase{req: func(e *hostileEnv) *http.Request {
			ct, body := multipartBody(e.t, 0, "grant_type", "client_credentials")
			return e.basic(e.request(http.MethodPost, "/oauth2/token", ct, body.String()), e.b.ID, e.bSecret)
		}, status: 400, code: "invalid_request"}),
		named("token no content type", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.request(http.MethodPost, "/oauth2/token", "", "grant_type=client_credentials"), e.b.ID, e.bSecret)
		}, status: 400, code: "invalid_request"}),
		named("revoke multipart", hostileCase{req: func(e *hostileEnv) *http.Request {
			ct, body := multipartBody(e.t, 0, "token", e.aliceBooks.AccessToken)
			return e.basic(e.request(http.MethodPost, "/oauth2/revoke", ct, body.String()), e.a.ID, e.aSecret)
		}, status: 400, code: "invalid_request", after: func(e *hostileEnv, _ *http.Response, _ string) {
			if resp, _ := api(e.t, http.MethodGet, e.srv.URL+"/api/books", e.aliceBooks.AccessToken, nil); resp.StatusCode != http.StatusOK {
				e.t.Fatalf("the multipart revocation revoked the token: %d", resp.StatusCode)
			}
		}}),
		named("introspect multipart", hostileCase{req: func(e *hostileEnv) *http.Request {
			ct, body := multipartBody(e.t, 0, "token", e.aliceBooks.AccessToken)
			return e.basic(e.request(http.MethodPost, "/oauth2/introspect", ct, body.String()), e.a.ID, e.aSecret)
		}, status: 400, code: "invalid_request"}),
		named("token wrong secret, Bearer header", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.post("/oauth2/token", form("grant_type", "client_credentials")), "x")
		}, status: 401, code: "invalid_client", after: func(e *hostileEnv, resp *http.Response, _ string) {
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="gatehouse"` {
				e.t.Fatalf("WWW-Authenticate %q", got)
			}
		}}),
		named("token duplicate grant_type", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA("grant_type=authorization_code&grant_type=client_credentials")
		}, status: 400, code: "invalid_request"}),
		named("token duplicate code", hostileCase{req: func(e *hostileEnv) *http.Request {
			code, v := e.code(e.a, e.aSecret)
			return e.tokenA(form("grant_type", "authorization_code", "code", code, "code", "x", "redirect_uri", aRedirect, "code_verifier", v))
		}, status: 400, code: "invalid_request"}),
		named("token invalid UTF-8 code", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA("grant_type=authorization_code&code=%FF%FE&redirect_uri=" + url.QueryEscape(aRedirect))
		}, status: 400, code: "invalid_request"}),
		named("token unsupported grant", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA(form("grant_type", "password", "username", "alice", "password", "correct horse battery"))
		}, status: 400, code: "unsupported_grant_type"}),
		named("token grant_type SQL injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA(form("grant_type", sqlInjection))
		}, status: 400, code: "unsupported_grant_type"}),
		named("token wrong secret basic", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/token", form("grant_type", "client_credentials")), e.b.ID, "wrong")
		}, status: 401, code: "invalid_client"}),
		named("token wrong secret post", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/oauth2/token", form("grant_type", "client_credentials", "client_id", e.b.ID, "client_secret", "wrong"))
		}, status: 401, code: "invalid_client"}),
		named("token client_id SQL injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/token", form("grant_type", "client_credentials")), sqlInjection, "x")
		}, status: 401, code: "invalid_client"}),
		named("token malformed basic auth", hostileCase{req: func(e *hostileEnv) *http.Request {
			r := e.post("/oauth2/token", form("grant_type", "client_credentials"))
			r.Header.Set("Authorization", "Basic !!!not-base64")
			return r
		}, status: 401, code: "invalid_client"}),
		named("token basic auth bad percent-encoding", hostileCase{req: func(e *hostileEnv) *http.Request {
			r := e.post("/oauth2/token", form("grant_type", "client_credentials"))
			r.Header.Set("Authorization", "Basic "+basicRaw(e.b.ID+":%zz"))
			return r
		}, status: 400, code: "invalid_request"}),
		named("token basic and post both used", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/token", form("grant_type", "client_credentials", "client_id", e.a.ID, "client_secret", e.aSecret)), e.b.ID, e.bSecret)
		}, status: 400, code: "invalid_request"}),
		named("token no client authentication", hostileCase{req: func(e *hostileEnv) *http.Request {
			code, v := e.code(e.a, e.aSecret)
			return e.post("/oauth2/token", form("grant_type", "authorization_code", "code", code, "redirect_uri", aRedirect, "code_verifier", v))
		}, status: 401, code: "invalid_client"}),
		named("code of another client", hostileCase{req: func(e *hostileEnv) *http.Request {
			code, v := e.code(e.a, e.aSecret)
			return e.basic(e.post("/oauth2/token", form("grant_type", "authorization_code", "code", code, "redirect_uri", aRedirect, "code_verifier", v)), e.b.ID, e.bSecret)
		}, status: 400, code: "invalid_grant"}),
		named("code reused", hostileCase{req: func(e *hostileEnv) *http.Request {
			code, v := e.code(e.a, e.aSecret)
			body := form("grant_type", "authorization_code", "code", code, "redirect_uri", aRedirect, "code_verifier", v)
			resp, err := http.DefaultClient.Do(e.tokenA(body))
			if err != nil || resp.StatusCode != http.StatusOK {
				e.t.Fatalf("first redemption: %v %v", resp, err)
			}
			resp.Body.Close()
			return e.tokenA(body)
		}, status: 400, code: "invalid_grant"}),
		named("code with other redirect_uri", hostileCase{req: func(e *hostileEnv) *http.Request {
			code, v := e.code(e.a, e.aSecret)
			return e.tokenA(form("grant_type", "authorization_code", "code", code, "redirect_uri", aLoopback, "code_verifier", v))
		}, status: 400, code: "invalid_grant"}),
		named("code SQL injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA(form("grant_type", "authorization_code", "code", sqlInjection, "redirect_uri", aRedirect))
		}, status: 400, code: "invalid_grant"}),
		named("PKCE verifier missing after challenge", hostileCase{req: func(e *hostileEnv) *http.Request {
			code, _ := e.code(e.a, e.aSecret)
			return e.tokenA(form("grant_type", "authorization_code", "code", code, "redirect_uri", aRedirect))
		}, status: 400, code: "invalid_grant"}),
		named("PKCE wrong verifier then retry without one", hostileCase{req: func(e *hostileEnv) *http.Request {
			code, _ := e.code(e.a, e.aSecret)
			resp, err := http.DefaultClient.Do(e.tokenA(form("grant_type", "authorization_code", "code", code, "redirect_uri", aRedirect, "code_verifier", oauth2.GenerateVerifier())))
			if err != nil || resp.StatusCode != http.StatusBadRequest {
				e.t.Fatalf("wrong verifier: %v %v", resp, err)
			}
			resp.Body.Close()
			return e.tokenA(form("grant_type", "authorization_code", "code", code, "redirect_uri", aRedirect))
		}, status: 400, code: "invalid_grant"}),
		named("refresh token of another client", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/token", form("grant_type", "refresh_token", "refresh_token", e.aliceBooks.RefreshToken)), e.b.ID, e.bSecret)
		}, status: 400, code: "invalid_grant"}),
		named("access token as refresh token", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA(form("grant_type", "refresh_token", "refresh_token", e.aliceBooks.AccessToken))
		}, status: 400, code: "invalid_grant"}),
		named("refresh token as code", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA(form("grant_type", "authorization_code", "code", e.aliceBooks.RefreshToken, "redirect_uri", aRedirect))
		}, status: 400, code: "invalid_grant"}),
		named("refresh token reused", hostileCase{req: func(e *hostileEnv) *http.Request {
			tok := e.exchange(e.alice, e.a, e.aSecret, "alice", "correct horse battery")
			body := form("grant_type", "refresh_token", "refresh_token", tok.RefreshToken)
			resp, err := http.DefaultClient.Do(e.tokenA(body))
			if err != nil || resp.StatusCode != http.StatusOK {
				e.t.Fatalf("first refresh: %v %v", resp, err)
			}
			resp.Body.Close()
			return e.tokenA(body)
		}, status: 400, code: "invalid_grant"}),
		named("client_credentials with end-user scope", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/token", form("grant_type", "client_credentials", "scope", "books:read")), e.b.ID, e.bSecret)
		}, status: 400, code: "invalid_scope"}),
		named("client_credentials not registered", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.tokenA(form("grant_type", "client_credentials"))
		}, status: 400, code: "unauthorized_client"}),

		// Revocation and introspection.
		named("revoke without token", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/revoke", ""), e.a.ID, e.aSecret)
		}, status: 400, code: "invalid_request"}),
		named("revoke duplicate token", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/revoke", form("token", "a", "token", "b")), e.a.ID, e.aSecret)
		}, status: 400, code: "invalid_request"}),
		named("revoke wrong secret", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/revoke", form("token", e.aliceBooks.AccessToken)), e.a.ID, "wrong")
		}, status: 401, code: "invalid_client"}),
		named("revoke another client's token", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/revoke", form("token", e.aliceBooks.AccessToken)), e.b.ID, e.bSecret)
		}, status: 200, code: "", after: func(e *hostileEnv, _ *http.Response, _ string) {
			// RFC 7009 §2.2 answers 200 either way; the token must live on.
			if resp, _ := api(e.t, http.MethodGet, e.srv.URL+"/api/books", e.aliceBooks.AccessToken, nil); resp.StatusCode != http.StatusOK {
				e.t.Fatalf("client b revoked client a's token: %d", resp.StatusCode)
			}
		}}),
		named("revoke SQL injection token", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/revoke", form("token", sqlInjection)), e.a.ID, e.aSecret)
		}, status: 200, code: ""}),
		named("introspect as public client", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/oauth2/introspect", form("token", e.aliceBooks.AccessToken, "client_id", e.pub.ID))
		}, status: 401, code: "invalid_client"}),
		named("introspect without client", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.post("/oauth2/introspect", form("token", e.aliceBooks.AccessToken)), e.aliceBooks.AccessToken)
		}, status: 401, code: "invalid_client"}),
		named("introspect another client's token", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/introspect", form("token", e.aliceBooks.AccessToken)), e.b.ID, e.bSecret)
		}, status: 200, code: "", after: func(e *hostileEnv, _ *http.Response, body string) {
			if strings.TrimSpace(body) != `{"active":false}` {
				e.t.Fatalf("client b learned about client a's token: %s", body)
			}
		}}),
		named("introspect invalid UTF-8 token", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.basic(e.post("/oauth2/introspect", "token=%FF%FE"), e.a.ID, e.aSecret)
		}, status: 400, code: "invalid_request"}),

		// UserInfo and discovery.
		named("userinfo garbage token", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.get("/userinfo"), sqlInjection)
		}, status: 401, code: "invalid_token"}),
		named("userinfo without openid", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.get("/userinfo"), e.aliceBooks.AccessToken)
		}, status: 403, code: "insufficient_scope"}),
		named("discovery wrong method", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/.well-known/openid-configuration", "")
		}, status: 405, code: ""}),

		// Books.
		named("books no token", hostileCase{req: func(e *hostileEnv) *http.Request { return e.get("/api/books") }, status: 401, code: "invalid_token"}),
		named("books token in query", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get("/api/books?access_token=" + e.aliceBooks.AccessToken)
		}, status: 401, code: "invalid_token"}),
		named("books wrong content type", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.request(http.MethodPost, "/api/books", "application/x-www-form-urlencoded", "title=x"), e.aliceBooks.AccessToken)
		}, status: 415, code: "unsupported_media_type"}),
		named("books body over 1 MiB", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.request(http.MethodPost, "/api/books", "application/json", `{"title":"`+strings.Repeat("a", 1<<20)+`"}`), e.aliceBooks.AccessToken)
		}, status: 413, code: "request_too_large"}),
		named("books truncated JSON", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.request(http.MethodPost, "/api/books", "application/json", `{"title":"Du`), e.aliceBooks.AccessToken)
		}, status: 400, code: "invalid_request"}),
		named("books truncated body", hostileCase{raw: func(e *hostileEnv) string {
			return "POST /api/books HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + e.aliceBooks.AccessToken +
				"\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"title\":\"Dune\""
		}, status: 400, code: "invalid_request"}),
		named("books invalid UTF-8 title", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.request(http.MethodPost, "/api/books", "application/json", "{\"title\":\"\xff\xfe\"}"), e.aliceBooks.AccessToken)
		}, status: 400, code: "invalid_request"}),
		named("books title SQL injection stored verbatim", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.request(http.MethodPost, "/api/books", "application/json", fmt.Sprintf(`{"title":%q,"author":%q}`, sqlInjection, scriptInjection)), e.aliceBooks.AccessToken)
		}, status: 201, code: "", after: func(e *hostileEnv, resp *http.Response, _ string) {
			_, got := api(e.t, http.MethodGet, e.srv.URL+resp.Header.Get("Location"), e.aliceBooks.AccessToken, nil)
			if got["title"] != sqlInjection || got["author"] != scriptInjection {
				e.t.Fatalf("stored %v, want the payloads verbatim", got)
			}
		}}),
		named("books title too long", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.request(http.MethodPost, "/api/books", "application/json", `{"title":"`+strings.Repeat("é", 301)+`"}`), e.aliceBooks.AccessToken)
		}, status: 400, code: "invalid_request"}),
		named("books another user's book", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.get("/api/books/"+e.aliceBookID), e.bobBooks.AccessToken)
		}, status: 404, code: "not_found"}),
		named("books id SQL injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.get("/api/books/"+url.PathEscape(sqlInjection)), e.aliceBooks.AccessToken)
		}, status: 404, code: "not_found"}),
		named("books cursor garbage", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.get("/api/books?cursor="+url.QueryEscape(sqlInjection)), e.aliceBooks.AccessToken)
		}, status: 400, code: "invalid_request"}),
		named("books limit out of range", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.get("/api/books?limit=100000"), e.aliceBooks.AccessToken)
		}, status: 400, code: "invalid_request"}),
		named("books wrong method", hostileCase{req: func(e *hostileEnv) *http.Request {
			return bearer(e.request(http.MethodPatch, "/api/books/"+e.aliceBookID, "application/json", `{}`), e.aliceBooks.AccessToken)
		}, status: 405, code: "method_not_allowed"}),

		// Sign-in and registration pages.
		named("login username SQL injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/login", form("username", sqlInjection, "password", "x"))
		}, status: 401, code: "Invalid username or password"}),
		named("login username script injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/login", form("username", scriptInjection, "password", "x"))
		}, status: 401, code: "Invalid username or password"}),
		named("login invalid UTF-8", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/login", "username=%FF%FE&password=%FF")
		}, status: 401, code: "Invalid username or password"}),
		named("login duplicate username", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/login", "username=bob&username=alice&password=correct+horse+battery")
		}, status: 401, code: "Invalid username or password"}),
		named("login body over 16 KiB", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/login", form("username", "alice", "password", strings.Repeat("a", 20<<10)))
		}, status: 413, code: ""}),
		named("login open redirect", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/login", form("username", "bob", "password", "tr0ub4dor&3 is weak", "return_to", "//evil.example/x"))
		}, status: 303, code: "", after: func(e *hostileEnv, resp *http.Response, _ string) {
			if loc := resp.Header.Get("Location"); loc != "/" {
				e.t.Fatalf("Location %q, want /", loc)
			}
		}}),
		named("login open redirect through path cleaning", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/login", form("username", "bob", "password", "tr0ub4dor&3 is weak", "return_to", "/./\\evil.example/phish"))
		}, status: 303, code: "", after: func(e *hostileEnv, resp *http.Response, _ string) {
			if loc := resp.Header.Get("Location"); loc != "/" {
				e.t.Fatalf("Location %q, want /", loc)
			}
		}}),
		named("logout open redirect with a tab", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/logout", form("return_to", "/\t/evil.example/phish"))
		}, status: 303, code: "", after: func(e *hostileEnv, resp *http.Response, _ string) {
			if loc := resp.Header.Get("Location"); loc != "/" {
				e.t.Fatalf("Location %q, want /", loc)
			}
		}}),
		named("login posted cross-site", hostileCase{req: func(e *hostileEnv) *http.Request {
			r := e.post("/login", form("username", "bob", "password", "tr0ub4dor&3 is weak"))
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, status: 403, code: "Cross-origin"}),
		named("register username script injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/register", form("username", scriptInjection, "password", "long enough password"))
		}, status: 400, code: ""}),
		named("register username SQL injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/register", form("username", sqlInjection, "password", "long enough password"))
		}, status: 400, code: ""}),
		named("register invalid UTF-8 password", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/register", "username=carol&password=%FF%FE%FD%FC%FB%FA%F9%F8%F7")
		}, status: 400, code: ""}),
		named("register taken name in other case", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/register", form("username", "ALICE", "password", "long enough password"))
		}, status: 409, code: ""}),

		// The app console, as alice.
		named("app name script injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps", form("name", scriptInjection, "redirect_uris", "https://x.example/cb", "client_type", "confidential"))
		}, status: 201, code: ""}),
		named("app name SQL injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps", form("name", sqlInjection, "redirect_uris", "https://x.example/cb", "client_type", "confidential"))
		}, status: 201, code: ""}),
		named("app name invalid UTF-8", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps", "name=%FF%FE&redirect_uris=https%3A%2F%2Fx.example%2Fcb&client_type=confidential")
		}, status: 400, code: ""}),
		named("app redirect URI javascript", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps", form("name", "x", "redirect_uris", "javascript:alert(1)", "client_type", "confidential"))
		}, status: 400, code: ""}),
		named("app redirect URI with fragment", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps", form("name", "x", "redirect_uris", "https://x.example/cb#f", "client_type", "confidential"))
		}, status: 400, code: ""}),
		named("app redirect URI plain http", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps", form("name", "x", "redirect_uris", "http://x.example/cb", "client_type", "confidential"))
		}, status: 400, code: ""}),
		named("app redirect URI wildcard", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps", form("name", "x", "redirect_uris", "https://*.example/cb", "client_type", "confidential"))
		}, status: 400, code: ""}),
		named("app redirect URI script injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps", form("name", "x", "redirect_uris", "https://x.example/"+scriptInjection, "client_type", "confidential"))
		}, status: 400, code: ""}),
		named("another user's app", hostileCase{req: func(e *hostileEnv) *http.Request { return e.get("/apps/" + e.bobOnlyApp) }, status: 404, code: ""}),
		named("rotate another user's secret", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps/"+e.bobOnlyApp+"/secret", "")
		}, status: 404, code: ""}),
		named("delete another user's app", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/apps/"+e.bobOnlyApp+"/delete", "")
		}, status: 404, code: ""}),
		named("revoke unknown connection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/account/connections/"+url.PathEscape(sqlInjection)+"/revoke", "")
		}, status: 303, code: ""}),

		// Everything else.
		named("logout posted cross-site", hostileCase{req: func(e *hostileEnv) *http.Request {
			r := e.post("/logout", "")
			r.Header.Set("Origin", "https://evil.example")
			return r
		}, status: 403, code: "Cross-origin"}),
		named("unknown path", hostileCase{req: func(e *hostileEnv) *http.Request { return e.get("/.env") }, status: 404, code: "Page not found"}),
		named("unknown path under /oauth2/", hostileCase{req: func(e *hostileEnv) *http.Request { return e.get("/oauth2/nothing-here") }, status: 404, code: "not_found"}),
		named("static path traversal", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.get("/static/..%2f..%2fgo.mod")
		}, status: 404, code: ""}),
		named("jwks wrong method", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.post("/.well-known/jwks.json", "")
		}, status: 405, code: ""}),
		named("metrics wrong method", hostileCase{req: func(e *hostileEnv) *http.Request { return e.post("/metrics", "") }, status: 405, code: ""}),

		// Dynamic registration.
		named("register client wrong content type", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.request(http.MethodPost, "/oauth2/register", "text/plain", `{"redirect_uris":["https://x.example/cb"]}`)
		}, status: 400, code: "invalid_client_metadata"}),
		named("register client truncated JSON", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.request(http.MethodPost, "/oauth2/register", "application/json", `{"redirect_uris":["https://x.`)
		}, status: 400, code: "invalid_client_metadata"}),
		named("register client evil redirect", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.request(http.MethodPost, "/oauth2/register", "application/json", `{"redirect_uris":["javascript:alert(1)"],"client_name":"x"}`)
		}, status: 400, code: "invalid_redirect_uri"}),
		named("register client name script injection", hostileCase{req: func(e *hostileEnv) *http.Request {
			return e.request(http.MethodPost, "/oauth2/register", "application/json", fmt.Sprintf(`{"redirect_uris":["https://x.example/cb"],"client_name":%q}`, scriptInjection))
		}, status: 201, code: ""}),
	}
}

func basicRaw(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func basicCredentials(id, secret string) string {
	return basicRaw(url.QueryEscape(id) + ":" + url.QueryEscape(secret))
}

// TestHostileRequests sends each hostile request and checks the exact
// answer, that nothing redirects to an unregistered URI, and that no page
// echoes a script unescaped.
func TestHostileRequests(t *testing.T) {
	e := newHostileEnv(t)
	cases := hostileCases()
	if len(cases) < 60 {
		t.Fatalf("only %d hostile requests", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t, e.alice.t, e.visitor.t = t, t, t
			resp, body := e.send(c)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; Location %q; body %.300s", resp.StatusCode, c.status, resp.Header.Get("Location"), body)
			}
			if got := errorOf(resp, body); c.code != "" && !strings.Contains(got, c.code) {
				t.Fatalf("error %.300q, want %q; body %.300s", got, c.code, body)
			}
			e.checkRedirect(resp)
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") && strings.Contains(body, scriptInjection) {
				t.Fatalf("the page echoes %s unescaped", scriptInjection)
			}
			if c.after != nil {
				c.after(e, resp, body)
			}
		})
	}
	logs := e.srv.logs.String()
	if strings.Contains(logs, `"msg":"panic"`) {
		t.Fatalf("a hostile request reached the recover middleware:\n%s", logs)
	}
	for _, secret := range []string{e.aSecret, e.bSecret, e.aliceBooks.AccessToken, e.aliceBooks.RefreshToken, e.bobBooks.AccessToken, "correct horse battery", "tr0ub4dor&3 is weak"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold a secret sent in the hostile requests: %s", secret)
		}
	}
}

// TestRecoverPanics proves the last line of defence: a handler's panic is
// logged with its stack and answered 500, and the server goes on serving.
func TestRecoverPanics(t *testing.T) {
	logs := &syncBuffer{}
	logger, err := newLogger(logs, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom: a bug") })
	mux.HandleFunc("GET /fine", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "fine") })
	mux.Handle("GET /metrics", m.handler())
	ts := httptest.NewServer(withLogging(logger, m, recoverPanics(logger, mux)))
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/boom")
	if err != nil {
		t.Fatalf("the panic dropped the connection: %v", err)
	}
	if body := readBody(t, resp); resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "boom") {
		t.Fatalf("got %d %q, want 500 that does not show the panic", resp.StatusCode, body)
	}
	resp, err = http.Get(ts.URL + "/fine")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after a panic: %v %v, want the server still answering", resp, err)
	}
	resp.Body.Close()
	got := logs.String()
	for _, want := range []string{`"msg":"panic"`, `"value":"boom: a bug"`, `"stack":"goroutine`, `"route":"GET /boom","status":500`} {
		if !strings.Contains(got, want) {
			t.Errorf("logs lack %s:\n%s", want, got)
		}
	}
	if n := scrape(t, ts.URL, `gatehouse_http_requests_total{code="5xx",route="GET /boom"}`); n != 1 {
		t.Errorf("5xx for GET /boom counted %v times, want 1", n)
	}
}

// send makes the request with the visitor's cookies, without following
// redirects.
func (e *hostileEnv) send(c hostileCase) (*http.Response, string) {
	if c.raw != nil {
		return e.sendRaw(c.raw(e))
	}
	r := c.req(e)
	// Signing in or out ends the session the browser had, which the
	// visitor's later requests still need, so those are sent without it.
	if switches := r.Method == http.MethodPost && (r.URL.Path == "/login" || r.URL.Path == "/register" || r.URL.Path == "/logout"); !switches {
		for _, ck := range e.visitor.client.Jar.Cookies(r.URL) {
			r.AddCookie(ck)
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, readBody(e.t, resp)
}

// sendRaw writes a request whose body stops short of its Content-Length.
func (e *hostileEnv) sendRaw(raw string) (*http.Response, string) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		e.t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, readBody(e.t, resp)
}

// errorOf is the OAuth error of a JSON body or a redirect, or the text of
// a page.
func errorOf(resp *http.Response, body string) string {
	if loc := resp.Header.Get("Location"); loc != "" {
		u, err := url.Parse(loc)
		if err == nil {
			return u.Query().Get("error")
		}
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if json.Unmarshal([]byte(body), &m) == nil {
			s, _ := m["error"].(string)
			return s
		}
	}
	return body
}

// checkRedirect allows a path on this server, or a registered redirect
// URI as the contract's loopback rule matches it.
func (e *hostileEnv) checkRedirect(resp *http.Response) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return
	}
	u, err := url.Parse(loc)
	if err != nil {
		e.t.Fatalf("unparsable Location %q", loc)
	}
	// Browsers read a backslash as a slash and drop tabs and newlines, so
	// "/\\host" and "/\t/host" leave the server.
	if strings.ContainsAny(loc, "\\\t\r\n") {
		e.t.Fatalf("Location %q holds a backslash or control character", loc)
	}
	if u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(loc, "//") {
		return
	}
	target := *u
	target.RawQuery, target.Fragment = "", ""
	if _, ok := clients.MatchRedirectURI(slices.Collect(maps.Keys(e.registered)), target.String()); !ok {
		e.t.Fatalf("redirected to unregistered %q", loc)
	}
}

// TestHostileRequestsNeverFail5xx sends the whole table again, as a
// signed-out stranger this time, and wants no 5xx whatever the answer.
func TestHostileRequestsNeverFail5xx(t *testing.T) {
	e := newHostileEnv(t)
	e.visitor = newBrowser(t, e.srv.URL)
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			e.t, e.alice.t, e.visitor.t = t, t, t
			resp, body := e.send(c)
			if resp.StatusCode >= 500 {
				t.Fatalf("status %d: %.300s", resp.StatusCode, body)
			}
			e.checkRedirect(resp)
		})
	}
}
