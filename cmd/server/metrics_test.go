package main

import (
	"database/sql"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/oauth2"
	_ "modernc.org/sqlite"

	"gatehouse/clients"
)

// scrape returns the value of one sample from /metrics, or -1 when the
// sample is absent.
func scrape(t *testing.T, base, sample string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetrics(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	conf := srv.oauthConfig(c, secret, "offline_access", "books:read")

	b := newBrowser(t, srv.URL)
	resp, _ := b.post("/login", url.Values{"username": {"alice"}, "password": {"wrong"}})
	wantStatus(t, resp, "", http.StatusUnauthorized)
	v := oauth2.GenerateVerifier()
	code := authorizedCode(t, srv, b, conf, v, "alice", "correct horse battery")
	tok, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err != nil {
		t.Fatal(err)
	}
	resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, c.ID, "wrong secret")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d %s", resp.StatusCode, fmtErr(body))
	}

	for sample, want := range map[string]float64{
		`gatehouse_login_failures_total`:                                            1,
		`gatehouse_client_auth_failures_total`:                                      1,
		`gatehouse_tokens_issued_total{grant_type="authorization_code"}`:            1,
		`gatehouse_tokens_issued_total{grant_type="refresh_token"}`:                 1,
		`gatehouse_tokens_issued_total{grant_type="client_credentials"}`:            0,
		`gatehouse_http_requests_total{code="2xx",route="POST /oauth2/token"}`:      2,
		`gatehouse_http_requests_total{code="4xx",route="POST /oauth2/token"}`:      1,
		`gatehouse_http_requests_total{code="4xx",route="POST /login"}`:             1,
		`gatehouse_http_request_duration_seconds_count{route="POST /oauth2/token"}`: 3,
	} {
		if got := scrape(t, srv.URL, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}

// TestMetricsObserveAllocatesNothing keeps the per-request cost to a map
// lookup once a route has been seen.
func TestMetricsObserveAllocatesNothing(t *testing.T) {
	m := newMetrics()
	m.observe("GET /api/books", 200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { m.observe("GET /api/books", 404, time.Millisecond) }); n != 0 {
		t.Fatalf("observe allocates %v times per request", n)
	}
}

func TestMetricsPoolStats(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(3)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	m := newMetrics()
	m.registerPools(func() map[string]sql.DBStats { return map[string]sql.DBStats{"write": db.Stats()} })
	ts := httptest.NewServer(m.handler())
	defer ts.Close()
	for sample, want := range map[string]float64{
		`gatehouse_db_max_open_connections{pool="write"}`: 3,
		`gatehouse_db_open_connections{pool="write"}`:     1,
		`gatehouse_db_in_use_connections{pool="write"}`:   1,
		`gatehouse_db_wait_count_total{pool="write"}`:     0,
	} {
		if got := scrape(t, ts.URL, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}
