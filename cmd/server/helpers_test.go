package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/accounts"
	"gatehouse/clients"
	"gatehouse/storage"
)

const testSecret = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz"

// syncBuffer collects the server's logs for assertions.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	*server
	logs *syncBuffer
}

// newTestServer starts the server the way main does, on a free loopback
// port with SQLite in a temporary directory unless args name a --db.
func newTestServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	return newTestServerWith(t, func(*config) {}, args...)
}

// newTestServerWith is newTestServer with edit applied to the parsed
// configuration, for settings no flag reaches, such as the clock.
func newTestServerWith(t *testing.T, edit func(*config), args ...string) *testServer {
	t.Helper()
	base := []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "gatehouse.db"), "--secret", testSecret}
	var cfg config
	fs := newFlagSet("server", &cfg, io.Discard)
	serverFlags(fs, &cfg)
	if err := parse(fs, append(base, args...), func(string) string { return "" }); err != nil {
		t.Fatalf("parse flags: %v", err)
	}
	edit(&cfg)
	logs := &syncBuffer{}
	logger, err := newLogger(logs, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := start(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return &testServer{server: srv, logs: logs}
}

func (s *testServer) mustCreateUser(t *testing.T, name, password string) storage.User {
	t.Helper()
	u, err := accounts.Register(context.Background(), s.store, name, password, time.Now())
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

// mustCreateClient registers a client; it returns its secret ("" for a
// public client).
func (s *testServer) mustCreateClient(t *testing.T, reg clients.Registration) (storage.Client, string) {
	t.Helper()
	if reg.Name == "" {
		reg.Name = "Test App"
	}
	c, secret, err := clients.Register(context.Background(), s.store, reg, time.Now())
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	return c, secret
}

func (s *testServer) oauthConfig(c storage.Client, secret string, scopes ...string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if secret == "" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: secret,
		RedirectURL:  c.RedirectURIs[0],
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   s.URL + "/oauth2/authorize",
			TokenURL:  s.URL + "/oauth2/token",
			AuthStyle: style,
		},
	}
}

// browser is a person's browser: it keeps cookies and lets the test see
// every redirect instead of following it.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}}
}

func (b *browser) abs(u string) string {
	if strings.HasPrefix(u, "/") {
		return b.base + u
	}
	return u
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(b.abs(u))
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readBody(b.t, resp)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.PostForm(b.abs(u), form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	return resp, readBody(b.t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func wantStatus(t *testing.T, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body: %.500s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

// consentAction finds the consent form's action on the page.
func consentAction(t *testing.T, page string) string {
	t.Helper()
	for _, m := range regexp.MustCompile(`action="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if a := html.UnescapeString(m[1]); strings.HasPrefix(a, "/oauth2/authorize?") {
			return a
		}
	}
	t.Fatalf("no consent form on page: %.1000s", page)
	return ""
}

// signInAndAuthorize takes b through authorization: authorize, sign in,
// consent with decision, and returns the redirect back to the client.
func (b *browser) signInAndAuthorize(authURL, username, password, decision string) *url.URL {
	b.t.Helper()
	resp, body := b.get(authURL)
	if resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		login, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatal(err)
		}
		resp, body = b.post("/login", url.Values{"username": {username}, "password": {password}, "return_to": {login.Query().Get("return_to")}})
		wantStatus(b.t, resp, body, http.StatusSeeOther)
		resp, body = b.get(resp.Header.Get("Location"))
	}
	if resp.StatusCode == http.StatusSeeOther {
		return mustParseURL(b.t, resp.Header.Get("Location"))
	}
	wantStatus(b.t, resp, body, http.StatusOK)
	resp, body = b.post(consentAction(b.t, body), url.Values{"decision": {decision}})
	wantStatus(b.t, resp, body, http.StatusSeeOther)
	return mustParseURL(b.t, resp.Header.Get("Location"))
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return u
}

func newState(t *testing.T) string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// api calls the books API with a bearer token.
func api(t *testing.T, method, u, token string, body any) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch v := body.(type) {
		case string:
			rd = strings.NewReader(v)
		default:
			b, _ := json.Marshal(v)
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	raw := readBody(t, resp)
	var out map[string]any
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, u, raw)
		}
	}
	return resp, out
}

func tokenRequest(t *testing.T, base string, form url.Values, user, pass string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := readBody(t, resp)
	var out map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("token response is not JSON: %q", raw)
	}
	return resp, out
}

func errorCode(m map[string]any) string { s, _ := m["error"].(string); return s }

func fmtErr(m map[string]any) string {
	return fmt.Sprintf("%v: %v", m["error"], m["error_description"])
}

func asRetrieveError(err error, target **oauth2.RetrieveError) bool {
	return errors.As(err, target)
}

// createReg is a confidential web client with a loopback redirect URI.
func createReg(name string) clients.Registration {
	return clients.Registration{Name: name, RedirectURIs: []string{"http://127.0.0.1:9999/callback"}}
}
