package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"gatehouse/storage"
)

// docServer publishes client metadata documents on loopback; each path
// answers as its handler says.
type docServer struct {
	*httptest.Server
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
}

func newDocServer(t *testing.T) *docServer {
	d := &docServer{handlers: map[string]http.HandlerFunc{}}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		h := d.handlers[r.URL.Path]
		d.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(d.Close)
	return d
}

// publish serves doc (with client_id set to its own URL unless doc has
// one) at path and returns the URL.
func (d *docServer) publish(path string, doc map[string]any) string {
	u := d.URL + path
	if _, ok := doc["client_id"]; !ok {
		doc["client_id"] = u
	}
	body, _ := json.Marshal(doc)
	d.handle(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(body)
	})
	return u
}

func (d *docServer) handle(path string, h http.HandlerFunc) {
	d.mu.Lock()
	d.handlers[path] = h
	d.mu.Unlock()
}

func appDoc(redirects ...string) map[string]any {
	return map[string]any{
		"client_name":                "Doc App",
		"redirect_uris":              redirects,
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
	}
}

func TestClientMetadataDocumentFlow(t *testing.T) {
	srv := newTestServer(t, "--client-metadata-allow-loopback")
	srv.mustCreateUser(t, "alice", "alice-password")
	docs := newDocServer(t)
	clientID := docs.publish("/clients/app.json", appDoc("http://localhost/callback"))
	// The app listens wherever it can; a portless loopback redirect in
	// the document takes any port.
	redirect := fmt.Sprintf("http://localhost:%d/callback", freePort(t))
	b := newBrowser(t, srv.URL)
	p := newPKCE(t)
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "scope": {"books:read books:write offline_access"}, "resource": {srv.URL + "/mcp"},
		"response_type": {"code"}, "code_challenge": {p.challenge}, "code_challenge_method": {"S256"}, "state": {"state-one-xyz"}}
	authURL := srv.URL + "/oauth2/authorize?" + q.Encode()

	resp, body := b.get(authURL)
	wantStatus(t, resp, body, http.StatusSeeOther)
	login := mustParseURL(t, resp.Header.Get("Location"))
	resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {"alice-password"}, "return_to": {login.Query().Get("return_to")}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.get(resp.Header.Get("Location"))
	wantStatus(t, resp, body, http.StatusOK)
	host := strings.TrimPrefix(docs.URL, "http://")
	if !strings.Contains(body, "Doc App") || !strings.Contains(body, host) || !strings.Contains(body, "has not vetted this app") {
		t.Errorf("the consent page does not show the document's host as unvetted identity: %.2000s", body)
	}
	// Nothing is stored for a document until someone allows it something.
	if _, err := srv.store.GetClient(context.Background(), clientID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a client row exists before consent: %v", err)
	}
	resp, body = b.post(consentAction(t, body), url.Values{"decision": {"allow"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	back := mustParseURL(t, resp.Header.Get("Location"))
	if c, err := srv.store.GetClient(context.Background(), clientID); err != nil || c.Name != "Doc App" || !c.Public {
		t.Errorf("the client row after consent: %+v %v", c, err)
	}
	if !strings.HasPrefix(back.String(), redirect+"?") || back.Query().Get("state") != "state-one-xyz" || back.Query().Get("iss") != srv.URL {
		t.Fatalf("redirected to %s, want %s with state and iss", back, redirect)
	}

	form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirect},
		"code_verifier": {p.verifier}, "client_id": {clientID}, "resource": {srv.URL + "/mcp"}}
	resp, out := tokenRequest(t, srv.URL, form, "", "")
	wantStatus(t, resp, fmtErr(out), http.StatusOK)
	access, refresh := out["access_token"].(string), out["refresh_token"].(string)
	if access == "" || refresh == "" {
		t.Fatalf("token response %v", out)
	}

	// The token works at /mcp, through the Go SDK's client.
	hc := oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: access}))
	session, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	var page struct {
		Books []mcpBook `json:"books"`
	}
	if res := callTool(t, session, "list_books", map[string]any{}, &page); res.IsError || page.Books == nil {
		t.Errorf("list_books: %s %+v", toolText(res), page)
	}

	resp, out = tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {clientID}}, "", "")
	wantStatus(t, resp, fmtErr(out), http.StatusOK)

	// The document is cached: its publisher going away does not break the
	// app within the cache time.
	docs.handle("/clients/app.json", http.NotFound)
	resp, out = tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {out["refresh_token"].(string)}, "client_id": {clientID}}, "", "")
	wantStatus(t, resp, fmtErr(out), http.StatusOK)
}

func TestClientMetadataDocumentTokenEndpoint(t *testing.T) {
	srv := newTestServer(t, "--client-metadata-allow-loopback")
	docs := newDocServer(t)
	for name, id := range map[string]string{
		"404":      docs.URL + "/missing.json",
		"mismatch": docs.publish("/other.json", map[string]any{"client_id": "https://elsewhere.example/c.json", "client_name": "x", "redirect_uris": []string{"http://localhost/cb"}, "token_endpoint_auth_method": "none"}),
	} {
		resp, out := tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {"gatehouse_ac_x.y"}, "redirect_uri": {"http://localhost/cb"}, "code_verifier": {strings.Repeat("v", 43)}, "client_id": {id}}, "", "")
		if resp.StatusCode != http.StatusUnauthorized || errorCode(out) != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", name, resp.StatusCode, out)
		}
	}
}

