package oauth

import (
	"testing"
	"time"
)

func TestDocumentTTL(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                           time.Minute,
		"max-age=600":                10 * time.Minute,
		"public, max-age=30":         time.Minute,
		"max-age=999999":             24 * time.Hour,
		"no-store":                   time.Minute,
		"max-age=600, no-cache":      time.Minute,
		`max-age="120"`:              2 * time.Minute,
		"max-age=abc":                time.Minute,
		"s-maxage=100, max-age=7200": 2 * time.Hour,
	} {
		if got := documentTTL(cc); got != want {
			t.Errorf("documentTTL(%q) = %s, want %s", cc, got, want)
		}
	}
}

func TestRedirectMatches(t *testing.T) {
	for _, tc := range []struct {
		registered, requested string
		want                  bool
	}{
		{"https://app.example/cb", "https://app.example/cb", true},
		{"https://app.example/cb", "https://app.example:443/cb", false},
		{"http://localhost/cb", "http://localhost:1234/cb", true},
		{"http://localhost/cb", "http://LOCALHOST:1234/cb", false},
		{"http://127.0.0.1/cb?a=b", "http://127.0.0.1:80/cb?a=b", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:99999/cb", false},
		{"http://[::1]/cb", "http://[::1]:5/cb", true},
		{"http://localhost:3000/cb", "http://localhost:3001/cb", false},
		{"https://localhost/cb", "https://localhost:8443/cb", false},
		{"http://localhost/cb", "https://localhost:1234/cb", false},
		{"http://localhost/cb", "http://localhost:1234/cb/../cb", false},
		{"com.example.app:/cb", "com.example.app:/cb", true},
	} {
		if got := redirectMatches(tc.registered, tc.requested); got != tc.want {
			t.Errorf("redirectMatches(%q, %q) = %v", tc.registered, tc.requested, got)
		}
	}
}
