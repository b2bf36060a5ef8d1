package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/accounts"
	"gatehouse/audit"
	"gatehouse/clients"
	"gatehouse/mail/mailtest"
	"gatehouse/storage"
)

// newMailServer starts Gatehouse with a real SMTP server behind it.
func newMailServer(t *testing.T, args ...string) (*testServer, *mailtest.Server) {
	t.Helper()
	smtp := mailtest.NewServer(t, mailtest.Options{})
	srv := newTestServer(t, append([]string{"--smtp-url", smtp.URL, "--mail-from", "Gatehouse <noreply@gatehouse.test>"}, args...)...)
	return srv, smtp
}

var linkPattern = regexp.MustCompile(`https?://[^\s"<>]+`)

// mailedLink is the one link of the message's plain text, which must also
// be in its HTML.
func mailedLink(t *testing.T, m mailtest.Message, path string) string {
	t.Helper()
	links := linkPattern.FindAllString(m.Text, -1)
	if len(links) != 1 || !strings.Contains(links[0], path+"?token=") {
		t.Fatalf("want one %s link in the text part, got %q in %q", path, links, m.Text)
	}
	if !strings.Contains(html.UnescapeString(m.HTML), links[0]) {
		t.Fatalf("the HTML part lacks the link %s", links[0])
	}
	return links[0]
}

// confirmEmail opens a verification link and presses its Confirm button.
func confirmEmail(t *testing.T, b *browser, link string) (*http.Response, string) {
	t.Helper()
	resp, body := b.get(link)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `action="/email/verify"`) {
		t.Fatalf("the link's page has no confirm form: %.1000s", body)
	}
	return b.post("/email/verify", url.Values{"token": {mustParseURL(t, link).Query().Get("token")}})
}

func (s *testServer) mustVerifiedEmail(t *testing.T, username, email string) {
	t.Helper()
	if _, err := accounts.SetEmail(context.Background(), s.store, username, email, true); err != nil {
		t.Fatalf("set email of %s: %v", username, err)
	}
}

