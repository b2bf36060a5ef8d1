package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"gatehouse/oauth"
)

func TestPublicFetcher(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jwks":
			w.Write([]byte(`{"keys":[]}`))
		case "/redirect":
			http.Redirect(w, r, "/jwks", http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat(" ", 65<<10)))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	if _, err := oauth.NewPublicFetcher(nil).FetchJWKS(ctx, srv.URL+"/jwks"); err == nil || !strings.Contains(err.Error(), "not a public address") {
		t.Fatalf("loopback fetch: %v, want refused at dial time", err)
	}
	for _, u := range []string{"http://localhost:1/jwks", "http://[::1]:1/jwks", "http://10.0.0.1:1/", "http://169.254.169.254/latest"} {
		if _, err := oauth.NewPublicFetcher(nil).FetchJWKS(ctx, u); err == nil || !strings.Contains(err.Error(), "not a public address") {
			t.Errorf("fetch %s: %v, want refused", u, err)
		}
	}
	// With the address rule lifted, what is left: redirects, size, status.
	f := oauth.NewPublicFetcher(func(netip.Addr) bool { return true })
	if body, err := f.FetchJWKS(ctx, srv.URL+"/jwks"); err != nil || string(body) != `{"keys":[]}` {
		t.Fatalf("fetch: %q, %v", body, err)
	}
	for _, path := range []string{"/redirect", "/big", "/missing"} {
		if _, err := f.FetchJWKS(ctx, srv.URL+path); err == nil {
			t.Errorf("fetch %s succeeded, want an error", path)
		}
	}
}
