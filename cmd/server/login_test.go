package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestSignIn(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	srv.mustCreateUser(t, "bob", "another long password")

	t.Run("unknown user and wrong password look the same", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		r1, wrong := b.post("/login", url.Values{"username": {"bob"}, "password": {"not bob's"}})
		r2, unknown := b.post("/login", url.Values{"username": {"nobody"}, "password": {"not bob's"}})
		if r1.StatusCode != http.StatusUnauthorized || r2.StatusCode != http.StatusUnauthorized {
			t.Fatalf("statuses %d and %d, want 401 for both", r1.StatusCode, r2.StatusCode)
		}
		// The pages differ only by the username echoed into the form.
		if strings.ReplaceAll(wrong, `value="bob"`, "") != strings.ReplaceAll(unknown, `value="nobody"`, "") {
			t.Fatal("the answer to an unknown user differs from the answer to a wrong password")
		}
		if !strings.Contains(wrong, "Invalid username or password") {
			t.Fatal("the page does not say what went wrong")
		}
	})

	t.Run("too many failures", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		for i := range 5 {
			if resp, _ := b.post("/login", url.Values{"username": {"alice"}, "password": {"guess " + strconv.Itoa(i)}}); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d, want 401", i+1, resp.StatusCode)
			}
		}
		resp, body := b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}})
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("sixth attempt, right password: %d, want 429", resp.StatusCode)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 900 {
			t.Fatalf("Retry-After %q, want 1-900 seconds", resp.Header.Get("Retry-After"))
		}
		if strings.Contains(body, "Invalid username") {
			t.Fatal("a throttled attempt must not look like a checked password")
		}
		// Another account from the same address is not locked out.
		if resp, _ := b.post("/login", url.Values{"username": {"bob"}, "password": {"another long password"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("bob signing in: %d, want 303", resp.StatusCode)
		}
	})

	t.Run("a fresh session on every sign-in", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		cookie := func() string {
			resp, body := b.post("/login", url.Values{"username": {"bob"}, "password": {"another long password"}, "return_to": {"//evil.example/x"}})
			wantStatus(t, resp, body, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); loc != "/" {
				t.Fatalf("return_to //evil.example/x led to %q, want /", loc)
			}
			for _, c := range resp.Cookies() {
				if c.Name == "gatehouse_session" {
					if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
						t.Fatalf("session cookie %+v: want HttpOnly and SameSite=Lax", c)
					}
					return c.Value
				}
			}
			t.Fatal("no session cookie")
			return ""
		}
		if first, second := cookie(), cookie(); first == second {
			t.Fatal("signing in again kept the same session cookie")
		}
	})
}