// TestEmailVerificationAndClaims registers with an address, follows the
// link from the received message, and reads email_verified in a go-oidc
// verified ID token and in UserInfo, before and after.
func TestEmailVerificationAndClaims(t *testing.T) {
	srv, smtp := newMailServer(t)
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	if !slices.Contains(c.Scopes, "email") {
		t.Fatalf("a client created without a scope is registered for %q, want email among them", c.Scopes)
	}
	b := newBrowser(t, srv.URL)
	resp, body := b.post("/register", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "email": {"Alice@Example.com"}})
	wantStatus(t, resp, body, http.StatusSeeOther)

	m := smtp.Next(t)
	if m.To != "Alice@Example.com" || m.From != "noreply@gatehouse.test" {
		t.Fatalf("envelope %s -> %s", m.From, m.To)
	}
	for _, h := range []string{"Date", "Message-ID", "Subject", "From", "To"} {
		if m.Header.Get(h) == "" {
			t.Errorf("message has no %s header", h)
		}
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.Contains(m.Text, "alice") || !strings.Contains(m.Text, host) || !strings.Contains(m.Text, "If you did not") {
		t.Errorf("text part does not name the account, the server and what to do: %q", m.Text)
	}
	if strings.Contains(m.HTML, "<img") || strings.Contains(m.HTML, "<script") {
		t.Errorf("HTML part loads something: %q", m.HTML)
	}
	link := mailedLink(t, m, "/email/verify")
	if !strings.HasPrefix(link, srv.URL+"/email/verify?token=") {
		t.Fatalf("link %q is not on the issuer", link)
	}

	provider, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	conf := srv.oauthConfig(c, secret, oidc.ScopeOpenID, "email")
	conf.Endpoint = provider.Endpoint()
	verifier := provider.Verifier(&oidc.Config{ClientID: c.ID})
	type emailClaims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
	}
	signIn := func(t *testing.T) (emailClaims, *oauth2.Token) {
		t.Helper()
		pkce := oauth2.GenerateVerifier()
		back := b.signInAndAuthorize(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(pkce)), "alice", "correct horse battery", "allow")
		tok, err := conf.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		id, err := verifier.Verify(t.Context(), raw)
		if err != nil {
			t.Fatalf("verify ID token: %v", err)
		}
		var c emailClaims
		if err := id.Claims(&c); err != nil {
			t.Fatal(err)
		}
		return c, tok
	}
	userinfo := func(t *testing.T, tok *oauth2.Token) emailClaims {
		t.Helper()
		info, err := provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var c emailClaims
		if err := info.Claims(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	before, tok := signIn(t)
	if before.Email != "Alice@Example.com" || before.EmailVerified == nil || *before.EmailVerified {
		t.Fatalf("before verifying, ID token claims %+v, want the address with email_verified false", before)
	}

	// Opening the link only asks: a mail scanner opening it confirms
	// nothing.
	scanner := newBrowser(t, srv.URL)
	resp, body = scanner.get(link)
	wantStatus(t, resp, body, http.StatusOK)
	if got := userinfo(t, tok); got.EmailVerified == nil || *got.EmailVerified {
		t.Fatalf("opening the link verified the address: %+v", got)
	}
	resp, body = confirmEmail(t, scanner, link)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Address confirmed") {
		t.Fatalf("verification page: %.500s", body)
	}
	if got := userinfo(t, tok); got.Email != "Alice@Example.com" || got.EmailVerified == nil || !*got.EmailVerified {
		t.Fatalf("userinfo after verifying: %+v", got)
	}
	after, tok := signIn(t)
	if after.Email != "Alice@Example.com" || after.EmailVerified == nil || !*after.EmailVerified {
		t.Fatalf("after verifying, ID token claims %+v, want email_verified true", after)
	}
	if got := userinfo(t, tok); got.EmailVerified == nil || !*got.EmailVerified {
		t.Fatalf("userinfo: %+v", got)
	}

	t.Run("the link works once", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		resp, body := b.get(link)
		wantStatus(t, resp, body, http.StatusGone)
		if !strings.Contains(body, "already used") {
			t.Fatalf("reused link page: %.500s", body)
		}
		resp, body = b.post("/email/verify", url.Values{"token": {mustParseURL(t, link).Query().Get("token")}})
		wantStatus(t, resp, body, http.StatusGone)
	})
	t.Run("consent names the email scope", func(t *testing.T) {
		resp, body := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "consent")))
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "See your email address") {
			t.Fatalf("consent page lacks the email scope's description: %.2000s", body)
		}
	})
	t.Run("without the scope there are no email claims", func(t *testing.T) {
		conf := srv.oauthConfig(c, secret, oidc.ScopeOpenID)
		pkce := oauth2.GenerateVerifier()
		back := b.signInAndAuthorize(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(pkce)), "alice", "correct horse battery", "allow")
		tok, err := conf.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		if got := userinfo(t, tok); got.Email != "" || got.EmailVerified != nil {
			t.Fatalf("userinfo without the email scope: %+v", got)
		}
	})
}

