package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/clients"
	"gatehouse/storage"
)

// callbackListener is a native app's redirect endpoint: a real listener on
// localhost with a port the system picked. It hands back each query it
// receives.
func callbackListener(t *testing.T) (port string, got <-chan url.Values) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan url.Values, 4)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ch <- r.Form
		io.WriteString(w, "You can close this window.")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, ch
}

// TestLoopbackRedirectAnyPort is a native app as RFC 8252 §7.3 has it:
// registered http://localhost/cb, listening on localhost:<random>, driven
// by golang.org/x/oauth2 with PKCE.
func TestLoopbackRedirectAnyPort(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, _ := srv.mustCreateClient(t, clients.Registration{Name: "CLI", Public: true, RedirectURIs: []string{"http://localhost/cb"}})
	port, got := callbackListener(t)
	conf := srv.oauthConfig(c, "", "books:read")
	conf.RedirectURL = "http://localhost:" + port + "/cb"

	verifier := oauth2.GenerateVerifier()
	state := newState(t)
	back := newBrowser(t, srv.URL).signInAndAuthorize(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), "alice", "correct horse battery", "allow")
	if back.Host != "localhost:"+port || back.Path != "/cb" {
		t.Fatalf("redirected to %s, want localhost:%s/cb", back, port)
	}
	resp, err := http.Get(back.String())
	if err != nil {
		t.Fatalf("the app's listener: %v", err)
	}
	resp.Body.Close()
	q := <-got
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("the app received %v", q)
	}
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if r, _ := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("books with the token: %d", r.StatusCode)
	}

	// The same request with each kind of near miss stops at a page.
	b := newBrowser(t, srv.URL)
	if resp, _ := b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	for _, redirect := range []string{
		"https://localhost:" + port + "/cb",
		"http://127.0.0.1:" + port + "/cb",
		"http://localhost:" + port + "/%63b",
		"http://localhost:" + port + "/cb/",
		"http://localhost:0/cb",
	} {
		conf.RedirectURL = redirect
		resp, body := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(verifier)))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("redirect_uri %s: %d Location %q, want the 400 page; body %.200s", redirect, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
}

