package clients

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		s := newSecret()
		if len(s) != 43 {
			t.Fatalf("secret %q has %d characters, want 43", s, len(s))
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("secret %q is not 32 bytes of unpadded base64url: %v", s, err)
		}
		if u, err := url.QueryUnescape(s); err != nil || u != s {
			t.Fatalf("secret %q changes when URL-unescaped, as fosite does with basic auth", s)
		}
		if seen[s] {
			t.Fatalf("secret %q issued twice", s)
		}
		seen[s] = true
	}
}

func TestSecretHasher(t *testing.T) {
	ctx := context.Background()
	var h SecretHasher
	secret := []byte(newSecret())
	hash, err := h.Hash(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(secret); string(hash) != string(want[:]) {
		t.Errorf("Hash = %x, want the SHA-256 digest %x", hash, want)
	}
	if err := h.Compare(ctx, hash, secret); err != nil {
		t.Errorf("Compare with the right secret: %v", err)
	}
	wrong := [][]byte{
		nil,
		[]byte(""),
		secret[:len(secret)-1],
		append(append([]byte{}, secret...), 'x'),
		[]byte(newSecret()),
		hash,
	}
	for _, w := range wrong {
		if err := h.Compare(ctx, hash, w); err == nil {
			t.Errorf("Compare accepted %q", w)
		}
	}
	for _, badHash := range [][]byte{nil, {}, hash[:16]} {
		if err := h.Compare(ctx, badHash, secret); err == nil {
			t.Errorf("Compare accepted the secret against hash %x", badHash)
		}
	}
}

// The token endpoint checks a client secret on every request. Compare with
// BenchmarkBcryptCompare, fosite's default.
func BenchmarkSecretCompare(b *testing.B) {
	ctx := context.Background()
	secret := []byte(newSecret())
	hash, _ := SecretHasher{}.Hash(ctx, secret)
	for b.Loop() {
		if err := (SecretHasher{}).Compare(ctx, hash, secret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBcryptCompare(b *testing.B) {
	secret := []byte(newSecret())
	hash, err := bcrypt.GenerateFromPassword(secret, 12)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := bcrypt.CompareHashAndPassword(hash, secret); err != nil {
			b.Fatal(err)
		}
	}
}
