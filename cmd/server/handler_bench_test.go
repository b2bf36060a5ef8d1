//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gatehouse/accounts"
	"gatehouse/clients"
	"gatehouse/oauth/dpoptest"
	"gatehouse/storage"
)

// The handler benchmarks drive the whole server handler (middleware, mux,
// fosite, SQLite) in process, without the network: what they profile is
// the server's own cost per request. They log as the server does by
// default, text at info, to io.Discard. cmd/bench measures the same
// scenarios over real HTTP.
//
// Besides ns/op they report cpu-ns/op, the process's CPU time per
// operation: on a machine shared with other work, wall time varies with
// the neighbours, CPU time much less.

const benchRedirect = "http://127.0.0.1:9000/callback"

type benchServer struct {
	h        http.Handler
	store    storage.Store
	userID   string // alice's
	app      storage.Client
	appAuth  string // Basic credentials of app
	svcAuth  string // Basic credentials of a client_credentials client
	cookie   string // a signed-in session of a user who allowed app everything
	password string
}

func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	var cfg config
	fs := newFlagSet("server", &cfg, io.Discard)
	serverFlags(fs, &cfg)
	args := []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(b.TempDir(), "gatehouse.db"), "--secret", testSecret}
	if err := parse(fs, args, func(string) string { return "" }); err != nil {
		b.Fatal(err)
	}
	logger, err := newLogger(io.Discard, "text", "info")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := start(ctx, cfg, logger)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.wait(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})

	s := &benchServer{h: srv.http.Handler, store: srv.store, password: "correct horse battery staple"}
	now := time.Now()
	user, err := accounts.Register(ctx, srv.store, "alice", s.password, now)
	if err != nil {
		b.Fatal(err)
	}
	s.userID = user.ID
	var secret string
	s.app, secret, err = clients.Register(ctx, srv.store, clients.Registration{Name: "App", RedirectURIs: []string{benchRedirect}}, now)
	if err != nil {
		b.Fatal(err)
	}
	s.appAuth = benchBasic(s.app.ID, secret)
	svc, svcSecret, err := clients.Register(ctx, srv.store, clients.Registration{Name: "Service", GrantTypes: []string{"client_credentials"}}, now)
	if err != nil {
		b.Fatal(err)
	}
	s.svcAuth = benchBasic(svc.ID, svcSecret)
	err = srv.store.PutGrant(ctx, storage.Grant{UserID: user.ID, ClientID: s.app.ID, Scopes: []string{"openid", "profile", "offline_access", "books:read", "books:write"}, RedirectURIs: s.app.RedirectURIs, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		b.Fatal(err)
	}
	s.cookie = s.signIn(b, "alice")
	return s
}

// benchMeasureCPU resets the timer and reports cpu-ns/op when the benchmark
// ends.
func benchMeasureCPU(b *testing.B) {
	start := benchCPUTime()
	b.Cleanup(func() {
		b.ReportMetric(float64(benchCPUTime()-start)/float64(b.N), "cpu-ns/op")
	})
	b.ResetTimer()
}

func benchCPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchBasic(id, secret string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return r.Header.Get("Authorization")
}

// serve runs one request through the handler.
func (s *benchServer) serve(method, target string, form url.Values, header ...string) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	// net/http gives every request a context that ends with it, which
	// the database layers watch; httptest's never ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	return w
}

func (s *benchServer) signIn(b *testing.B, username string) string {
	w := s.serve("POST", "/login", url.Values{"username": {username}, "password": {s.password}, "return_to": {"/"}})
	for _, c := range w.Result().Cookies() {
		if c.Name == "gatehouse_session" {
			return c.Name + "=" + c.Value
		}
	}
	b.Fatalf("sign-in: status %d, no session cookie", w.Code)
	return ""
}

type benchTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// flow is the returning user's code flow: authorize, then exchange.
func (s *benchServer) flow(scope string) (benchTokens, error) {
	form, err := s.authorize(scope)
	if err != nil {
		return benchTokens{}, err
	}
	return s.token(s.appAuth, form)
}

// authorize is the authorization request of flow; it returns the form
// that exchanges its code.
func (s *benchServer) authorize(scope string) (url.Values, error) {
	verifier := strings.Repeat("v", 20) + storage.NewID()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {s.app.ID}, "redirect_uri": {benchRedirect},
		"scope": {scope}, "state": {storage.NewID()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	w := s.serve("GET", "/oauth2/authorize?"+q.Encode(), nil, "Cookie", s.cookie)
	loc, err := url.Parse(w.Header().Get("Location"))
	if w.Code != http.StatusSeeOther || err != nil || loc.Query().Get("code") == "" {
		return nil, &benchStatusError{"authorize", w.Code, w.Body.String()}
	}
	return url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {benchRedirect}, "code_verifier": {verifier}}, nil
}

func (s *benchServer) token(auth string, form url.Values, header ...string) (benchTokens, error) {
	w := s.serve("POST", "/oauth2/token", form, append([]string{"Authorization", auth}, header...)...)
	var t benchTokens
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &t) != nil {
		return benchTokens{}, &benchStatusError{"token", w.Code, w.Body.String()}
	}
	return t, nil
}

type benchStatusError struct {
	what   string
	status int
	body   string
}

func (e *benchStatusError) Error() string {
	return e.what + ": " + http.StatusText(e.status) + ": " + e.body
}

const benchAPIScope = "offline_access books:read books:write"

