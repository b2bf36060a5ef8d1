package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"gatehouse/oauth"
	"gatehouse/oauth/dpoptest"
	"gatehouse/storage"
)

// memReplays is the replay store in memory, for the pure verifier's tests;
// the server's own is the database (see cmd/server's multi-instance test).
type memReplays struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memReplays) UseOnce(_ context.Context, key string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	if m.seen[key] {
		return storage.ErrConflict
	}
	m.seen[key] = true
	return nil
}

const resURL = "https://as.example/api/books"

func TestVerifyDPoP(t *testing.T) {
	now := time.Now()
	es := dpoptest.NewES256()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs := dpoptest.Key{Private: rsaKey, Alg: jose.RS256}
	ps := dpoptest.Key{Private: rsaKey, Alg: jose.PS256}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed := dpoptest.Key{Private: edPriv, Alg: jose.EdDSA}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakKey := dpoptest.Key{Private: weak, Alg: jose.RS256}
	es384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	es384Key := dpoptest.Key{Private: es384, Alg: jose.ES384}
	private := jose.JSONWebKey{Key: es.Private, Algorithm: "ES256"}
	other := dpoptest.NewES256().PublicJWK()

	good := func() dpoptest.Proof {
		return dpoptest.Proof{Method: "GET", URL: resURL, IAT: now, AccessToken: "tok"}
	}
	with := func(edit func(*dpoptest.Proof)) dpoptest.Proof { p := good(); edit(&p); return p }
	noneAlg := func() string {
		p := strings.Split(es.Build(good()), ".")
		return "eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ." + p[1] + "."
	}

	cases := []struct {
		name    string
		headers []string
		chk     func(*oauth.DPoPCheck)
		want    string // "" accepts, else the error code
	}{
		{"ES256", []string{es.Build(good())}, nil, ""},
		{"RS256", []string{rs.Build(good())}, nil, ""},
		{"PS256", []string{ps.Build(good())}, nil, ""},
		{"EdDSA", []string{ed.Build(good())}, nil, ""},
		{"htu with default port and upper-case host", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "https://AS.example:443/api/books?x=1" }))}, nil, ""},
		{"no header", nil, nil, "invalid_dpop_proof"},
		{"two headers", []string{es.Build(good()), es.Build(good())}, nil, "invalid_dpop_proof"},
		{"not a JWT", []string{"not.a.jwt"}, nil, "invalid_dpop_proof"},
		{"empty", []string{""}, nil, "invalid_dpop_proof"},
		{"typ missing", []string{es.Build(with(func(p *dpoptest.Proof) { p.Typ = "JWT" }))}, nil, "invalid_dpop_proof"},
		{"typ wrong", []string{es.Build(with(func(p *dpoptest.Proof) { p.Typ = "jwt" }))}, nil, "invalid_dpop_proof"},
		{"alg none", []string{noneAlg()}, nil, "invalid_dpop_proof"},
		{"alg not supported (ES384)", []string{es384Key.Build(good())}, nil, "invalid_dpop_proof"},
		{"private key in jwk", []string{es.Build(with(func(p *dpoptest.Proof) { p.JWK = &private }))}, nil, "invalid_dpop_proof"},
		{"no jwk", []string{es.Build(with(func(p *dpoptest.Proof) { p.NoJWK = true }))}, nil, "invalid_dpop_proof"},
		{"jwk of another key", []string{es.Build(with(func(p *dpoptest.Proof) { p.JWK = &other }))}, nil, "invalid_dpop_proof"},
		{"RSA key under 2048 bits", []string{weakKey.Build(good())}, nil, "invalid_dpop_proof"},
		{"wrong htm", []string{es.Build(with(func(p *dpoptest.Proof) { p.Method = "POST" }))}, nil, "invalid_dpop_proof"},
		{"lower-case htm", []string{es.Build(with(func(p *dpoptest.Proof) { p.Method = "get" }))}, nil, "invalid_dpop_proof"},
		{"wrong htu path", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "https://as.example/api/books/1" }))}, nil, "invalid_dpop_proof"},
		{"wrong htu host", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "https://evil.example/api/books" }))}, nil, "invalid_dpop_proof"},
		{"wrong htu scheme", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "http://as.example/api/books" }))}, nil, "invalid_dpop_proof"},
		{"relative htu", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "/api/books" }))}, nil, "invalid_dpop_proof"},
		{"stale iat", []string{es.Build(with(func(p *dpoptest.Proof) { p.IAT = now.Add(-6 * time.Minute) }))}, nil, "invalid_dpop_proof"},
		{"future iat", []string{es.Build(with(func(p *dpoptest.Proof) { p.IAT = now.Add(2 * time.Minute) }))}, nil, "invalid_dpop_proof"},
		{"wrong ath", []string{es.Build(with(func(p *dpoptest.Proof) { p.AccessToken = "other" }))}, nil, "invalid_dpop_proof"},
		{"no ath at a resource", []string{es.Build(with(func(p *dpoptest.Proof) { p.AccessToken = "" }))}, nil, "invalid_dpop_proof"},
		{"jti too long", []string{es.Build(with(func(p *dpoptest.Proof) { p.JTI = strings.Repeat("j", 300) }))}, nil, "invalid_dpop_proof"},
		{"too large", []string{strings.Repeat("a", 9000)}, nil, "invalid_dpop_proof"},
		{"nonce missing", []string{es.Build(good())}, func(c *oauth.DPoPCheck) { c.Nonce = func(n string) bool { return n == "n1" } }, "use_dpop_nonce"},
		{"nonce wrong", []string{es.Build(with(func(p *dpoptest.Proof) { p.Nonce = "n0" }))}, func(c *oauth.DPoPCheck) { c.Nonce = func(n string) bool { return n == "n1" } }, "use_dpop_nonce"},
		{"nonce right", []string{es.Build(with(func(p *dpoptest.Proof) { p.Nonce = "n1" }))}, func(c *oauth.DPoPCheck) { c.Nonce = func(n string) bool { return n == "n1" } }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chk := oauth.DPoPCheck{Method: "GET", URL: resURL, Now: now, AccessToken: "tok"}
			if tc.chk != nil {
				tc.chk(&chk)
			}
			jkt, err := oauth.VerifyDPoP(context.Background(), tc.headers, chk, &memReplays{})
			if tc.want == "" {
				if err != nil || jkt == "" {
					t.Fatalf("got %q, %v; want the proof accepted", jkt, err)
				}
				return
			}
			var de *oauth.DPoPError
			if !errors.As(err, &de) || de.Code != tc.want {
				t.Fatalf("got %q, %v; want %s", jkt, err, tc.want)
			}
		})
	}
}

