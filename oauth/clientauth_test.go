package oauth_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/accounts"
	"gatehouse/clients"
	"gatehouse/oauth"
	"gatehouse/oauth/dpoptest"
	"gatehouse/storage/sqlstore"
	"gatehouse/web/templates"
)

// fakeJWKS serves a key set by URI and counts the fetches.
type fakeJWKS struct {
	mu    sync.Mutex
	set   string
	calls int
}

func (f *fakeJWKS) FetchJWKS(_ context.Context, uri string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return []byte(f.set), nil
}

// TestJWKSURIClient: a private_key_jwt client whose keys are at its
// jwks_uri; the set is cached, and fetched again when an assertion names
// a key the cached set lacks (the client rotated).
func TestJWKSURIClient(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "g.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	secret := []byte("jwks-secret-0123456789abcdefghijklmnop")
	h, err := oauth.New(ctx, store, accounts.NewSessions(store, [][]byte{secret}, accounts.SessionConfig{}), oauth.Config{
		Issuer: issuer, TokenSecret: secret, AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, CodeTTL: time.Minute,
		SecretHasher: clients.SecretHasher{}, SigningKeySealKeys: [][]byte{secret[:32]},
	}, slog.New(slog.DiscardHandler), func(*http.Request, string) templates.Page { return templates.Page{} })
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := dpoptest.NewES256(), dpoptest.NewES256()
	k1.KeyID, k2.KeyID = "k1", "k2"
	fetcher := &fakeJWKS{set: k1.JWKS()}
	h.JWKS = fetcher
	mux := http.NewServeMux()
	h.Mount(mux)
	c, _, err := clients.Register(ctx, store, clients.Registration{Name: "Bank", GrantTypes: []string{"client_credentials"},
		AuthMethod: clients.AuthPrivateKeyJWT, JWKSURI: "https://bank.example/jwks"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	token := func(k dpoptest.Key) (int, string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {k.Assertion(c.ID, issuer, time.Minute, nil)}}
		r := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		code, _ := body["error"].(string)
		return w.Code, code
	}
	for range 2 {
		if status, code := token(k1); status != http.StatusOK {
			t.Fatalf("assertion by k1: %d %s", status, code)
		}
	}
	if fetcher.calls != 1 {
		t.Fatalf("%d fetches for two assertions, want 1 (cached)", fetcher.calls)
	}
	fetcher.mu.Lock()
	fetcher.set = k2.JWKS()
	fetcher.mu.Unlock()
	// The set was fetched moments ago: a key it lacks is no reason to
	// fetch again yet, so a flood of bad assertions cannot drive fetches.
	if status, code := token(k2); status != http.StatusUnauthorized || code != "invalid_client" {
		t.Fatalf("assertion by rotated-in k2 right after a fetch: %d %s, want 401 invalid_client", status, code)
	}
	if fetcher.calls != 1 {
		t.Fatalf("%d fetches, want still 1", fetcher.calls)
	}
}
