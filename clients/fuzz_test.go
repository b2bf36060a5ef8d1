package clients

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://app.example/cb",
		"https://app.example:8443/cb?x=1",
		"https://[2001:db8::1]/cb",
		"http://127.0.0.1:8080/cb",
		"http://[::1]/cb",
		"http://localhost/cb",
		"com.example.app:/cb",
		"com.example.app://host/cb",
		"http://example.com/cb",
		"https://a.example/cb#",
		"https://u:p@a.example/cb",
		"https://*.example.com/cb",
		"/relative",
		"javascript:alert(1)",
		"myapp:/cb",
		"https://a.example/%2e%2e/cb",
		"https://[fe80::1%25en0]/cb",
		"http://LOCALHOST:0/",
		"com.example.app:",
		"https://a.example/c b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateRedirectURI(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidRedirectURI || e.Message == "" {
				t.Fatalf("ValidateRedirectURI(%q) = %#v, want an invalid_redirect_uri *Error", s, err)
			}
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", s, err)
		}
		if strings.Contains(s, "#") || u.Fragment != "" || u.User != nil || strings.Contains(s, "*") {
			t.Fatalf("accepted %q with a fragment, user information or wildcard", s)
		}
		switch u.Scheme {
		case "https":
			if u.Hostname() == "" {
				t.Fatalf("accepted https URI %q without host", s)
			}
		case "http":
			if h := u.Hostname(); h != "127.0.0.1" && h != "::1" && !strings.EqualFold(h, "localhost") {
				t.Fatalf("accepted http URI %q on host %q", s, u.Hostname())
			}
		default:
			if !strings.Contains(u.Scheme, ".") || u.Opaque != "" {
				t.Fatalf("accepted %q with scheme %q", s, u.Scheme)
			}
		}
		for seg := range strings.SplitSeq(u.Path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted %q with a dot segment", s)
			}
		}
	})
}
