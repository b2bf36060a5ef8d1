package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a server clock the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newClockServer is a test server on a clock the test moves.
func newClockServer(t *testing.T, args ...string) (*testServer, *clock) {
	t.Helper()
	c := &clock{now: time.Now()}
	return newTestServerWith(t, func(cfg *config) { cfg.now = c.Now }, args...), c
}

// signedInBrowser signs alice in on a browser of its own.
func signedInBrowser(t *testing.T, srv *testServer) *browser {
	t.Helper()
	b := newBrowser(t, srv.URL)
	resp, body := b.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	return b
}

// sessionCookie is b's session cookie for srv.
func sessionCookie(t *testing.T, b *browser) *http.Cookie {
	t.Helper()
	for _, c := range b.client.Jar.Cookies(mustParseURL(t, b.base)) {
		if c.Name == "gatehouse_session" {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// withCookie is a browser holding only c, as someone who copied it.
func withCookie(t *testing.T, base string, c *http.Cookie) *browser {
	t.Helper()
	b := newBrowser(t, base)
	b.client.Jar.SetCookies(mustParseURL(t, base), []*http.Cookie{{Name: c.Name, Value: c.Value}})
	return b
}

// wantMaxAge signs alice in and checks the session cookie's Max-Age.
func wantMaxAge(t *testing.T, srv *testServer, seconds int) {
	t.Helper()
	resp, _ := newBrowser(t, srv.URL).post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_session" {
			if c.MaxAge != seconds {
				t.Fatalf("session cookie Max-Age %d, want %d", c.MaxAge, seconds)
			}
			return
		}
	}
	t.Fatalf("sign-in answered %d without a session cookie", resp.StatusCode)
}

// TestSessionLifetimes: the server checks a session's absolute lifetime
// and idle timeout on every request, whatever the cookie says.
func TestSessionLifetimes(t *testing.T) {
	srv, clk := newClockServer(t)
	srv.mustCreateUser(t, "alice", alicePassword)

	t.Run("the cookie says how long it lasts", func(t *testing.T) {
		wantMaxAge(t, srv, 12*3600)
	})

	t.Run("absolute lifetime", func(t *testing.T) {
		b := signedInBrowser(t, srv)
		// Active all along, just inside the idle timeout each time.
		for range 6 {
			clk.advance(time.Hour + 50*time.Minute)
			wantSignedIn(t, "active session", b, true)
		}
		clk.advance(time.Hour)
		wantSignedIn(t, "a session signed in 12h59m ago", b, false)
	})

	t.Run("idle timeout", func(t *testing.T) {
		b := signedInBrowser(t, srv)
		clk.advance(time.Hour + 59*time.Minute)
		wantSignedIn(t, "after 1h59m idle", b, true)
		clk.advance(2*time.Hour - time.Second)
		wantSignedIn(t, "after 1h59m59s idle again", b, true)
		clk.advance(2 * time.Hour)
		wantSignedIn(t, "after 2h idle", b, false)
	})

	t.Run("a cookie stamped 29 days ago", func(t *testing.T) {
		b := signedInBrowser(t, srv)
		clk.advance(29 * 24 * time.Hour)
		wantSignedIn(t, "a 29-day-old session", b, false)
	})

	t.Run("expired sessions are cleaned up", func(t *testing.T) {
		signedInBrowser(t, srv)
		if _, err := srv.store.DeleteExpired(context.Background(), clk.Now().Add(13*time.Hour)); err != nil {
			t.Fatal(err)
		}
		u, err := srv.store.GetUserByUsername(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if left, err := srv.store.ListSessions(context.Background(), u.ID); err != nil || len(left) != 0 {
			t.Fatalf("sessions left after their lifetime: %d (%v), want none", len(left), err)
		}
	})
}

func TestSessionFlags(t *testing.T) {
	srv, clk := newClockServer(t, "--session-lifetime", "1h", "--session-idle-timeout", "10m")
	srv.mustCreateUser(t, "alice", alicePassword)
	wantMaxAge(t, srv, 3600)
	b := signedInBrowser(t, srv)
	clk.advance(9 * time.Minute)
	wantSignedIn(t, "after 9 minutes", b, true)
	clk.advance(11 * time.Minute)
	wantSignedIn(t, "after 11 idle minutes", b, false)

	b = signedInBrowser(t, srv)
	for range 6 {
		clk.advance(9 * time.Minute)
		wantSignedIn(t, "active", b, true)
	}
	clk.advance(9 * time.Minute)
	wantSignedIn(t, "after 63 active minutes", b, false)
}

// TestSignOutEndsTheSessionOnTheServer: after POST /logout, a copy of the
// cookie taken before signs no one in.
func TestSignOutEndsTheSessionOnTheServer(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", alicePassword)
	b := signedInBrowser(t, srv)
	copied := sessionCookie(t, b)
	wantSignedIn(t, "the copied cookie before sign-out", withCookie(t, srv.URL, copied), true)
	resp, body := b.post("/logout", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	wantSignedIn(t, "the browser that signed out", b, false)
	wantSignedIn(t, "the copied cookie replayed after sign-out", withCookie(t, srv.URL, copied), false)
}

// TestFreshSignIn: /login?fresh=1 asks a signed-in user for the password
// again and replaces the session with a new one, with a new AuthTime.
func TestFreshSignInReplacesSession(t *testing.T) {
	srv, clk := newClockServer(t)
	u := srv.mustCreateUser(t, "alice", alicePassword)
	b := signedInBrowser(t, srv)
	old := sessionCookie(t, b)

	clk.advance(time.Hour)
	resp, page := b.get("/login?return_to=%2Fapps&fresh=1")
	wantStatus(t, resp, page, http.StatusOK)
	for _, field := range []string{`name="fresh" value="1"`, `name="return_to" value="/apps"`, `name="password"`} {
		if !strings.Contains(page, field) {
			t.Fatalf("the fresh sign-in form lacks %s: %.1500s", field, page)
		}
	}
	resp, body := b.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}, "return_to": {"/apps"}, "fresh": {"1"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/apps" {
		t.Fatalf("fresh sign-in went to %q, want /apps", loc)
	}
	if sessionCookie(t, b).Value == old.Value {
		t.Fatal("the fresh sign-in kept the session cookie")
	}
	wantSignedIn(t, "the new session", b, true)
	wantSignedIn(t, "the replaced session's cookie", withCookie(t, srv.URL, old), false)
	sessions, err := srv.store.ListSessions(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 || !sessions[0].CreatedAt.Equal(clk.Now().Truncate(time.Microsecond)) {
		t.Fatalf("sessions after a fresh sign-in: %+v, want one signed in at %v", sessions, clk.Now())
	}
}

// TestMultiInstanceSignOut: signing out on A ends the session on B at once.
func TestMultiInstanceSignOut(t *testing.T) {
	a, b := startPair(t)
	setup(t, a)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	onA := newBrowser(t, a.base)
	onA.client.Jar = jar
	resp, body := onA.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	copied := sessionCookie(t, onA)
	wantSignedIn(t, "A's session on B", withCookie(t, b.base, copied), true)
	resp, body = onA.post("/logout", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	wantSignedIn(t, "A's session on B after signing out on A", withCookie(t, b.base, copied), false)
}
