package oauth

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"

	"gatehouse/storage"
)

// memKeys is a KeyStore in memory, newest first as the database lists.
type memKeys struct {
	mu   sync.Mutex
	keys []storage.SigningKey
}

func (m *memKeys) ListSigningKeys(context.Context) ([]storage.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.keys), nil
}

func (m *memKeys) CreateSigningKey(_ context.Context, k storage.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.ContainsFunc(m.keys, func(o storage.SigningKey) bool { return o.ID == k.ID }) {
		return storage.ErrConflict
	}
	m.keys = append([]storage.SigningKey{k}, m.keys...)
	return nil
}

func (m *memKeys) UpdateSigningKey(_ context.Context, k storage.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == k.ID {
			m.keys[i] = k
			return nil
		}
	}
	return storage.ErrNotFound
}

var testSealKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}

func newTestKeyring(t testing.TB) (*keyring, *memKeys) {
	t.Helper()
	db := &memKeys{}
	k, err := newKeyring(context.Background(), db, testSealKeys, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return k, db
}

func testClaims() jwt.MapClaims {
	return (&jwt.IDTokenClaims{Subject: "alice", Issuer: "https://issuer.example", Audience: []string{"app"},
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Extra: map[string]any{}}).ToMapClaims()
}

// sign signs test claims as the token endpoint does for a client of alg.
func sign(t testing.TB, s *idTokenSigner, alg string) string {
	t.Helper()
	raw, _, err := s.Generate(withIDTokenAlg(context.Background(), alg), testClaims(), &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestIDTokenSignerAlgorithms(t *testing.T) {
	keys, db := newTestKeyring(t)
	if len(db.keys) != len(IDTokenAlgs) {
		t.Fatalf("%d keys created on the first start, want one per algorithm", len(db.keys))
	}
	s := &idTokenSigner{keys: keys}
	for _, alg := range append([]string{""}, IDTokenAlgs...) {
		want := alg
		if alg == "" {
			want = "RS256"
		}
		raw := sign(t, s, alg)
		parsed, err := jose.ParseSigned(raw)
		if err != nil {
			t.Fatal(err)
		}
		h := parsed.Signatures[0].Header
		if h.Algorithm != want || h.KeyID != keys.signing[want].KeyID {
			t.Errorf("alg %q: header alg %s kid %s, want %s and the %s signing key", alg, h.Algorithm, h.KeyID, want, want)
		}
		tok, err := s.Decode(context.Background(), raw)
		if err != nil || tok.Claims["sub"] != "alice" {
			t.Errorf("alg %q: Decode = %v, %v", alg, tok, err)
		}
	}
	if _, _, err := s.Generate(withIDTokenAlg(context.Background(), "HS256"), testClaims(), &jwt.Headers{}); err == nil {
		t.Error("signed with HS256, which has no key")
	}
}

// TestIDTokenSignerRefusesForeignTokens: a token must name a published
// key of the algorithm it claims; one signed by another key, or naming a
// published key under another algorithm, does not decode.
func TestIDTokenSignerRefusesForeignTokens(t *testing.T) {
	keys, _ := newTestKeyring(t)
	other, _ := newTestKeyring(t)
	s := &idTokenSigner{keys: keys}
	foreign := sign(t, &idTokenSigner{keys: other}, "ES256")
	if _, err := s.Decode(context.Background(), foreign); err == nil {
		t.Error("a token signed by another server's key decoded")
	}
	// The EdDSA key of the other server, published under this one's ES256
	// kid: the kid matches a key, the algorithm does not.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: other.signing["EdDSA"].Key, KeyID: keys.signing["ES256"].KeyID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"sub":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	mixed, _ := jws.CompactSerialize()
	if _, err := s.Decode(context.Background(), mixed); err == nil {
		t.Error("a token naming an ES256 kid under EdDSA decoded")
	}
}

func TestRotateKeepsOldKeysVerifiable(t *testing.T) {
	keys, db := newTestKeyring(t)
	s := &idTokenSigner{keys: keys}
	before := map[string]string{}
	for _, alg := range IDTokenAlgs {
		before[alg] = sign(t, s, alg)
	}
	if err := keys.Rotate(context.Background(), "EdDSA"); err != nil {
		t.Fatal(err)
	}
	if len(db.keys) != 4 || len(keys.jwks(context.Background()).Keys) != 4 {
		t.Fatalf("%d stored and %d published keys after rotating EdDSA, want 4", len(db.keys), len(keys.jwks(context.Background()).Keys))
	}
	if err := keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(keys.jwks(context.Background()).Keys); n != 7 {
		t.Fatalf("%d published keys after rotating all, want 7", n)
	}
	for alg, raw := range before {
		if _, err := s.Decode(context.Background(), raw); err != nil {
			t.Errorf("%s token signed before rotation: %v", alg, err)
		}
		if sign(t, s, alg) == raw {
			t.Errorf("%s: same token after rotation", alg)
		}
	}
	if err := keys.Rotate(context.Background(), "PS256"); err == nil {
		t.Error("rotated an unsupported algorithm")
	}
	if _, err := RotateSigningKey(context.Background(), db, testSealKeys, "none"); err == nil {
		t.Error("RotateSigningKey accepted an unsupported algorithm")
	}
}

// BenchmarkIDTokenSign is signing one ID token through the signer the
// token endpoint uses, per algorithm: RS256 with a 2048-bit key is the
// largest single cost of a code exchange that asks for openid.
func BenchmarkIDTokenSign(b *testing.B) {
	keys, _ := newTestKeyring(b)
	s := &idTokenSigner{keys: keys}
	claims := benchRequest().Session.(interface{ IDTokenClaims() *jwt.IDTokenClaims }).IDTokenClaims()
	claims.ExpiresAt = time.Now().Add(time.Hour)
	for _, alg := range IDTokenAlgs {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			ctx := withIDTokenAlg(context.Background(), alg)
			for b.Loop() {
				if _, _, err := s.Generate(ctx, claims.ToMapClaims(), &jwt.Headers{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