func (s *benchServer) mustFlow(b *testing.B, scope string) benchTokens {
	t, err := s.flow(scope)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkServerBooks is GET /api/books with a bearer token: the token
// check and a page of 20 books. The books do not change, so after the
// first request the page comes from the page cache: this is the hit path,
// BenchmarkServerBooksMiss the read and encoding.
func BenchmarkServerBooks(b *testing.B) {
	s := newBenchServer(b)
	access := s.mustFlow(b, benchAPIScope).AccessToken
	s.addBooks(b)
	benchMeasureCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := s.serve("GET", "/api/books?limit=20", nil, "Authorization", "Bearer "+access); w.Code != http.StatusOK {
				b.Errorf("list books: %d %s", w.Code, w.Body)
				return
			}
		}
	})
}

// BenchmarkServerBooksMiss is BenchmarkServerBooks with a page the cache
// does not hold: each request starts after a cursor of its own, before the
// first book, so it reads and encodes all 20 books again.
func BenchmarkServerBooksMiss(b *testing.B) {
	s := newBenchServer(b)
	access := s.mustFlow(b, benchAPIScope).AccessToken
	s.addBooks(b)
	var next atomic.Int64
	benchMeasureCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			// Book IDs begin with their time, far above 0000000000.
			cursor := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "0000000000%016d", next.Add(1)))
			if w := s.serve("GET", "/api/books?limit=20&cursor="+cursor, nil, "Authorization", "Bearer "+access); w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte("Book t")) {
				b.Errorf("list books: %d %s", w.Code, w.Body)
				return
			}
		}
	})
}

// BenchmarkServerBooksDPoP is BenchmarkServerBooks with a DPoP-bound
// token and a fresh proof for each request. The proofs are signed before
// the measurement: signing is the client's cost.
func BenchmarkServerBooksDPoP(b *testing.B) {
	s := newBenchServer(b)
	var meta struct {
		Issuer string `json:"issuer"`
	}
	if w := s.serve("GET", "/.well-known/openid-configuration", nil); json.Unmarshal(w.Body.Bytes(), &meta) != nil || meta.Issuer == "" {
		b.Fatalf("discovery: %d %s", w.Code, w.Body)
	}
	key := dpoptest.NewES256()
	form, err := s.authorize(benchAPIScope)
	if err != nil {
		b.Fatal(err)
	}
	t, err := s.token(s.appAuth, form, "DPoP", key.Build(dpoptest.Proof{Method: "POST", URL: meta.Issuer + "/oauth2/token"}))
	if err != nil {
		b.Fatal(err)
	}
	access := t.AccessToken
	s.addBooks(b)
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = key.Build(dpoptest.Proof{Method: "GET", URL: meta.Issuer + "/api/books", AccessToken: access})
	}
	var next atomic.Int64
	benchMeasureCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			proof := proofs[next.Add(1)-1]
			if w := s.serve("GET", "/api/books?limit=20", nil, "Authorization", "DPoP "+access, "DPoP", proof); w.Code != http.StatusOK {
				b.Errorf("list books: %d %s", w.Code, w.Body)
				return
			}
		}
	})
}

// addBooks gives the user 20 books.
func (s *benchServer) addBooks(b *testing.B) {
	b.Helper()
	now := time.Now()
	for i := range 20 {
		year := 1965
		bk := storage.Book{ID: storage.NewID(), UserID: s.userID, Title: "Book " + string(rune('a'+i)), Author: "Someone", Year: &year, CreatedAt: now, UpdatedAt: now}
		if err := s.store.CreateBook(context.Background(), bk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerClientCredentials is a client_credentials token request
// with client_secret_basic.
func BenchmarkServerClientCredentials(b *testing.B) {
	s := newBenchServer(b)
	form := url.Values{"grant_type": {"client_credentials"}}
	benchMeasureCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.token(s.svcAuth, form); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkServerCodeFlow is the returning user's flow with an ID token,
// signed with each algorithm: authorize answered from the remembered
// consent, then the code exchange.
func BenchmarkServerCodeFlow(b *testing.B) {
	for _, alg := range clients.IDTokenAlgs {
		b.Run(alg, func(b *testing.B) {
			s := newBenchServer(b)
			if _, err := clients.SetIDTokenAlg(context.Background(), s.store, s.app.ID, alg, time.Now()); err != nil {
				b.Fatal(err)
			}
			benchMeasureCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.flow("openid " + benchAPIScope); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkServerRefresh rotates refresh tokens, one chain per goroutine.
func BenchmarkServerRefresh(b *testing.B) {
	s := newBenchServer(b)
	benchMeasureCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		refresh := s.mustFlow(b, benchAPIScope).RefreshToken
		for pb.Next() {
			t, err := s.token(s.appAuth, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
			if err != nil {
				b.Error(err)
				return
			}
			refresh = t.RefreshToken
		}
	})
}

// BenchmarkServerIntrospect is POST /oauth2/introspect by the client the
// token was issued to.
func BenchmarkServerIntrospect(b *testing.B) {
	s := newBenchServer(b)
	form := url.Values{"token": {s.mustFlow(b, benchAPIScope).AccessToken}}
	var inactive atomic.Bool
	benchMeasureCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := s.serve("POST", "/oauth2/introspect", form, "Authorization", s.appAuth)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"active":true`) {
				inactive.Store(true)
			}
		}
	})
	if inactive.Load() {
		b.Fatal("introspection did not find the token active")
	}
}