func TestClientMetadataDocumentFailures(t *testing.T) {
	srv := newTestServer(t, "--client-metadata-allow-loopback")
	strict := newTestServer(t)
	off := newTestServer(t, "--client-metadata-documents", "off")
	docs := newDocServer(t)
	redirect := "http://localhost:4567/callback"
	good := docs.publish("/good.json", appDoc("http://localhost/callback", "https://localhost/secure"))
	docs.publish("/mismatch.json", map[string]any{"client_id": docs.URL + "/other.json", "client_name": "x", "redirect_uris": []string{"http://localhost/callback"}, "token_endpoint_auth_method": "none"})
	docs.handle("/html.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`{}`))
	})
	docs.handle("/garbage.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"client_id":`))
	})
	docs.handle("/large.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		doc := appDoc("http://localhost/callback")
		doc["client_id"] = docs.URL + "/large.json"
		doc["padding"] = strings.Repeat("x", 70<<10)
		json.NewEncoder(w).Encode(doc)
	})
	release := make(chan struct{})
	defer close(release)
	docs.handle("/slow.json", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	docs.handle("/redirect.json", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/good.json", http.StatusFound)
	})
	docs.publish("/shared-secret.json", map[string]any{"client_name": "x", "redirect_uris": []string{"http://localhost/callback"}, "token_endpoint_auth_method": "client_secret_basic"})
	docs.publish("/no-name.json", map[string]any{"redirect_uris": []string{"http://localhost/callback"}, "token_endpoint_auth_method": "none"})
	httpsLoopback := "https://127.0.0.1:" + docs.URL[strings.LastIndex(docs.URL, ":")+1:] + "/good.json"

	for _, tc := range []struct {
		name     string
		srv      *testServer
		clientID string
		redirect string
		want     string
	}{
		{"mismatched client_id", srv, docs.URL + "/mismatch.json", redirect, "not the URL it was fetched from"},
		{"unlisted redirect", srv, good, "http://localhost:4567/elsewhere", "is not one of the redirect_uris"},
		{"https loopback gets no port freedom", srv, good, "https://localhost:8443/secure", "is not one of the redirect_uris"},
		{"404", srv, docs.URL + "/missing.json", redirect, "answered 404"},
		{"not JSON by type", srv, docs.URL + "/html.json", redirect, "content type is not application/json"},
		{"not JSON", srv, docs.URL + "/garbage.json", redirect, "not valid JSON"},
		{"too large", srv, docs.URL + "/large.json", redirect, "larger than 64 KiB"},
		{"too slow", srv, docs.URL + "/slow.json", redirect, "did not answer within 5s"},
		{"redirect", srv, docs.URL + "/redirect.json", redirect, "redirect (302), which is not followed"},
		{"private address", srv, "https://10.1.2.3/client.json", redirect, "not public"},
		{"loopback without the flag", strict, httpsLoopback, redirect, "not public"},
		{"http without the flag", strict, good, redirect, "must use https"},
		{"fragment", srv, good + "#frag", redirect, "must not contain a fragment"},
		{"no path", srv, docs.URL + "/", redirect, "must have a path"},
		{"shared secret", srv, docs.URL + "/shared-secret.json", redirect, "cannot use a shared secret"},
		{"no client_name", srv, docs.URL + "/no-name.json", redirect, "client_name"},
		{"no redirect_uri", srv, good, "", "exactly one redirect_uri"},
		{"documents off", off, good, redirect, "does not accept client metadata documents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"client_id": {tc.clientID}, "response_type": {"code"}, "scope": {"books:read"}, "state": {"state-long-enough"},
				"code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}}
			if tc.redirect != "" {
				q.Set("redirect_uri", tc.redirect)
			}
			start := time.Now()
			resp, body := newBrowser(t, tc.srv.URL).get("/oauth2/authorize?" + q.Encode())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d Location=%q %q, want a 400 page and no redirect", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(body, tc.want) {
				t.Errorf("the page does not name the cause %q: %.3000s", tc.want, body)
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}

	// The good document itself is fine: its loopback redirect takes a port.
	q := url.Values{"client_id": {good}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"books:read"}, "state": {"state-long-enough"},
		"code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}}
	resp, _ := newBrowser(t, srv.URL).get("/oauth2/authorize?" + q.Encode())
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("good document: %d %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestRedirectMatchesLoopbackPorts(t *testing.T) {
	srv := newTestServer(t, "--client-metadata-allow-loopback")
	docs := newDocServer(t)
	id := docs.publish("/ports.json", appDoc("http://127.0.0.1/cb", "http://[::1]/cb?x=1", "http://localhost/cb", "http://localhost:7000/fixed", "https://localhost/tls"))
	for redirect, ok := range map[string]bool{
		"http://127.0.0.1:5000/cb":    true,
		"http://[::1]:5001/cb?x=1":    true,
		"http://localhost:5002/cb":    true,
		"http://localhost/cb":         true,
		"http://localhost:7000/fixed": true,
		"http://localhost:7001/fixed": false,
		"http://localhost:5002/cb/":   false,
		"http://localhost:5002/CB":    false,
		"http://[::1]:5001/cb":        false,
		"http://127.0.0.1:5000/cb?":   false,
		"http://127.0.0.2:5000/cb":    false,
		"https://127.0.0.1:5000/cb":   false,
		"https://localhost:5003/tls":  false,
		"https://localhost/tls":       true,
		"http://localhost:0x50/cb":    false,
	} {
		q := url.Values{"client_id": {id}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"books:read"}, "state": {"state-long-enough"},
			"code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}}
		resp, _ := newBrowser(t, srv.URL).get("/oauth2/authorize?" + q.Encode())
		if got := resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login"); got != ok {
			t.Errorf("%s: %d, want accepted=%v", redirect, resp.StatusCode, ok)
		}
	}
}
