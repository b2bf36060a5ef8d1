package oauth

import (
	"context"
	"crypto/sha512"
	"strings"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/hmac"
)

var (
	macSecret    = []byte("current-secret-0123456789abcdefghijklmnopqrstuvwxyz")
	macOldSecret = []byte("old-secret-0123456789abcdefghijklmnopqrstuvwxyzABCD")
)

// fositeEnigma is the strategy tokenMAC must agree with.
func fositeEnigma(current []byte, old ...[]byte) *hmac.HMACStrategy {
	return &hmac.HMACStrategy{Config: &fosite.Config{GlobalSecret: current, RotatedGlobalSecrets: old, HMACHasher: sha512.New512_256}}
}

func mustGenerate(t testing.TB, e *hmac.HMACStrategy) string {
	t.Helper()
	token, _, err := e.Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// macTokens are tokens from every secret and broken in every way.
func macTokens(t testing.TB) []string {
	current := mustGenerate(t, fositeEnigma(macSecret))
	old := mustGenerate(t, fositeEnigma(macOldSecret))
	other := mustGenerate(t, fositeEnigma([]byte("another-secret-0123456789abcdefghijklmnopqrstuvwxyz")))
	key, sig, _ := strings.Cut(current, ".")
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	return []string{
		current, old, other,
		flip(key, 0) + "." + sig, key + "." + flip(sig, 3), key + "." + flip(sig, len(sig)-1),
		key, key + ".", "." + sig, "", ".", key + "." + sig + ".", key + "." + sig + "=",
		key + "!." + sig, key + "." + sig[:len(sig)-1], key[:len(key)-1] + "." + sig,
		strings.Replace(current, "-", "+", 1), strings.Replace(current, "_", "/", 1),
	}
}

func TestTokenMACAgreesWithFosite(t *testing.T) {
	tokens := macTokens(t)
	for _, tc := range []struct {
		name    string
		current []byte
		old     [][]byte
	}{
		{"current and old", macSecret, [][]byte{macOldSecret}},
		{"current only", macSecret, nil},
		{"old only", nil, [][]byte{macOldSecret}},
		{"a short current secret", []byte("short"), [][]byte{macOldSecret}},
		{"a short old secret first", macSecret, [][]byte{[]byte("short"), macOldSecret}},
		{"an empty old secret", macSecret, [][]byte{{}, macOldSecret}},
		{"no secret", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, m := fositeEnigma(tc.current, tc.old...), newTokenMAC(tc.current, tc.old)
			var accepted []bool
			for _, token := range tokens {
				want := e.Validate(context.Background(), token) == nil
				if got := m.valid(token); got != want {
					t.Errorf("valid(%q) = %v, fosite says %v", token, got, want)
				}
				accepted = append(accepted, want)
			}
			// Some broken tokens still pass (a flipped bit the decoding
			// ignores); the first three must be what they claim.
			if tc.name == "current and old" && (!accepted[0] || !accepted[1] || accepted[2]) {
				t.Errorf("fosite accepted the current, old and other secret's tokens: %v; want true, true, false", accepted[:3])
			}
		})
	}
}

func FuzzTokenMAC(f *testing.F) {
	for _, token := range macTokens(f) {
		f.Add(token)
	}
	e, m := fositeEnigma(macSecret, macOldSecret), newTokenMAC(macSecret, [][]byte{macOldSecret})
	f.Fuzz(func(t *testing.T, token string) {
		want := e.Validate(context.Background(), token) == nil
		if got := m.valid(token); got != want {
			t.Fatalf("valid(%q) = %v, fosite says %v", token, got, want)
		}
	})
}

// BenchmarkTokenMAC is the HMAC check of every API request, against
// fosite's.
func BenchmarkTokenMAC(b *testing.B) {
	token := mustGenerate(b, fositeEnigma(macSecret))
	b.Run("pooled", func(b *testing.B) {
		m := newTokenMAC(macSecret, [][]byte{macOldSecret})
		b.ReportAllocs()
		for b.Loop() {
			if !m.valid(token) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("fosite", func(b *testing.B) {
		e := fositeEnigma(macSecret, macOldSecret)
		b.ReportAllocs()
		for b.Loop() {
			if err := e.Validate(context.Background(), token); err != nil {
				b.Fatal(err)
			}
		}
	})
}
