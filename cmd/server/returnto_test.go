package main

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// returnToAttacks are return_to values an attacker could put in a link to
// send a user elsewhere after signing in.
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
	"/\r\n/evil.example",
	"/%09/evil.example",
	"/%5Cevil.example/phish",
	"/%5c%5cevil.example",
	"/%2F%2Fevil.example",
	"/%2f/evil.example",
	"/.%2F/evil.example",
	"/\x00/evil.example",
	"/\u0085/evil.example",
	"/ /evil.example",
	"/\u3000/evil.example",
	"/\uff0fevil.example",
	"javascript:alert(1)",
	"java\tscript:alert(1)",
	" //evil.example",
	"evil.example",
	"/@evil.example",
	"///evil.example",
	"/..//evil.example",
	"/oauth2/authorize?next=//evil.example#//evil.example",
}

// resolve resolves each ref against base as a browser does, with Node's
// WHATWG URL parser, and returns the origins.
func resolve(t *testing.T, node, base string, refs []string) []string {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"base": base, "refs": refs})
	cmd := exec.Command(node, "-e", `
let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
	const {base, refs} = JSON.parse(s);
	console.log(JSON.stringify(refs.map(r => { try { return new URL(r, base).origin } catch (e) { return "invalid: " + e.message } })));
});`)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var origins []string
	if err := json.Unmarshal(out, &origins); err != nil || len(origins) != len(refs) {
		t.Fatalf("node answered %q (%v)", out, err)
	}
	return origins
}

var returnToField = regexp.MustCompile(`name="return_to" value="([^"]*)"`)

// TestReturnToStaysOnTheServer: whatever return_to a link carries, the
// redirects after sign-in, registration and sign-out, and the login form's
// return_to, resolve in a browser to this server.
func TestReturnToStaysOnTheServer(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: the return_to table is resolved with Node's WHATWG URL parser, as browsers do; install Node.js to run this test")
	}
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", alicePassword)
	origin := srv.URL

	// The resolver is a browser's: it sends "/\host" to another origin,
	// which net/url would not.
	if got := resolve(t, node, origin+"/login", []string{"/\\evil.example/phish"}); got[0] != "http://evil.example" {
		t.Fatalf(`node resolves "/\evil.example/phish" to %q, want http://evil.example`, got[0])
	}

	var refs, what []string
	add := func(w, ref string) { refs, what = append(refs, ref), append(what, w) }
	for i, attack := range returnToAttacks {
		b := newBrowser(t, srv.URL)
		_, page := b.get("/login?return_to=" + url.QueryEscape(attack))
		m := returnToField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("login page for %q has no return_to field", attack)
		}
		add(fmt.Sprintf("login form's return_to for %q", attack), html.UnescapeString(m[1]))

		resp, body := b.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "return_to": {attack}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		add(fmt.Sprintf("sign-in with %q", attack), resp.Header.Get("Location"))

		resp, body = b.post("/logout", url.Values{"return_to": {attack}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		add(fmt.Sprintf("sign-out with %q", attack), resp.Header.Get("Location"))

		resp, body = b.post("/register", url.Values{"username": {fmt.Sprintf("user%d", i)}, "password": {"long enough password"}, "return_to": {attack}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		add(fmt.Sprintf("registration with %q", attack), resp.Header.Get("Location"))
	}
	for i, got := range resolve(t, node, origin+"/login", refs) {
		if got != origin {
			t.Errorf("%s: %q resolves to %s, want %s", what[i], refs[i], got, origin)
		}
		if strings.ContainsAny(refs[i], "\\\t\r\n") {
			t.Errorf("%s: %q carries a backslash or control character", what[i], refs[i])
		}
	}
}
