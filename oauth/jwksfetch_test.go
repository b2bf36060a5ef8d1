package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/fetch"
	"gatehouse/oauth"
)

func TestFetchedJWKS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
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

	public := oauth.FetchedJWKS{Fetcher: fetch.New(fetch.Config{})}
	for _, u := range []string{srv.URL + "/jwks", "https://localhost:1/jwks", "https://[::1]:1/jwks", "https://10.0.0.1:1/", "http://169.254.169.254/latest"} {
		var fe *fetch.Error
		if _, err := public.FetchJWKS(ctx, u); !errors.As(err, &fe) {
			t.Errorf("fetch %s: %v, want refused", u, err)
		}
	}
	// With loopback allowed, what is left: redirects, size, status.
	f := oauth.FetchedJWKS{Fetcher: fetch.New(fetch.Config{AllowLoopback: true})}
	if body, err := f.FetchJWKS(ctx, srv.URL+"/jwks"); err != nil || string(body) != `{"keys":[]}` {
		t.Fatalf("fetch: %q, %v", body, err)
	}
	for _, path := range []string{"/redirect", "/big", "/missing"} {
		if _, err := f.FetchJWKS(ctx, srv.URL+path); err == nil {
			t.Errorf("fetch %s succeeded, want an error", path)
		}
	}
}
