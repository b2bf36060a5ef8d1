package accounts_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"gatehouse/accounts"
)

// returnToAttacks are return_to values that must not leave the server,
// whatever a browser makes of them. cmd/server resolves them with a WHATWG
// URL parser too.
var returnToAttacks = []string{
	"https://evil.example/phish",
	"//evil.example/phish",
	"/\\evil.example/phish",
	"\\\\evil.example/phish",
	"/./\\evil.example/phish",
	"/.//evil.example/phish",
	"/a/..//evil.example/phish",
	"/a/../\\evil.example",
	"/\t/evil.example/phish",
	"/\n/evil.example/phish",
	"/\r/evil.example",
	"/%09/evil.example",
	"/%5Cevil.example/phish",
	"/%5cevil.example",
	"/%2F%2Fevil.example",
	"/%2f/evil.example",
	"/.%2F/evil.example",
	"/x\\y",
	"/\x00/evil.example",
	"/\x7f",
	"/\u0085/evil.example",
	"javascript:alert(1)",
	" /evil",
	"evil.example",
	"/\xff",
	"/%zz",
	"/@evil.example",
	"///evil.example",
	"/..//evil.example",
}

func TestSafeReturnTo(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/apps", "/apps"},
		{"/apps/", "/apps/"},
		{"/oauth2/authorize?client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=%2F%2F", "/oauth2/authorize?client_id=c&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=%2F%2F"},
		{"/a/./b/../c", "/a/c"},
		{"/?next=//evil.example", "/?next=//evil.example"},
		// http.Redirect cleans the fragment too.
		{"/apps#//evil.example", "/apps#/evil.example"},
		// Cleaned into paths of this server.
		{"/.//evil.example/phish", "/evil.example/phish"},
		{"/a/..//evil.example/phish", "/evil.example/phish"},
		{"/..//evil.example", "/evil.example"},
		{"/%09/evil.example", "/%09/evil.example"},
		{"/@evil.example", "/@evil.example"},
		{"///evil.example", "/"},
	} {
		if got := accounts.SafeReturnTo(tc.in); got != tc.want {
			t.Errorf("SafeReturnTo(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, in := range returnToAttacks {
		got := accounts.SafeReturnTo(in)
		if got != "/" && got != "/@evil.example" && got != "/evil.example/phish" && got != "/evil.example" && got != "/%09/evil.example" {
			t.Errorf("SafeReturnTo(%q) = %q, want /", in, got)
		}
	}
}

// TestSafeReturnToIsWhatRedirectSends: whatever SafeReturnTo keeps,
// http.Redirect sends unchanged, so the check was made on what the browser
// gets.
func TestSafeReturnToIsWhatRedirectSends(t *testing.T) {
	inputs := append([]string{"/a/./b/../c", "/apps/", "/x/../y?z=/./..", "/a//b"}, returnToAttacks...)
	for _, in := range inputs {
		safe := accounts.SafeReturnTo(in)
		rec := httptest.NewRecorder()
		http.Redirect(rec, httptest.NewRequest(http.MethodPost, "/login", nil), safe, http.StatusSeeOther)
		if loc := rec.Header().Get("Location"); loc != safe {
			t.Errorf("SafeReturnTo(%q) = %q, but http.Redirect sends %q", in, safe, loc)
		}
	}
}
