package accounts_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"gatehouse/accounts"
)

// FuzzSafeReturnTo: whatever comes in, what SafeReturnTo keeps is a path
// of this server, sent by http.Redirect unchanged, and kept as it is when
// checked again.
func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range returnToAttacks {
		f.Add(s)
	}
	f.Add("/oauth2/authorize?client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb")
	f.Fuzz(func(t *testing.T, in string) {
		got := accounts.SafeReturnTo(in)
		if got == "/" {
			return
		}
		if got[0] != '/' || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("SafeReturnTo(%q) = %q", in, got)
		}
		for _, c := range got {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("SafeReturnTo(%q) = %q holds a control character", in, got)
			}
		}
		if u, err := url.Parse(got); err != nil || u.Scheme != "" || u.Host != "" {
			t.Fatalf("SafeReturnTo(%q) = %q parses as %v, %v", in, got, u, err)
		}
		rec := httptest.NewRecorder()
		http.Redirect(rec, httptest.NewRequest(http.MethodPost, "/login", nil), got, http.StatusSeeOther)
		if loc := rec.Header().Get("Location"); loc != got {
			t.Fatalf("SafeReturnTo(%q) = %q, sent as %q", in, got, loc)
		}
		if again := accounts.SafeReturnTo(got); again != got {
			t.Fatalf("SafeReturnTo(%q) = %q, then %q", in, got, again)
		}
	})
}
