package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// loginAs posts one sign-in from a client of its own (no cookies) and
// returns the status; forwardedFor, when set, is sent as X-Forwarded-For.
func loginAs(t *testing.T, base, username, password, forwardedFor string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"username": {username}, "password": {password}}.Encode()))
	if err != nil {
		t.Error(err)
		return nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	readBody(t, resp)
	return resp
}

// burst sends n sign-ins at once, the i-th with attempt(i), and counts
// the answers by status. Every 429 must carry a Retry-After within the
// 15-minute window.
func burst(t *testing.T, n int, attempt func(i int) *http.Response) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			resp := attempt(i)
			if resp == nil {
				return
			}
			if resp.StatusCode == http.StatusTooManyRequests {
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 900 {
					t.Errorf("429 with Retry-After %q, want 1-900 seconds", resp.Header.Get("Retry-After"))
				}
			}
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

func wantCounts(t *testing.T, what string, got map[int]int, unauthorized, tooMany int) {
	t.Helper()
	want := map[int]int{http.StatusUnauthorized: unauthorized, http.StatusTooManyRequests: tooMany}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: answers by status %v, want %v", what, got, want)
	}
}

// TestSignInLimitsHoldUnderConcurrency: the limits of 5 failures per
// account and 50 per address within 15 minutes hold when the guesses
// arrive at once, because each attempt is counted before its password is
// checked.
func TestSignInLimitsHoldUnderConcurrency(t *testing.T) {
	t.Run("one account", func(t *testing.T) {
		srv := newTestServer(t)
		srv.mustCreateUser(t, "alice", alicePassword)
		got := burst(t, 30, func(int) *http.Response { return loginAs(t, srv.URL, "alice", "wrong password", "") })
		wantCounts(t, "30 parallel wrong passwords for alice", got, 5, 25)
		if n := scrape(t, srv.URL, "gatehouse_login_throttled_total"); n != 25 {
			t.Errorf("gatehouse_login_throttled_total = %v, want 25", n)
		}
		if n := scrape(t, srv.URL, "gatehouse_login_failures_total"); n != 5 {
			t.Errorf("gatehouse_login_failures_total = %v, want 5", n)
		}
	})

	t.Run("one address over many accounts", func(t *testing.T) {
		srv := newTestServer(t)
		got := burst(t, 60, func(i int) *http.Response {
			return loginAs(t, srv.URL, fmt.Sprintf("user%d", i), "wrong password", "")
		})
		wantCounts(t, "60 parallel wrong sign-ins from one address", got, 50, 10)
	})

	t.Run("IPv6 addresses of one /64 share a limit", func(t *testing.T) {
		srv := newTestServer(t, "--trusted-proxies", "127.0.0.1")
		got := burst(t, 60, func(i int) *http.Response {
			return loginAs(t, srv.URL, fmt.Sprintf("user%d", i), "wrong password", fmt.Sprintf("2001:db8:1:2:%x::%x", i, i+1))
		})
		wantCounts(t, "60 parallel wrong sign-ins from one /64", got, 50, 10)
		if resp := loginAs(t, srv.URL, "someone", "wrong password", "2001:db8:1:3::1"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the next /64: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("the right password from a known browser while the account is under attack", func(t *testing.T) {
		srv := newTestServer(t)
		srv.mustCreateUser(t, "alice", alicePassword)
		own := newBrowser(t, srv.URL)
		resp, body := own.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		resp, body = own.post("/logout", nil)
		wantStatus(t, resp, body, http.StatusSeeOther)

		got := burst(t, 30, func(int) *http.Response { return loginAs(t, srv.URL, "alice", "wrong password", "") })
		wantCounts(t, "30 parallel wrong passwords for alice", got, 5, 25)

		// Anyone else is slowed, the right password included.
		if resp := loginAs(t, srv.URL, "alice", alicePassword, ""); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("right password from an unknown browser: %d, want 429", resp.StatusCode)
		}
		// Alice's own browser signs in, and is limited on its own.
		resp, body = own.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		wantSignedIn(t, "alice's browser", own, true)
		for i := range 6 {
			want := http.StatusUnauthorized
			if i == 5 {
				want = http.StatusTooManyRequests
			}
			resp, body := own.post("/login", url.Values{"username": {"alice"}, "password": {"typo " + strconv.Itoa(i)}})
			wantStatus(t, resp, body, want)
		}
		// Its failures are its own: the unknown browsers' count is
		// unchanged, and no one else was let in by the success.
		if resp := loginAs(t, srv.URL, "alice", alicePassword, ""); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("right password from an unknown browser after alice signed in: %d, want 429", resp.StatusCode)
		}
	})
}