// TestPasswordResetFlow goes from the login page's link to signing in with
// the new password.
func TestPasswordResetFlow(t *testing.T) {
	srv, smtp := newMailServer(t)
	srv.mustCreateUser(t, "alice", "old password 1")
	srv.mustVerifiedEmail(t, "alice", "alice@example.com")
	b := newBrowser(t, srv.URL)

	resp, body := b.get("/login")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `href="/password/forgot"`) || !strings.Contains(body, "Forgot password?") {
		t.Fatal("the login page has no Forgot password? link")
	}
	resp, body = b.get("/password/forgot")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `name="email"`) {
		t.Fatalf("forgot page has no email field: %.1000s", body)
	}
	resp, body = b.post("/password/forgot", url.Values{"email": {"ALICE@example.com"}})
	wantStatus(t, resp, body, http.StatusOK)
	m := smtp.Next(t)
	if m.To != "alice@example.com" {
		t.Fatalf("reset mail went to %q", m.To)
	}
	if !strings.Contains(m.Text, "30 minutes") || !strings.Contains(m.Text, "If you did not ask") {
		t.Errorf("reset mail text: %q", m.Text)
	}
	link := mailedLink(t, m, "/password/reset")

	// The page only shows the form; opening it twice (a mail scanner,
	// then the person) leaves the link working.
	for range 2 {
		resp, body = b.get(link)
		wantStatus(t, resp, body, http.StatusOK)
	}
	token := mustParseURL(t, link).Query().Get("token")
	if !strings.Contains(body, `name="password"`) || !strings.Contains(body, "alice") {
		t.Fatalf("reset page: %.1000s", body)
	}
	resp, body = b.post("/password/reset", url.Values{"token": {token}, "password": {"short"}})
	wantStatus(t, resp, body, http.StatusBadRequest)
	if !strings.Contains(body, "8 to 128") {
		t.Fatalf("short password page: %.1000s", body)
	}

	// A browser signed in before the reset.
	other := newBrowser(t, srv.URL)
	resp, body = other.post("/login", url.Values{"username": {"alice"}, "password": {"old password 1"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = other.get("/account/security")
	wantStatus(t, resp, body, http.StatusOK)

	resp, body = b.post("/password/reset", url.Values{"token": {token}, "password": {"new password 2"}})
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Password changed") {
		t.Fatalf("after reset: %.1000s", body)
	}
	if !slices.ContainsFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == "gatehouse_session" && c.MaxAge < 0 }) {
		t.Error("the reset did not clear this browser's session cookie")
	}
	resp, body = b.post("/password/reset", url.Values{"token": {token}, "password": {"third password 3"}})
	wantStatus(t, resp, body, http.StatusGone)
	// The other browser's session ended on the server with the reset.
	resp, body = other.get("/account/security")
	wantStatus(t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
		t.Fatalf("the other browser's session survived the reset: sent to %q", loc)
	}
	if !strings.Contains(auditTypes(t, srv), string(audit.PasswordReset)) {
		t.Error("the reset is not in the audit log")
	}

	resp, body = newBrowser(t, srv.URL).post("/login", url.Values{"username": {"alice"}, "password": {"old password 1"}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = newBrowser(t, srv.URL).post("/login", url.Values{"username": {"alice"}, "password": {"new password 2"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.get(link)
	wantStatus(t, resp, body, http.StatusGone)
}

// TestPasswordResetNoEnumeration: an unknown address, an unverified one and
// a verified one get the same status and page, and take the same time
// within a class: the mail is made and sent after the answer.
func TestPasswordResetNoEnumeration(t *testing.T) {
	srv, smtp := newMailServer(t)
	const known = 5
	for i := range known {
		name := "user" + strconv.Itoa(i)
		srv.mustCreateUser(t, name, "a long password")
		srv.mustVerifiedEmail(t, name, name+"@example.com")
	}
	srv.mustCreateUser(t, "unverified", "a long password")
	if _, err := accounts.SetEmail(t.Context(), srv.store, "unverified", "unverified@example.com", false); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv.URL)
	answer := func(email string) (int, string, time.Duration) {
		start := time.Now()
		resp, body := b.post("/password/forgot", url.Values{"email": {email}})
		return resp.StatusCode, strings.ReplaceAll(body, email, "ADDRESS"), time.Since(start)
	}
	wantStatus, wantBody, _ := answer("nobody@example.com")
	if wantStatus != http.StatusOK {
		t.Fatalf("unknown address: status %d", wantStatus)
	}
	var knownTimes, unknownTimes []time.Duration
	for round := range 3 {
		for i := range known {
			status, body, d := answer("user" + strconv.Itoa(i) + "@example.com")
			if status != wantStatus || body != wantBody {
				t.Fatalf("a verified address got status %d and a different page", status)
			}
			knownTimes = append(knownTimes, d)
			status, body, d = answer("stranger" + strconv.Itoa(round*known+i) + "@example.com")
			if status != wantStatus || body != wantBody {
				t.Fatalf("an unknown address got status %d and a different page", status)
			}
			unknownTimes = append(unknownTimes, d)
		}
	}
	status, body, _ := answer("unverified@example.com")
	if status != wantStatus || body != wantBody {
		t.Fatalf("an unverified address got status %d and a different page", status)
	}
	// Only the verified addresses get mail: three rounds each, within the
	// per-account limit.
	got := map[string]int{}
	for range 3 * known {
		got[smtp.Next(t).To]++
	}
	smtp.None(t, 300*time.Millisecond)
	for i := range known {
		if n := got["user"+strconv.Itoa(i)+"@example.com"]; n != 3 {
			t.Errorf("user%d got %d mails, want 3 (all: %v)", i, n, got)
		}
	}
	// The timing class: the medians stay within a factor of the same
	// order, the bound loose enough for a loaded machine; a handler that
	// hashed, stored or sent for known addresses only would be an order
	// slower on them (a mail round trip, an argon2 hash).
	median := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	k, u := median(knownTimes), median(unknownTimes)
	t.Logf("median answer: known %v, unknown %v", k, u)
	if k > 3*u+20*time.Millisecond || u > 3*k+20*time.Millisecond {
		t.Errorf("median answer for known addresses %v, unknown %v: not the same timing class", k, u)
	}
}

// TestPasswordResetThrottling: per typed address the answer turns 429
// (whether or not an account has it); per account the mails stop
// silently.
func TestPasswordResetThrottling(t *testing.T) {
	srv, smtp := newMailServer(t)
	srv.mustCreateUser(t, "alice", "a long password")
	srv.mustVerifiedEmail(t, "alice", "alice@example.com")
	b := newBrowser(t, srv.URL)
	for _, email := range []string{"alice@example.com", "nobody@example.com"} {
		for i := range 5 {
			resp, body := b.post("/password/forgot", url.Values{"email": {email}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s request %d: status %d: %.300s", email, i+1, resp.StatusCode, body)
			}
		}
		resp, body := b.post("/password/forgot", url.Values{"email": {strings.ToUpper(email)}})
		wantStatus(t, resp, body, http.StatusTooManyRequests)
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	for range 3 {
		if m := smtp.Next(t); m.To != "alice@example.com" {
			t.Fatalf("mail to %s", m.To)
		}
	}
	smtp.None(t, 500*time.Millisecond)
}

// seedLink stores a link with a token the test knows.
func seedLink(t *testing.T, srv *testServer, purpose storage.EmailPurpose, u storage.User, email string, expires time.Time) string {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	err := srv.store.CreateEmailToken(t.Context(), storage.EmailToken{Hash: hex.EncodeToString(sum[:]), Purpose: purpose,
		UserID: u.ID, Email: email, CreatedAt: time.Now().Add(-time.Hour), ExpiresAt: expires})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestEmailLinksRejected: expired, tampered, truncated, wrong-purpose,
// out-of-date and taken-address links each get a clear page, never a 500.
func TestEmailLinksRejected(t *testing.T) {
	srv, smtp := newMailServer(t)
	alice := srv.mustCreateUser(t, "alice", "a long password")
	srv.mustVerifiedEmail(t, "alice", "alice@example.com")
	bob := srv.mustCreateUser(t, "bob", "a long password")
	b := newBrowser(t, srv.URL)

	resp, body := b.post("/password/forgot", url.Values{"email": {"alice@example.com"}})
	wantStatus(t, resp, body, http.StatusOK)
	reset := mustParseURL(t, mailedLink(t, smtp.Next(t), "/password/reset")).Query().Get("token")
	tampered := reset[:10] + string(rune(reset[10])^1) + reset[11:]

	expired := seedLink(t, srv, storage.PurposeReset, alice, "alice@example.com", time.Now().Add(-time.Minute))
	expiredVerify := seedLink(t, srv, storage.PurposeVerify, bob, "bob@example.com", time.Now().Add(-time.Minute))
	for _, tc := range []struct {
		name   string
		path   string
		status int
		want   string
	}{
		{"tampered reset", "/password/reset?token=" + url.QueryEscape(tampered), http.StatusBadRequest, "not valid"},
		{"truncated reset", "/password/reset?token=" + reset[:20], http.StatusBadRequest, "not valid"},
		{"no token", "/password/reset", http.StatusBadRequest, "not valid"},
		{"expired reset", "/password/reset?token=" + expired, http.StatusGone, "expired"},
		{"expired verification", "/email/verify?token=" + expiredVerify, http.StatusGone, "expired"},
		{"reset link used to verify", "/email/verify?token=" + reset, http.StatusBadRequest, "not valid"},
		{"garbage", "/email/verify?token=%00%ff" + strings.Repeat("x", 40), http.StatusBadRequest, "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := b.get(tc.path)
			wantStatus(t, resp, body, tc.status)
			if !strings.Contains(body, tc.want) {
				t.Fatalf("page lacks %q: %.800s", tc.want, body)
			}
		})
	}
	t.Run("tampered verification post", func(t *testing.T) {
		resp, body := b.post("/email/verify", url.Values{"token": {tampered}})
		wantStatus(t, resp, body, http.StatusBadRequest)
	})
	t.Run("tampered reset post", func(t *testing.T) {
		resp, body := b.post("/password/reset", url.Values{"token": {tampered}, "password": {"hijacked password"}})
		wantStatus(t, resp, body, http.StatusBadRequest)
	})

	t.Run("a verification link for an address no longer on the account", func(t *testing.T) {
		stale := seedLink(t, srv, storage.PurposeVerify, bob, "bob-old@example.com", time.Now().Add(time.Hour))
		if _, err := accounts.SetEmail(t.Context(), srv.store, "bob", "bob-new@example.com", false); err != nil {
			t.Fatal(err)
		}
		resp, body := b.get("/email/verify?token=" + stale)
		wantStatus(t, resp, body, http.StatusGone)
		resp, body = b.post("/email/verify", url.Values{"token": {stale}})
		wantStatus(t, resp, body, http.StatusGone)
		if u, _ := srv.store.GetUser(t.Context(), bob.ID); u.EmailVerified {
			t.Fatal("a stale link verified the new address")
		}
	})
	t.Run("a reset link after the address changed", func(t *testing.T) {
		link := seedLink(t, srv, storage.PurposeReset, alice, "alice@example.com", time.Now().Add(time.Hour))
		srv.mustVerifiedEmail(t, "alice", "alice@elsewhere.example")
		resp, body := b.get("/password/reset?token=" + link)
		wantStatus(t, resp, body, http.StatusGone)
		srv.mustVerifiedEmail(t, "alice", "alice@example.com")
	})
	t.Run("an address verified on another account", func(t *testing.T) {
		if _, err := accounts.SetEmail(t.Context(), srv.store, "bob", "ALICE@example.com", false); err != nil {
			t.Fatal(err)
		}
		link := seedLink(t, srv, storage.PurposeVerify, bob, "ALICE@example.com", time.Now().Add(time.Hour))
		resp, body := confirmEmail(t, b, srv.URL+"/email/verify?token="+link)
		wantStatus(t, resp, body, http.StatusConflict)
		if strings.Contains(body, "alice<") || strings.Contains(body, ">alice") || strings.Contains(body, alice.ID) {
			t.Fatalf("the page names the other account: %.1000s", body)
		}
		if u, _ := srv.store.GetUser(t.Context(), bob.ID); u.EmailVerified {
			t.Fatal("bob verified alice's address")
		}
	})
}

// signedInLongAgo gives b a session whose sign-in was an hour ago, as the
// server's own cookie keys would write it.
func signedInLongAgo(t *testing.T, srv *testServer, b *browser, u storage.User) {
	t.Helper()
	sessions := accounts.NewSessions(srv.store, cookieKeys([]byte(testSecret), nil), accounts.SessionConfig{})
	rec := httptest.NewRecorder()
	err := sessions.SignIn(rec, httptest.NewRequest("GET", "/", nil), accounts.Identity{UserID: u.ID, Username: u.Username, AuthTime: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b.client.Jar.SetCookies(mustParseURL(t, srv.URL), rec.Result().Cookies())
}

// TestEmailChange: a fresh sign-in changes the address directly, an older
// one needs the current password; the new address is unverified until its
// link is opened, and a failed send keeps the change.
func TestEmailChange(t *testing.T) {
	srv, smtp := newMailServer(t)
	alice := srv.mustCreateUser(t, "alice", "a long password")
	b := newBrowser(t, srv.URL)

	resp, body := b.get("/account/email")
	wantStatus(t, resp, body, http.StatusSeeOther)

	resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {"a long password"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.get("/account/email")
	wantStatus(t, resp, body, http.StatusOK)
	if strings.Contains(body, `name="password"`) {
		t.Error("a fresh sign-in is asked for the password")
	}
	resp, body = b.post("/account/email", url.Values{"email": {"alice@example.com"}})
	wantStatus(t, resp, body, http.StatusOK)
	link := mailedLink(t, smtp.Next(t), "/email/verify")
	resp, body = confirmEmail(t, b, link)
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = b.get("/account/email")
	if !strings.Contains(body, "alice@example.com") || !strings.Contains(body, "Verified") {
		t.Fatalf("settings after verifying: %.2000s", body)
	}
	// The address is a section of the security page, whose form changes it.
	resp, body = b.get("/account/security")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "alice@example.com") || !strings.Contains(body, `action="/account/email"`) || !strings.Contains(body, `name="email"`) {
		t.Fatalf("security page has no email section: %.3000s", body)
	}
	if got := auditTypes(t, srv); !strings.Contains(got, string(audit.EmailChanged)) || !strings.Contains(got, string(audit.EmailVerified)) {
		t.Errorf("audit events after a change and a confirmation: %s", got)
	}
	if !strings.Contains(body, "Changed the email address") || !strings.Contains(body, "Confirmed the email address") {
		t.Errorf("recent activity does not show the change and the confirmation: %.3000s", body)
	}

	old := newBrowser(t, srv.URL)
	signedInLongAgo(t, srv, old, alice)
	resp, body = old.get("/account/email")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `name="password"`) {
		t.Fatal("an old sign-in is not asked for the password")
	}
	for _, pw := range []string{"", "wrong password"} {
		resp, body = old.post("/account/email", url.Values{"email": {"eve@example.com"}, "password": {pw}})
		wantStatus(t, resp, body, http.StatusUnauthorized)
	}
	if u, _ := srv.store.GetUser(t.Context(), alice.ID); u.Email != "alice@example.com" || !u.EmailVerified {
		t.Fatalf("a refused change changed the address: %+v", u)
	}

	for _, bad := range []string{"alice@example.com\r\nBcc: eve@example.com", "a@example.com, b@example.com", "Alice <a@example.com>", "not an address"} {
		resp, body = b.post("/account/email", url.Values{"email": {bad}})
		wantStatus(t, resp, body, http.StatusBadRequest)
	}

	smtp.SetReject(true)
	resp, body = old.post("/account/email", url.Values{"email": {"alice@new.example"}, "password": {"a long password"}})
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "could not send") {
		t.Fatalf("a failed send is not reported: %.2000s", body)
	}
	if u, _ := srv.store.GetUser(t.Context(), alice.ID); u.Email != "alice@new.example" || u.EmailVerified {
		t.Fatalf("after a failed send the address is %+v, want the new one, unverified", u)
	}
	if !strings.Contains(srv.logs.String(), "could not send verification mail") {
		t.Error("the failed send is not logged")
	}

	t.Run("registration keeps the account when the mail fails", func(t *testing.T) {
		resp, body := newBrowser(t, srv.URL).post("/register", url.Values{"username": {"carol"}, "password": {"a long password"}, "email": {"carol@example.com"}, "return_to": {"/apps"}})
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "could not send") || !strings.Contains(body, `href="/apps"`) {
			t.Fatalf("page after a failed send: %.2000s", body)
		}
		if u, err := srv.store.GetUserByUsername(t.Context(), "carol"); err != nil || u.Email != "carol@example.com" {
			t.Fatalf("carol: %+v %v", u, err)
		}
	})
	t.Run("registration refuses a header injection", func(t *testing.T) {
		resp, body := newBrowser(t, srv.URL).post("/register", url.Values{"username": {"dave"}, "password": {"a long password"}, "email": {"dave@example.com\nBcc: eve@example.com"}})
		wantStatus(t, resp, body, http.StatusBadRequest)
	})
}

// TestEmailWithoutSMTP: the pages say mail is off, and the operator's CLI
// sets and verifies an address.
func TestEmailWithoutSMTP(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "a long password")
	b := newBrowser(t, srv.URL)
	resp, body := b.get("/password/forgot")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "no mail relay configured") {
		t.Fatalf("forgot page without SMTP: %.1500s", body)
	}
	resp, body = b.post("/password/forgot", url.Values{"email": {"alice@example.com"}})
	wantStatus(t, resp, body, http.StatusServiceUnavailable)

	resp, body = b.post("/register", url.Values{"username": {"bob"}, "password": {"a long password"}, "email": {"bob@example.com"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.get("/account/email")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "bob@example.com") || !strings.Contains(body, "no mail relay configured") {
		t.Fatalf("settings without SMTP: %.2000s", body)
	}

	db := filepath.Join(t.TempDir(), "cli.db")
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), append(args, "--db", db, "--secret", testSecret), func(string) string { return "" }, strings.NewReader("a long password\n"), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	for _, name := range []string{"alice", "bob"} {
		if out, err := cli("users", "create", "--username", name, "--password-stdin"); err != nil {
			t.Fatalf("users create: %v %s", err, out)
		}
	}
	out, err := cli("users", "set-email", "--username", "alice", "--email", "Alice@Example.com", "--verified")
	if err != nil {
		t.Fatalf("set-email: %v %s", err, out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || got["email"] != "Alice@Example.com" || got["email_verified"] != true {
		t.Fatalf("set-email printed %q (%v)", out, err)
	}
	if out, err := cli("users", "set-email", "--username", "bob", "--email", "alice@example.com", "--verified"); err == nil || !strings.Contains(err.Error(), "another account") {
		t.Fatalf("verifying a taken address: %v %s", err, out)
	}
	if _, err := cli("users", "set-email", "--username", "nobody", "--email", "x@example.com"); err == nil {
		t.Fatal("set-email for an unknown user succeeded")
	}
	if _, err := cli("users", "set-email", "--username", "bob", "--email", "bob@example.com\r\nBcc: eve@example.com"); err == nil {
		t.Fatal("set-email took a header injection")
	}
}

func TestMailFlagsGoTogether(t *testing.T) {
	c := config{SMTPURL: "smtp://127.0.0.1:25", AccessTokenTTL: 1, RefreshTokenTTL: 1, CodeTTL: 1, CleanupInterval: 1, DBMaxConns: 1, LogFormat: "text"}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "--mail-from") {
		t.Fatalf("validate: %v", err)
	}
}

func TestBadSMTPURLRefusedAtStart(t *testing.T) {
	for _, u := range []string{"http://user:hunter2@mail.example", "smtp://user:hunter2@/", "smtp://user:hunter2@mail.example/x"} {
		var cfg config
		fs := newFlagSet("server", &cfg, io.Discard)
		serverFlags(fs, &cfg)
		args := []string{"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "g.db"), "--secret", testSecret, "--smtp-url", u, "--mail-from", "noreply@example.com"}
		if err := parse(fs, args, func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		srv, err := start(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			srv.shutdown()
			t.Fatalf("started with --smtp-url %q", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// auditTypes lists the types of every audit event kept, for checks that
// an action was recorded.
func auditTypes(t *testing.T, srv *testServer) string {
	t.Helper()
	events, err := srv.store.ListAuditEvents(t.Context(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, string(e.Type))
	}
	return strings.Join(types, " ")
}

// TestDeviceFlowEmailClaims: the device grant's ID token carries the
// address with the email scope, as the code flow's does.
func TestDeviceFlowEmailClaims(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "a long password")
	srv.mustVerifiedEmail(t, "alice", "alice@example.com")
	c, _ := srv.mustCreateClient(t, deviceReg("TV"))
	deviceCode, userCode := mustDeviceCode(t, srv, c, "openid email")
	newBrowser(t, srv.URL).deviceDecide(userCode, "alice", "a long password", "allow")
	resp, m := devicePoll(t, srv, c, deviceCode)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("device token: %d %s", resp.StatusCode, fmtErr(m))
	}
	raw, _ := m["id_token"].(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token %q", raw)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		t.Fatalf("id_token payload: %v", err)
	}
	if claims.Email != "alice@example.com" || claims.EmailVerified == nil || !*claims.EmailVerified {
		t.Fatalf("device ID token claims: %s", payload)
	}
}