func TestVerifyDPoPReplayAndThumbprint(t *testing.T) {
	es := dpoptest.NewES256()
	proof := es.Build(dpoptest.Proof{Method: "POST", URL: "https://as.example/oauth2/token"})
	chk := oauth.DPoPCheck{Method: "POST", URL: "https://as.example/oauth2/token", Now: time.Now()}
	replays := &memReplays{}
	jkt, err := oauth.VerifyDPoP(context.Background(), []string{proof}, chk, replays)
	if err != nil || jkt != es.Thumbprint() {
		t.Fatalf("first use: %q, %v; want thumbprint %q", jkt, err, es.Thumbprint())
	}
	_, err = oauth.VerifyDPoP(context.Background(), []string{proof}, chk, replays)
	var de *oauth.DPoPError
	if !errors.As(err, &de) || de.Code != "invalid_dpop_proof" || !strings.Contains(de.Description, "used before") {
		t.Fatalf("replay: %v; want invalid_dpop_proof for a used proof", err)
	}
}

func FuzzVerifyDPoP(f *testing.F) {
	es := dpoptest.NewES256()
	f.Add(es.Build(dpoptest.Proof{Method: "GET", URL: resURL, AccessToken: "tok"}), "GET", resURL)
	f.Add(es.Build(dpoptest.Proof{Method: "GET", URL: "https://as.example:443/api/books?q", AccessToken: "tok", Nonce: "n"}), "GET", resURL)
	f.Add("eyJhbGciOiJub25lIn0.e30.", "POST", "https://[::1]:8080/x")
	f.Fuzz(func(t *testing.T, proof, method, u string) {
		chk := oauth.DPoPCheck{Method: method, URL: u, Now: time.Now(), AccessToken: "tok", Nonce: func(string) bool { return true }}
		jkt, err := oauth.VerifyDPoP(context.Background(), []string{proof}, chk, &memReplays{})
		var de *oauth.DPoPError
		switch {
		case err == nil && jkt == "":
			t.Fatal("accepted without a thumbprint")
		case err != nil && !errors.As(err, &de):
			t.Fatalf("error is not a DPoPError: %v", err)
		}
	})
}
