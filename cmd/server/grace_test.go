package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// graceTokens signs alice in through the code flow and returns the first
// tokens, refresh token included.
func graceTokens(t *testing.T, srv *testServer, conf *oauth2.Config) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	code := authorizedCode(t, srv, newBrowser(t, srv.URL), conf, verifier, "alice", "correct horse battery")
	tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v %+v", err, tok)
	}
	return tok
}

func refresh(t *testing.T, srv *testServer, clientID, secret, refreshToken string) (*http.Response, map[string]any) {
	t.Helper()
	return tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, clientID, secret)
}

// TestRefreshGrace: inside --refresh-grace the same refresh token from the
// same client gets the very tokens its rotation got, even from racing
// requests; another client, or the same one after the window, revokes the
// family as ever.
func TestRefreshGrace(t *testing.T) {
	srv := newTestServer(t, "--refresh-grace", "2s")
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, createReg("Mobile"))
	other, otherSecret := srv.mustCreateClient(t, createReg("Other"))
	conf := srv.oauthConfig(c, secret, "openid", "offline_access", "books:read")

	t.Run("inside the window: the same tokens", func(t *testing.T) {
		first := graceTokens(t, srv, conf)
		resp, a := refresh(t, srv, c.ID, secret, first.RefreshToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh: %d %s", resp.StatusCode, fmtErr(a))
		}
		resp, b := refresh(t, srv, c.ID, secret, first.RefreshToken)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("refresh again inside the window: %d %s", resp.StatusCode, fmtErr(b))
		}
		for _, k := range []string{"access_token", "refresh_token", "id_token", "scope", "token_type"} {
			if a[k] == nil || a[k] != b[k] {
				t.Errorf("%s: first answer %v, repeat %v", k, a[k], b[k])
			}
		}
		// The family lives on: the new tokens work.
		if resp, body := api(t, http.MethodGet, srv.URL+"/api/books", b["access_token"].(string), nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("access token from the repeat: %d %v", resp.StatusCode, body)
		}
		if resp, m := refresh(t, srv, c.ID, secret, b["refresh_token"].(string)); resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh token from the repeat: %d %s", resp.StatusCode, fmtErr(m))
		}
	})
	t.Run("racing refreshes all get the same tokens", func(t *testing.T) { graceRace(t, srv, c.ID, secret, conf) })
	t.Run("another client inside the window revokes the family", func(t *testing.T) {
		first := graceTokens(t, srv, conf)
		_, a := refresh(t, srv, c.ID, secret, first.RefreshToken)
		resp, m := refresh(t, srv, other.ID, otherSecret, first.RefreshToken)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_grant" {
			t.Fatalf("other client: %d %s", resp.StatusCode, fmtErr(m))
		}
		wantRevoked(t, srv, c.ID, secret, a)
	})
	t.Run("outside the window: reuse revokes the family", func(t *testing.T) {
		first := graceTokens(t, srv, conf)
		_, a := refresh(t, srv, c.ID, secret, first.RefreshToken)
		time.Sleep(2500 * time.Millisecond)
		resp, m := refresh(t, srv, c.ID, secret, first.RefreshToken)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_grant" {
			t.Fatalf("reuse after the window: %d %s", resp.StatusCode, fmtErr(m))
		}
		wantRevoked(t, srv, c.ID, secret, a)
	})
}

// wantRevoked checks that the tokens of answer no longer work.
func wantRevoked(t *testing.T, srv *testServer, clientID, secret string, answer map[string]any) {
	t.Helper()
	if resp, _ := api(t, http.MethodGet, srv.URL+"/api/books", answer["access_token"].(string), nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("access token after family revocation: %d", resp.StatusCode)
	}
	if resp, m := refresh(t, srv, clientID, secret, answer["refresh_token"].(string)); resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_grant" {
		t.Errorf("refresh token after family revocation: %d %s", resp.StatusCode, fmtErr(m))
	}
}

func TestRefreshGraceBounds(t *testing.T) {
	for _, v := range []string{"61s", "-1s"} {
		cfg := config{RefreshGrace: mustDuration(t, v), AccessTokenTTL: time.Hour, RefreshTokenTTL: time.Hour, CodeTTL: time.Minute, CleanupInterval: time.Minute, DBMaxConns: 1, LogFormat: "text"}
		if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "--refresh-grace") {
			t.Errorf("--refresh-grace %s: %v", v, err)
		}
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// graceRace refreshes one token from 8 goroutines at once: inside the
// window every one of them gets the same answer.
func graceRace(t *testing.T, srv *testServer, clientID, secret string, conf *oauth2.Config) {
	t.Helper()
	first := graceTokens(t, srv, conf)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, m := refresh(t, srv, clientID, secret, first.RefreshToken)
			key := "error " + errorCode(m)
			if resp.StatusCode == http.StatusOK {
				key = m["refresh_token"].(string)
			}
			mu.Lock()
			seen[key]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if len(seen) != 1 {
		t.Fatalf("racing refreshes got %d different answers: %v", len(seen), seen)
	}
	for k := range seen {
		if strings.HasPrefix(k, "error") {
			t.Fatalf("racing refreshes failed: %v", seen)
		}
	}
}

func graceRaceOn(t *testing.T, srv *testServer) {
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, createReg("Mobile"))
	graceRace(t, srv, c.ID, secret, srv.oauthConfig(c, secret, "openid", "offline_access", "books:read"))
}
