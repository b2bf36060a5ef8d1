package oauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzLogoutRequest sends arbitrary sign-out requests, signed in and not,
// by GET and POST: no answer is a 5xx, and none redirects, since the fuzz
// clients register no post-logout redirect URI.
func FuzzLogoutRequest(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range []string{
		"",
		"client_id=CLIENT_ID",
		"client_id=CLIENT_ID&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=x",
		"post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
		"id_token_hint=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"id_token_hint=a.b.c&client_id=PUBLIC_ID",
		"id_token_hint=eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwOi8vZ2F0ZWhvdXNlLnRlc3QiLCJhdWQiOiJ4Iiwic3ViIjoieSJ9.",
		"decision=logout",
		"state=a&state=b",
		"ui_locales=%FF",
	} {
		f.Add(seed, true, false)
		f.Add(seed, false, true)
	}
	f.Fuzz(func(t *testing.T, query string, signedIn, post bool) {
		q := s.fill(query)
		var r *http.Request
		if post {
			r = httptest.NewRequest(http.MethodPost, "/oauth2/logout", strings.NewReader(q))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(http.MethodGet, "/oauth2/logout", nil)
			r.URL.RawQuery = q
		}
		if signedIn {
			r.Header.Set("Cookie", strings.SplitN(s.cookie, ";", 2)[0])
		}
		w := s.serve(r)
		switch {
		case w.Code >= 500:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		case w.Header().Get("Location") != "":
			t.Fatalf("redirected to %q, which no client registered", w.Header().Get("Location"))
		}
	})
}