// TestNoSilentApprovalForNativeApps is the attack of defect 3: after the
// user allowed a public native app once, any local program that asks with
// the app's client_id, its own PKCE pair, prompt=none and its own loopback
// port must get no code.
func TestNoSilentApprovalForNativeApps(t *testing.T) {
	srv := newTestServer(t)
	owner := srv.mustCreateUser(t, "alice", "correct horse battery")
	loopback, _ := srv.mustCreateClient(t, clients.Registration{Name: "CLI", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	scheme, _ := srv.mustCreateClient(t, clients.Registration{Name: "Phone", Public: true, RedirectURIs: []string{"com.example.app:/cb"}})
	web, webSecret := srv.mustCreateClient(t, clients.Registration{Name: "Web", OwnerID: owner.ID, RedirectURIs: []string{"https://web.example/cb"}})

	b := newBrowser(t, srv.URL)
	allow := func(conf *oauth2.Config) {
		t.Helper()
		back := b.signInAndAuthorize(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "alice", "correct horse battery", "allow")
		if back.Query().Get("code") == "" {
			t.Fatalf("the user's own allow gave %s", back)
		}
	}
	attack := func(conf *oauth2.Config, prompt string) (*http.Response, string) {
		t.Helper()
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier())}
		if prompt != "" {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
		}
		return b.get(conf.AuthCodeURL(newState(t), opts...))
	}

	cli := srv.oauthConfig(loopback, "", "books:read")
	cli.RedirectURL = "http://127.0.0.1:40001/cb"
	allow(cli)
	phone := srv.oauthConfig(scheme, "", "books:read")
	allow(phone)
	site := srv.oauthConfig(web, webSecret, "books:read")
	allow(site)

	cli.RedirectURL = "http://127.0.0.1:40002/cb"
	for name, conf := range map[string]*oauth2.Config{"loopback": cli, "private-use scheme": phone} {
		t.Run(name, func(t *testing.T) {
			resp, body := attack(conf, "none")
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("prompt=none: %d, want a 303 with an error; body %.200s", resp.StatusCode, body)
			}
			q := mustParseURL(t, resp.Header.Get("Location")).Query()
			if q.Get("code") != "" || q.Get("error") != "consent_required" {
				t.Fatalf("prompt=none answered %v, want consent_required and no code", q)
			}
			resp, body = attack(conf, "")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="decision"`) {
				t.Fatalf("without prompt: %d Location %q, want the consent page", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}

	t.Run("confidential client still silent", func(t *testing.T) {
		resp, _ := attack(site, "none")
		if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("code") == "" {
			t.Fatalf("a remembered consent to a confidential client answered %v, want a code", q)
		}
	})

	t.Run("new redirect URI asks again", func(t *testing.T) {
		added := "https://new.example/cb"
		if _, err := clients.Update(context.Background(), srv.store, web.ID, web.Name, []string{"https://web.example/cb", added}, time.Now()); err != nil {
			t.Fatal(err)
		}
		site.RedirectURL = added
		resp, body := attack(site, "none")
		if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("code") != "" || q.Get("error") != "consent_required" {
			t.Fatalf("prompt=none to a redirect URI the user was never shown answered %v, want consent_required", q)
		}
		resp, body = attack(site, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "new.example") {
			t.Fatalf("got %d, want the consent page naming new.example", resp.StatusCode)
		}
		allow(site)
		g, err := srv.store.GetGrant(context.Background(), owner.ID, web.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"https://web.example/cb", added}; strings.Join(g.RedirectURIs, " ") != strings.Join(want, " ") {
			t.Fatalf("grant records %v, want %v", g.RedirectURIs, want)
		}
		resp, _ = attack(site, "none")
		if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("code") == "" {
			t.Fatalf("after the user allowed the new URI: %v, want a code", q)
		}
	})
}

// multipartBody builds a multipart/form-data body with the fields in order,
// repeats included, and pad bytes of filler.
func multipartBody(t *testing.T, pad int, kv ...string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i < len(kv); i += 2 {
		if err := mw.WriteField(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if pad > 0 {
		if err := mw.WriteField("padding", strings.Repeat("x", pad)); err != nil {
			t.Fatal(err)
		}
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

// TestMultipartBodies is defect 8: a multipart body is never read, at any
// OAuth endpoint, so it cannot smuggle repeats or a second credential past
// the form checks, and a GET's body is ignored whatever it is.
func TestMultipartBodies(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{Scope: "books:read books:write", RedirectURIs: []string{"https://app.example/cb", "https://app.example/other"}})
	conf := srv.oauthConfig(c, secret, "books:read")
	v := oauth2.GenerateVerifier()
	b := newBrowser(t, srv.URL)
	code := authorizedCode(t, srv, b, conf, v, "alice", "correct horse battery")

	post := func(path, contentType string, body io.Reader, basic bool) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, body)
		req.Header.Set("Content-Type", contentType)
		if basic {
			req.SetBasicAuth(c.ID, secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw := readBody(t, resp)
		var out map[string]any
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("%s: %d, body is not JSON: %q", path, resp.StatusCode, raw)
		}
		return resp, out
	}
	ct, body := multipartBody(t, 0,
		"grant_type", "authorization_code",
		"code", code, "code", "gatehouse_ac_other.x",
		"redirect_uri", conf.RedirectURL, "redirect_uri", "https://app.example/other",
		"client_secret", "wrong",
		"code_verifier", v)
	resp, out := post("/oauth2/token", ct, body, true)
	if resp.StatusCode != http.StatusBadRequest || errorCode(out) != "invalid_request" {
		t.Fatalf("multipart token request: %d %s, want 400 invalid_request", resp.StatusCode, fmtErr(out))
	}
	// The code was never touched: the same exchange as a form works.
	if _, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("urlencoded exchange after the multipart one: %v", err)
	}
	for _, path := range []string{"/oauth2/revoke", "/oauth2/introspect"} {
		ct, body := multipartBody(t, 0, "token", "gatehouse_at_x.y", "token", "gatehouse_at_z.w")
		if resp, out := post(path, ct, body, true); resp.StatusCode != http.StatusBadRequest || errorCode(out) != "invalid_request" {
			t.Errorf("multipart %s: %d %s, want 400 invalid_request", path, resp.StatusCode, fmtErr(out))
		}
	}

	t.Run("GET with a 3 MB multipart body", func(t *testing.T) {
		ct, body := multipartBody(t, 3<<20, "scope", "books:write", "redirect_uri", "https://app.example/other")
		u := conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("prompt", "consent"))
		req, _ := http.NewRequest(http.MethodGet, u, body)
		req.Header.Set("Content-Type", ct)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page := readBody(t, resp)
		wantStatus(t, resp, page, http.StatusOK)
		if strings.Contains(page, "books:write") || strings.Contains(page, "Add, change and delete") {
			t.Fatal("the consent page shows a scope from the GET body")
		}
		if !strings.Contains(page, "See your books") {
			t.Fatal("the consent page lacks the query's scope")
		}
	})

	t.Run("consent decision as multipart", func(t *testing.T) {
		_, page := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("prompt", "consent")))
		ct, body := multipartBody(t, 0, "decision", "allow")
		req, _ := http.NewRequest(http.MethodPost, srv.URL+consentAction(t, page), body)
		req.Header.Set("Content-Type", ct)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("multipart decision: %d Location %q, want 400", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)

// formPost reads a form_post response page: its action and fields.
func formPost(t *testing.T, resp *http.Response, page string) (string, url.Values) {
	t.Helper()
	wantStatus(t, resp, page, http.StatusOK)
	m := regexp.MustCompile(`<form method="post" action="([^"]*)" data-autosubmit`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form_post form on the page: %.800s", page)
	}
	fields := url.Values{}
	for _, f := range hiddenField.FindAllStringSubmatch(page, -1) {
		fields.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(page) || strings.Contains(page, "onload=") {
		t.Fatal("the form_post page has an inline script, which the CSP forbids")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	return html.UnescapeString(m[1]), fields
}

// TestResponseModes is defect 10: response_mode=query as a third-party CLI
// sends it, form_post delivered as a self-submitting form, and nothing else.
func TestResponseModes(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1/cb"}})
	port, got := callbackListener(t)
	conf := srv.oauthConfig(c, secret, "openid", "books:read")
	conf.RedirectURL = "http://127.0.0.1:" + port + "/cb"
	b := newBrowser(t, srv.URL)

	t.Run("discovery", func(t *testing.T) {
		resp, meta := api(t, http.MethodGet, srv.URL+"/.well-known/openid-configuration", "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatal(resp.Status)
		}
		if modes, _ := json.Marshal(meta["response_modes_supported"]); string(modes) != `["query","form_post"]` {
			t.Fatalf("response_modes_supported %s", modes)
		}
	})

	t.Run("query with golang.org/x/oauth2", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		state := newState(t)
		back := b.signInAndAuthorize(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("response_mode", "query")), "alice", "correct horse battery", "allow")
		if back.Query().Get("state") != state {
			t.Fatalf("redirect %s", back)
		}
		if _, err := conf.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(v)); err != nil {
			t.Fatalf("exchange: %v", err)
		}
	})

	t.Run("form_post, hand-built and exchanged with golang.org/x/oauth2", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		q := url.Values{
			"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {conf.RedirectURL},
			"scope": {"openid books:read"}, "state": {"form-post-state"}, "nonce": {"form-post-nonce"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"},
			"response_mode": {"form_post"}, "prompt": {"consent"},
		}
		resp, page := b.get("/oauth2/authorize?" + q.Encode())
		wantStatus(t, resp, page, http.StatusOK)
		resp, page = b.post(consentAction(t, page), url.Values{"decision": {"allow"}})
		action, fields := formPost(t, resp, page)
		if action != conf.RedirectURL {
			t.Fatalf("form action %q, want %q", action, conf.RedirectURL)
		}
		if fields.Get("state") != "form-post-state" || fields.Get("code") == "" || fields.Get("iss") != srv.URL {
			t.Fatalf("fields %v, want code, state and iss", fields)
		}
		// What the browser does with the form: post it to the app.
		resp, err := http.PostForm(action, fields)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		received := <-got
		tok, err := conf.Exchange(t.Context(), received.Get("code"), oauth2.VerifierOption(v))
		if err != nil || tok.Extra("id_token") == nil {
			t.Fatalf("exchange of the posted code: %v", err)
		}
	})

	t.Run("form_post error", func(t *testing.T) {
		resp, page := b.get(conf.AuthCodeURL("deny-state-value", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("response_mode", "form_post"), oauth2.SetAuthURLParam("prompt", "consent")))
		wantStatus(t, resp, page, http.StatusOK)
		resp, page = b.post(consentAction(t, page), url.Values{"decision": {"deny"}})
		_, fields := formPost(t, resp, page)
		if fields.Get("error") != "access_denied" || fields.Get("state") != "deny-state-value" || fields.Get("code") != "" {
			t.Fatalf("fields %v, want access_denied with the state", fields)
		}
		resp, page = b.get(conf.AuthCodeURL("scope-state-value", oauth2.SetAuthURLParam("response_mode", "form_post"), oauth2.SetAuthURLParam("scope", "books:read admin")))
		if _, fields := formPost(t, resp, page); fields.Get("error") != "invalid_scope" {
			t.Fatalf("fields %v, want invalid_scope", fields)
		}
	})

	for _, mode := range []string{"fragment", "web_message", "jwt", "FORM_POST"} {
		t.Run("unsupported "+mode, func(t *testing.T) {
			resp, body := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("response_mode", mode)))
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("%d, want a 303 with the error; body %.200s", resp.StatusCode, body)
			}
			if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("error") != "unsupported_response_mode" || q.Get("code") != "" {
				t.Fatalf("query %v, want unsupported_response_mode", q)
			}
		})
	}
}

