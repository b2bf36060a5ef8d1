package main

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/audit"
	"gatehouse/clients"
)

// eventsOf lists the audit events of one type.
func eventsOf(t *testing.T, srv *testServer, typ audit.Type) ([]audit.Event, error) {
	t.Helper()
	all, err := srv.store.ListAuditEvents(t.Context(), audit.Filter{})
	var out []audit.Event
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out, err
}

const (
	chromeOnMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	firefoxOnLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	safariOnIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)

// userAgent sends every request of a browser with one User-Agent.
type userAgent string

func (ua userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", string(ua))
	return http.DefaultTransport.RoundTrip(r)
}

// browserSignedIn is a cookie-jar browser at base with user agent ua,
// signed in as username.
func browserSignedIn(t *testing.T, base, ua, username, password string) *browser {
	t.Helper()
	b := newBrowser(t, base)
	b.client.Transport = userAgent(ua)
	resp, body := b.post("/login", url.Values{"username": {username}, "password": {password}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	return b
}

// listedSession is one entry of the sessions section, as the page shows it.
type listedSession struct {
	device  string
	current bool
	id      string // the sign-out form's value; "" for this browser
}

var (
	sessionItem   = regexp.MustCompile(`(?s)<li class="session">(.*?)</li>`)
	sessionDevice = regexp.MustCompile(`(?s)<h3>\s*([^<]*?)\s*(<span|</h3>)`)
	sessionValue  = regexp.MustCompile(`name="session" value="([^"]*)"`)
)

// listedSessions reads the sessions section of b's security page.
func listedSessions(t *testing.T, b *browser) []listedSession {
	t.Helper()
	resp, page := b.get("/account/security")
	wantStatus(t, resp, page, http.StatusOK)
	return parseSessions(page)
}

func parseSessions(page string) []listedSession {
	var out []listedSession
	for _, m := range sessionItem.FindAllStringSubmatch(page, -1) {
		s := listedSession{current: strings.Contains(m[1], "This browser")}
		if d := sessionDevice.FindStringSubmatch(m[1]); d != nil {
			s.device = html.UnescapeString(d[1])
		}
		if v := sessionValue.FindStringSubmatch(m[1]); v != nil {
			s.id = html.UnescapeString(v[1])
		}
		out = append(out, s)
	}
	return out
}

func wantDevices(t *testing.T, got []listedSession, want ...string) {
	t.Helper()
	var devices []string
	for _, s := range got {
		d := s.device
		if s.current {
			d += " (this browser)"
		}
		devices = append(devices, d)
	}
	if strings.Join(devices, ", ") != strings.Join(want, ", ") {
		t.Fatalf("sessions listed: %q, want %q", devices, want)
	}
}

func sessionOf(t *testing.T, list []listedSession, device string) listedSession {
	t.Helper()
	for _, s := range list {
		if s.device == device {
			return s
		}
	}
	t.Fatalf("no session of %s in %+v", device, list)
	return listedSession{}
}

// TestSessionsSection drives the sessions list through a real listener
// with cookie jars: three browsers of alice's, each described, one signed
// out from another, then all but one.
func TestSessionsSection(t *testing.T) {
	srv := newTestServer(t)
	alice := srv.mustCreateUser(t, "alice", alicePassword)
	srv.mustCreateUser(t, "bob", "bob's long password")
	mac := browserSignedIn(t, srv.URL, chromeOnMac, "alice", alicePassword)
	linux := browserSignedIn(t, srv.URL, firefoxOnLinux, "alice", alicePassword)
	phone := browserSignedIn(t, srv.URL, safariOnIPhone, "alice", alicePassword)
	bob := browserSignedIn(t, srv.URL, chromeOnMac, "bob", "bob's long password")

	list := listedSessions(t, mac)
	wantDevices(t, list, "Chrome on macOS (this browser)", "Safari on iOS", "Firefox on Linux")
	if s := sessionOf(t, list, "Chrome on macOS"); s.id != "" {
		t.Errorf("this browser's own session has a sign-out form posting %q", s.id)
	}
	_, page := mac.get("/account/security")
	for _, want := range []string{"127.0.0.1", "Signed in", "Last seen", `action="/account/sessions/end-others"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the sessions section lacks %q", want)
		}
	}

	t.Run("another user cannot end alice's session", func(t *testing.T) {
		resp, body := bob.post("/account/sessions/end", url.Values{"session": {sessionOf(t, list, "Firefox on Linux").id}})
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "That session had already ended.") {
			t.Errorf("bob ending alice's session was told: %s", parseFlash(body))
		}
		wantSignedIn(t, "alice's Firefox after bob's try", linux, true)
	})

	t.Run("a cross-site post is refused", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/account/sessions/end-others", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := mac.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		wantStatus(t, resp, body, http.StatusForbidden)
		wantSignedIn(t, "alice's Firefox after a cross-site post", linux, true)
	})

	t.Run("sign out one session", func(t *testing.T) {
		resp, body := mac.post("/account/sessions/end", url.Values{"session": {sessionOf(t, list, "Safari on iOS").id}})
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "The session is signed out.") {
			t.Errorf("after Sign out the page says: %s", parseFlash(body))
		}
		wantDevices(t, parseSessions(body), "Chrome on macOS (this browser)", "Firefox on Linux")
		wantSignedIn(t, "the phone at its next request", phone, false)
		wantSignedIn(t, "the Firefox left alone", linux, true)

		resp, body = mac.post("/account/sessions/end", url.Values{"session": {sessionOf(t, list, "Safari on iOS").id}})
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "That session had already ended.") {
			t.Errorf("ending it again: %s", parseFlash(body))
		}
		resp, body = mac.post("/account/sessions/end", nil)
		wantStatus(t, resp, body, http.StatusBadRequest)
	})

	t.Run("sign out everywhere else", func(t *testing.T) {
		resp, body := mac.post("/account/sessions/end-others", nil)
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "Your one other session was signed out.") || !strings.Contains(body, "No other browser is signed in.") {
			t.Errorf("after Sign out everywhere else the page says: %s", parseFlash(body))
		}
		wantSignedIn(t, "the Firefox at its next request", linux, false)
		wantSignedIn(t, "the browser that asked", mac, true)
		wantSignedIn(t, "bob", bob, true)
		wantDevices(t, listedSessions(t, mac), "Chrome on macOS (this browser)")
	})

	t.Run("this browser's own session is a sign-out", func(t *testing.T) {
		left, err := srv.store.ListSessions(t.Context(), alice.ID)
		if err != nil || len(left) != 1 {
			t.Fatalf("alice's sessions: %d (%v), want the one", len(left), err)
		}
		resp, body := mac.post("/account/sessions/end", url.Values{"session": {left[0].IDHash}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("ending this browser's session went to %q, want /", loc)
		}
		wantSignedIn(t, "the browser that ended its own session", mac, false)
	})

	t.Run("not signed in", func(t *testing.T) {
		for _, path := range []string{"/account/sessions/end", "/account/sessions/end-others", "/account/password"} {
			resp, body := newBrowser(t, srv.URL).post(path, url.Values{"session": {"x"}})
			wantStatus(t, resp, body, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/login?") {
				t.Errorf("POST %s signed out went to %q, want the login page", path, loc)
			}
		}
	})
}

var flashOrAlert = regexp.MustCompile(`<div class="(flash|alert)"[^>]*>([^<]*)</div>`)

// parseFlash is what the page's notices and alerts say.
func parseFlash(page string) string {
	var out []string
	for _, m := range flashOrAlert.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1]+": "+html.UnescapeString(m[2]))
	}
	return strings.Join(out, "; ")
}

func wantAlert(t *testing.T, what string, resp *http.Response, body string, status int, text string) {
	t.Helper()
	if resp.StatusCode != status || !strings.Contains(parseFlash(body), text) {
		t.Fatalf("%s: %d %q, want %d saying %q", what, resp.StatusCode, parseFlash(body), status, text)
	}
}

// TestPasswordChange: the current password is required and throttled, the
// new one follows registration's rules, and a change ends every other
// session.
func TestPasswordChange(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", alicePassword)
	const newPassword = "a brand new passphrase"
	here := browserSignedIn(t, srv.URL, chromeOnMac, "alice", alicePassword)
	elsewhere := browserSignedIn(t, srv.URL, firefoxOnLinux, "alice", alicePassword)
	change := func(current, next string) (*http.Response, string) {
		return here.post("/account/password", url.Values{"current_password": {current}, "new_password": {next}})
	}

	resp, body := change("not my password", newPassword)
	wantAlert(t, "a wrong current password", resp, body, http.StatusUnauthorized, "Your current password is not right.")
	if !strings.Contains(body, `id="password-current" name="current_password" type="password" autocomplete="current-password" required aria-describedby="form-error" aria-invalid="true"`) {
		t.Errorf("the current password field is not marked as the error's cause")
	}
	resp, body = change(alicePassword, "short")
	wantAlert(t, "a weak new password", resp, body, http.StatusBadRequest, "Password must be 8 to 128 characters.")
	resp, body = change(alicePassword, strings.Repeat("x", 129))
	wantAlert(t, "a new password too long", resp, body, http.StatusBadRequest, "Password must be 8 to 128 characters.")
	resp, body = change(alicePassword, alicePassword)
	wantAlert(t, "the same password", resp, body, http.StatusBadRequest, "the same as the current one")
	wantSignedIn(t, "the other browser after refused changes", elsewhere, true)

	resp, body = change(alicePassword, newPassword)
	wantAlert(t, "the change", resp, body, http.StatusOK, "Your password is changed. Your one other session was signed out.")
	wantSignedIn(t, "the browser that changed it", here, true)
	wantSignedIn(t, "the other browser", elsewhere, false)
	resp, body = newBrowser(t, srv.URL).post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	browserSignedIn(t, srv.URL, firefoxOnLinux, "alice", newPassword)

	events, err := eventsOf(t, srv, audit.PasswordChanged)
	if err != nil || len(events) != 1 || events[0].Detail["sessions_ended"] != "1" {
		t.Errorf("password_changed events: %+v (%v), want one that ended 1 session", events, err)
	}
	_, page := here.get("/account/security")
	if !strings.Contains(page, "Changed the password; signed out everywhere else") {
		t.Error("recent activity does not show the password change")
	}

	t.Run("throttled like sign-in", func(t *testing.T) {
		// The sign-in with the new password above forgot the failure
		// before it, as sign-ins do.
		for i := range 5 {
			resp, body := change("guess "+string(rune('a'+i)), "another new passphrase")
			wantStatus(t, resp, body, http.StatusUnauthorized)
		}
		resp, body := change(newPassword, "another new passphrase")
		wantAlert(t, "the sixth try, right or not", resp, body, http.StatusTooManyRequests, "Too many wrong passwords.")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		resp, body = newBrowser(t, srv.URL).post("/login", url.Values{"username": {"alice"}, "password": {newPassword}})
		wantStatus(t, resp, body, http.StatusTooManyRequests)
	})
}

// TestUsersDisable: `server users disable` signs the user out everywhere,
// refuses their password (only once it is right), their refresh token and
// their access token, and `users enable` lets them back in.
func TestUsersDisable(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gatehouse.db")
	srv := newTestServer(t, "--db", db)
	srv.mustCreateUser(t, "alice", alicePassword)
	srv.mustCreateUser(t, "bob", "bob's long password")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	conf := srv.oauthConfig(c, secret, "openid", "offline_access", "books:read")
	b := newBrowser(t, srv.URL)
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(t.Context(), authorizedCode(t, srv, b, conf, v, "alice", alicePassword), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	other := browserSignedIn(t, srv.URL, chromeOnMac, "alice", alicePassword)
	bobs := browserSignedIn(t, srv.URL, chromeOnMac, "bob", "bob's long password")
	wantAPI(t, "alice's token before", &instance{srv, srv.URL}, tok.AccessToken, http.StatusOK)

	env := map[string]string{"GATEHOUSE_DB": db}
	var out disableJSON
	if err := json.Unmarshal([]byte(mustRunCmd(t, env, "", "users", "disable", "--username", "Alice")), &out); err != nil {
		t.Fatal(err)
	}
	if out.Username != "alice" || !out.Disabled || out.DisabledAt == nil || out.SessionsEnded != 2 || out.TokensRevoked < 2 {
		t.Errorf("users disable printed %+v; want alice disabled, 2 sessions ended and her access and refresh tokens revoked", out)
	}

	wantSignedIn(t, "alice's browser", b, false)
	wantSignedIn(t, "alice's other browser", other, false)
	wantSignedIn(t, "bob's browser", bobs, true)
	resp, body := newBrowser(t, srv.URL).post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	wantAlert(t, "alice's right password", resp, body, http.StatusForbidden, "This account is disabled.")
	resp, body = newBrowser(t, srv.URL).post("/login", url.Values{"username": {"alice"}, "password": {"not her password"}})
	wantAlert(t, "a wrong password for alice", resp, body, http.StatusUnauthorized, "Invalid username or password.")
	_, err = conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refreshing alice's token after disable: %v, want invalid_grant", err)
	}
	wantAPI(t, "alice's access token after", &instance{srv, srv.URL}, tok.AccessToken, http.StatusUnauthorized)

	list := mustRunCmd(t, env, "", "users", "list")
	var listed []userJSON
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		var u userJSON
		if err := json.Unmarshal([]byte(line), &u); err != nil {
			t.Fatalf("users list line %q: %v", line, err)
		}
		listed = append(listed, u)
	}
	if len(listed) != 2 || !listed[0].Disabled || listed[0].DisabledAt == nil || listed[1].Disabled || listed[1].DisabledAt != nil ||
		!strings.Contains(list, `"email":""`) {
		t.Errorf("users list: %s; want alice disabled with the time and bob not, each with an email field", list)
	}
	events, err := eventsOf(t, srv, audit.UserDisabled)
	if err != nil || len(events) != 1 || events[0].Detail["sessions_ended"] != "2" {
		t.Errorf("user_disabled events: %+v (%v)", events, err)
	}

	if r := runCmd(t, env, "", "users", "disable", "--username", "nobody"); r.err == nil || !strings.Contains(r.err.Error(), `no user "nobody"`) {
		t.Errorf("disabling an unknown user: %v", r.err)
	}
	if r := runCmd(t, env, "", "users", "disable"); r.err == nil || !strings.Contains(r.err.Error(), "--username is required") {
		t.Errorf("disable without --username: %v", r.err)
	}

	var enabled userJSON
	if err := json.Unmarshal([]byte(mustRunCmd(t, env, "", "users", "enable", "--username", "alice")), &enabled); err != nil || enabled.Disabled {
		t.Fatalf("users enable printed %+v (%v)", enabled, err)
	}
	browserSignedIn(t, srv.URL, chromeOnMac, "alice", alicePassword)
	_, err = conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("the refresh token revoked by disable, after enable: %v, want invalid_grant still", err)
	}
}

// TestMultiInstanceEndOtherSessions: "Sign out everywhere else" on one
// instance signs the other browser out on another instance at once.
func TestMultiInstanceEndOtherSessions(t *testing.T) {
	a, b := startPair(t)
	setup(t, a)
	onA := browserSignedIn(t, a.base, chromeOnMac, "alice", alicePassword)
	onB := browserSignedIn(t, b.base, firefoxOnLinux, "alice", alicePassword)
	wantDevices(t, listedSessions(t, onA), "Chrome on macOS (this browser)", "Firefox on Linux")
	wantSignedIn(t, "B's browser before", onB, true)
	resp, body := onA.post("/account/sessions/end-others", nil)
	wantStatus(t, resp, body, http.StatusOK)
	wantSignedIn(t, "B's browser after A signed it out", onB, false)
	wantSignedIn(t, "A's browser, on B", onA.at(b), true)
}