// TestUnsupportedRequestParameters is defect 12: request objects and
// friends get clean errors, signed in or not, and never a 5xx.
func TestUnsupportedRequestParameters(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"https://app.example/cb"}})
	two, _ := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"https://app.example/a", "https://app.example/b"}})
	conf := srv.oauthConfig(c, secret, "openid", "books:read")
	signedIn := newBrowser(t, srv.URL)
	if resp, _ := signedIn.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("sign in")
	}
	cases := []struct {
		param, value, code string
	}{
		{"request_uri", "https://attacker.example/request.jwt", "request_uri_not_supported"},
		{"request", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.", "request_not_supported"},
		{"registration", `{"client_name":"x"}`, "registration_not_supported"},
	}
	for _, tc := range cases {
		for name, b := range map[string]*browser{"signed out": newBrowser(t, srv.URL), "signed in": signedIn} {
			t.Run(tc.param+" "+name, func(t *testing.T) {
				resp, body := b.get(conf.AuthCodeURL(newState(t), oauth2.SetAuthURLParam(tc.param, tc.value)))
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("%d, want a 303 with the error; body %.300s", resp.StatusCode, body)
				}
				if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("error") != tc.code {
					t.Fatalf("query %v, want %s", q, tc.code)
				}
			})
		}
	}
	// A PAR request_uri that was never pushed names no request whose
	// redirect URI could be trusted: the 400 page (RFC 9126 §4
	// invalid_request_uri), never a 5xx.
	t.Run("the issue's request, bare", func(t *testing.T) {
		resp, body := newBrowser(t, srv.URL).get("/oauth2/authorize?client_id=" + c.ID + "&request_uri=urn:ietf:params:oauth:request_uri:abc")
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%d Location %q; body %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		resp, body = newBrowser(t, srv.URL).get("/oauth2/authorize?client_id=" + two.ID + "&request_uri=urn:ietf:params:oauth:request_uri:abc")
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("no redirect_uri of two: %d Location %q, want the 400 page; body %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})
	t.Run("claims is ignored", func(t *testing.T) {
		resp, body := signedIn.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("claims", `{"id_token":{"email":null}}`)))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="decision"`) {
			t.Fatalf("%d, want the consent page", resp.StatusCode)
		}
	})
}

// TestFreshSignIn is defect 13's prompt=login and max_age: the user is
// asked to sign in again without being signed out, comes back once, and
// prompt=none never loops through a page.
func TestFreshSignIn(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"https://app.example/cb"}})
	conf := srv.oauthConfig(c, secret, "openid", "books:read")
	b := newBrowser(t, srv.URL)
	v := oauth2.GenerateVerifier()
	authorizedCode(t, srv, b, conf, v, "alice", "correct horse battery")

	for _, opt := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
		// Sign-in times have a resolution of one second: wait for the next
		// one, so the last sign-in is older than this request.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		u := conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(v), opt)
		resp, _ := b.get(u)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d, want a 303 to sign in", u, resp.StatusCode)
		}
		login := mustParseURL(t, resp.Header.Get("Location"))
		returnTo := mustParseURL(t, login.Query().Get("return_to"))
		if login.Path != "/login" || login.Query().Get("fresh") != "1" || returnTo.Query().Has("prompt") || !returnTo.Query().Has("signed_in_after") {
			t.Fatalf("sent to %s, want /login?fresh=1 with a marked return_to without prompt=login", login)
		}
		// Still signed in: the link signed no one out.
		if _, home := b.get("/"); !strings.Contains(home, "alice") {
			t.Fatal("prompt=login signed the user out")
		}
		// Coming back without a new sign-in does not loop.
		resp, _ = b.get(returnTo.String())
		if q := mustParseURL(t, resp.Header.Get("Location")).Query(); resp.StatusCode != http.StatusSeeOther || q.Get("error") != "login_required" {
			t.Fatalf("back without signing in: %d %v, want login_required", resp.StatusCode, q)
		}
		resp, body := b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "return_to": {returnTo.RequestURI()}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		resp, _ = b.get(resp.Header.Get("Location"))
		q := mustParseURL(t, resp.Header.Get("Location")).Query()
		if q.Get("code") == "" {
			t.Fatalf("after the fresh sign-in: %d %v, want a code", resp.StatusCode, q)
		}
		tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		if at := idTokenAuthTime(t, tok); time.Since(at) > 5*time.Second {
			t.Fatalf("auth_time %v, want the fresh sign-in", at)
		}
	}

	resp, _ := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("max_age", "0"), oauth2.SetAuthURLParam("prompt", "none")))
	if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none with a stale sign-in: %v, want login_required", q)
	}
	resp, _ = b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("max_age", "-1")))
	if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("error") != "invalid_request" {
		t.Fatalf("max_age=-1: %v, want invalid_request", q)
	}
}

func idTokenAuthTime(t *testing.T, tok *oauth2.Token) time.Time {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token %q", raw)
	}
	var claims struct {
		AuthTime int64 `json:"auth_time"`
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		t.Fatalf("id_token payload: %v", err)
	}
	return time.Unix(claims.AuthTime, 0)
}

// TestAuthorizeEndpointHeaders covers HEAD, the consent page's caching and
// the 404 pages.
func TestAuthorizeEndpointHeaders(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"https://app.example/cb"}})
	conf := srv.oauthConfig(c, secret, "books:read")
	b := newBrowser(t, srv.URL)
	authorizedCode(t, srv, b, conf, oauth2.GenerateVerifier(), "alice", "correct horse battery")

	t.Run("HEAD never issues a code", func(t *testing.T) {
		u := conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		req, _ := http.NewRequest(http.MethodHead, u, nil)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Location") != "" {
			t.Fatalf("HEAD: %d Location %q, want 405 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := b.get(u); mustParseURL(t, resp.Header.Get("Location")).Query().Get("code") == "" {
			t.Fatal("the GET after it got no code: the test does not show what HEAD withheld")
		}
	})

	t.Run("consent page is not cached", func(t *testing.T) {
		resp, body := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "consent")))
		wantStatus(t, resp, body, http.StatusOK)
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
		}
	})

	t.Run("404 pages", func(t *testing.T) {
		resp, body := b.get("/no/such/page")
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "Page not found") {
			t.Fatalf("%d %q %.200s, want the site's 404 page", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		for _, p := range []string{"/api/nothing", "/oauth2/nothing", "/api/nothing/" + storage.NewID()} {
			resp, body := b.get(p)
			if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: %d %q %.200s, want a JSON 404", p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
		resp, body = b.post("/metrics", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST /metrics: %d, want 405 still", resp.StatusCode)
		}
	})
}

// TestHSTS: an https issuer sends Strict-Transport-Security on every
// response, an http one on none.
func TestHSTS(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		want   bool
	}{{"https://gatehouse.example", true}, {"", false}} {
		args := []string{}
		if tc.issuer != "" {
			args = append(args, "--issuer", tc.issuer)
		}
		srv := newTestServer(t, args...)
		base := "http://" + srv.listener.Addr().String()
		for _, p := range []string{"/", "/healthz", "/.well-known/openid-configuration", "/no/such/page", "/oauth2/authorize"} {
			resp, err := http.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Strict-Transport-Security"); (got != "") != tc.want || tc.want && !strings.HasPrefix(got, "max-age=") {
				t.Errorf("issuer %q, %s: Strict-Transport-Security %q", tc.issuer, p, got)
			}
		}
	}
}

// TestStateOptionalWithPKCE: a PKCE request may leave out state (OAuth 2.1,
// RFC 9700 §2.1.1; MCP clients do), and the answer then carries none; a
// request without PKCE still needs one.
func TestStateOptionalWithPKCE(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"https://app.example/cb"}})
	conf := srv.oauthConfig(c, secret, "books:read")
	b := newBrowser(t, srv.URL)
	v := oauth2.GenerateVerifier()
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example/cb"}, "scope": {"books:read"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"},
	}
	back := b.signInAndAuthorize(srv.URL+"/oauth2/authorize?"+q.Encode(), "alice", "correct horse battery", "allow")
	if back.Query().Has("state") || back.Query().Get("code") == "" {
		t.Fatalf("redirect %s: want a code and no state", back)
	}
	if _, err := conf.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("exchange: %v", err)
	}

	q.Del("code_challenge")
	q.Del("code_challenge_method")
	resp, body := b.get("/oauth2/authorize?" + q.Encode())
	wantStatus(t, resp, body, http.StatusSeeOther)
	loc := mustParseURL(t, resp.Header.Get("Location"))
	if loc.Query().Get("error") != "invalid_state" || loc.Query().Has("code") {
		t.Fatalf("without PKCE or state: %s", loc)
	}
}
