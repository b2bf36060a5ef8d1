package main

import (
	"bytes"
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"gatehouse/audit"
	"gatehouse/clients"
	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
)

// testClock is the server's clock of codes: the real time, moved on by the
// test.
// An authenticator code is accepted once per 30-second step, so a test
// that signs in several times steps the clock instead of waiting.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// step moves the clock to the next time step of the codes.
func (c *testClock) step() {
	c.mu.Lock()
	c.offset += 30 * time.Second
	c.mu.Unlock()
}

func newClockedServer(t *testing.T) (*testServer, *testClock) {
	t.Helper()
	clk := &testClock{}
	return newTestServerWith(t, func(cfg *config) { cfg.codeNow = clk.now }), clk
}

var (
	totpSecretRE   = regexp.MustCompile(`id="totp-secret"[^>]*?value="([^"]*)"`)
	setupTokenRE   = regexp.MustCompile(`name="setup" value="([^"]*)"`)
	recoveryCodeRE = regexp.MustCompile(`<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</li>`)
)

// code is the authenticator code of secret at the server's now.
func (c *testClock) code(t *testing.T, secret string) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, c.now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// setUpTOTP turns on the authenticator app of b's signed-in user as a
// person does, and returns the key and the recovery codes shown.
func setUpTOTP(t *testing.T, b *browser, clk *testClock) (string, []string) {
	t.Helper()
	resp, body := b.get("/account/security")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Authenticator app") || !strings.Contains(body, `href="/account/totp/setup"`) {
		t.Fatalf("security page offers no authenticator app: %.3000s", body)
	}
	resp, body = b.get("/account/totp/setup")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `<img class="qr" src="data:image/png;base64,`) {
		t.Fatalf("setup page has no QR code: %.3000s", body)
	}
	m, tok := totpSecretRE.FindStringSubmatch(body), setupTokenRE.FindStringSubmatch(body)
	if m == nil || tok == nil {
		t.Fatalf("setup page lacks the key or the form: %.3000s", body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("setup page Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	wrong := "000000"
	if clk.code(t, secret) == wrong {
		wrong = "111111"
	}
	resp, body = b.post("/account/totp/setup", url.Values{"setup": {html.UnescapeString(tok[1])}, "code": {wrong}})
	wantStatus(t, resp, body, http.StatusBadRequest)
	if !strings.Contains(body, "That code is not right") || !strings.Contains(body, groupOf(secret)) {
		t.Fatalf("a wrong confirmation code does not say so over the same key: %.3000s", body)
	}
	resp, body = b.post("/account/totp/setup", url.Values{"setup": {html.UnescapeString(tok[1])}, "code": {clk.code(t, secret)}})
	wantStatus(t, resp, body, http.StatusOK)
	var codes []string
	for _, m := range recoveryCodeRE.FindAllStringSubmatch(body, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 || !strings.Contains(body, "not shown again") {
		t.Fatalf("confirmation shows %d recovery codes, want 10 shown once: %.3000s", len(codes), body)
	}
	resp, body = b.get("/account/security")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "10 recovery codes left") || strings.Contains(body, codes[0]) {
		t.Fatalf("security page after setup: %.3000s", body)
	}
	return secret, codes
}

// groupOf writes a key as the setup page shows it.
func groupOf(key string) string {
	var groups []string
	for len(key) > 4 {
		groups, key = append(groups, key[:4]), key[4:]
	}
	return strings.Join(append(groups, key), " ")
}

// passwordStep signs in with a password at /login for returnTo and
// expects the code step.
func (b *browser) passwordStep(username, password, returnTo string) {
	b.t.Helper()
	before, _ := b.cookie("gatehouse_session")
	resp, body := b.post("/login", url.Values{"username": {username}, "password": {password}, "return_to": {returnTo}})
	wantStatus(b.t, resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/login/code" {
		b.t.Fatalf("password of a user with an authenticator app went to %q, want /login/code", loc)
	}
	if after, _ := b.cookie("gatehouse_session"); after != before {
		b.t.Fatal("a session started before the code step")
	}
	resp, body = b.get("/login/code")
	wantStatus(b.t, resp, body, http.StatusOK)
	for _, want := range []string{`name="code"`, `inputmode="numeric"`, `autocomplete="one-time-code"`} {
		if !strings.Contains(body, want) {
			b.t.Fatalf("code page lacks %s: %.3000s", want, body)
		}
	}
}

func (b *browser) cookie(name string) (string, bool) {
	for _, c := range b.client.Jar.Cookies(mustParseURL(b.t, b.base)) {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

// submitCode posts a code and returns the answer.
func (b *browser) submitCode(code string) (*http.Response, string) {
	b.t.Helper()
	return b.post("/login/code", url.Values{"code": {code}})
}

// authorizeSignedIn follows an authorization request of a signed-in b to
// the client's redirect, allowing on the consent page when asked.
func (b *browser) authorizeSignedIn(authURL string) *url.URL {
	b.t.Helper()
	resp, body := b.get(authURL)
	if resp.StatusCode == http.StatusSeeOther {
		return mustParseURL(b.t, resp.Header.Get("Location"))
	}
	wantStatus(b.t, resp, body, http.StatusOK)
	resp, body = b.post(consentAction(b.t, body), url.Values{"decision": {"allow"}})
	wantStatus(b.t, resp, body, http.StatusSeeOther)
	return mustParseURL(b.t, resp.Header.Get("Location"))
}

type idClaims struct {
	AMR []string `json:"amr"`
	ACR string   `json:"acr"`
}

// TestTwoStepSignIn takes a user through setting up an authenticator app
// and signing in with it inside the authorization code flow, with the
// refusals around it: a reused code, a recovery code used twice, too many
// wrong codes, and an app's acr_values asking for the second step.
func TestTwoStepSignIn(t *testing.T) {
	srv, clk := newClockedServer(t)
	alice := srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{RedirectURIs: []string{"http://127.0.0.1:9999/callback"}})
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := srv.oauthConfig(c, secret, oidc.ScopeOpenID)
	conf.Endpoint = provider.Endpoint()
	verifier := provider.Verifier(&oidc.Config{ClientID: c.ID})
	authURL := func(extra ...oauth2.AuthCodeOption) (string, string) {
		pkce := oauth2.GenerateVerifier()
		return conf.AuthCodeURL(newState(t), append(extra, oauth2.S256ChallengeOption(pkce))...), pkce
	}
	claimsOf := func(t *testing.T, back *url.URL, pkce string) idClaims {
		t.Helper()
		tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatalf("exchange (redirect %s): %v", back, err)
		}
		id, err := verifier.Verify(ctx, tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var cl idClaims
		if err := id.Claims(&cl); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	mfa := idClaims{AMR: []string{"pwd", "otp", "mfa"}, ACR: "urn:gatehouse:acr:mfa"}
	pwdOnly := idClaims{AMR: []string{"pwd"}, ACR: "urn:gatehouse:acr:pwd"}
	wantClaims := func(t *testing.T, got, want idClaims) {
		t.Helper()
		if !slices.Equal(got.AMR, want.AMR) || got.ACR != want.ACR {
			t.Fatalf("ID token amr %q acr %q, want %q %q", got.AMR, got.ACR, want.AMR, want.ACR)
		}
	}

	// Signed in with a password before the app existed: this session
	// stays password-only.
	early := newBrowser(t, srv.URL)
	resp, body := early.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "return_to": {"/account/security"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	key, codes := setUpTOTP(t, early, clk)

	var used string
	t.Run("password and code in an authorization code flow", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		u, pkce := authURL()
		resp, _ := b.get(u)
		login := mustParseURL(t, resp.Header.Get("Location"))
		b.passwordStep("alice", "correct horse battery", login.Query().Get("return_to"))
		wrong := "999999"
		if clk.code(t, key) == wrong {
			wrong = "888888"
		}
		resp, body := b.submitCode(wrong)
		wantStatus(t, resp, body, http.StatusUnauthorized)
		if !strings.Contains(body, "That code is not right") {
			t.Fatalf("wrong code page: %.2000s", body)
		}
		clk.step()
		used = clk.code(t, key)
		resp, body = b.submitCode(used)
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != login.Query().Get("return_to") {
			t.Fatalf("after the code: to %q, want the authorization request", loc)
		}
		wantClaims(t, claimsOf(t, b.authorizeSignedIn(resp.Header.Get("Location")), pkce), mfa)
	})

	t.Run("a used code is refused", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		b.passwordStep("alice", "correct horse battery", "/")
		resp, body := b.submitCode(used)
		wantStatus(t, resp, body, http.StatusUnauthorized)
		if !strings.Contains(body, "already used") {
			t.Fatalf("replayed code page: %.2000s", body)
		}
	})

	t.Run("a recovery code works once", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		b.passwordStep("alice", "correct horse battery", "/account/security")
		resp, body := b.get("/login/code?recovery=1")
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "Recovery code") || strings.Contains(body, `inputmode="numeric"`) {
			t.Fatalf("recovery code form: %.2000s", body)
		}
		resp, body = b.submitCode(strings.ToUpper(codes[0]))
		wantStatus(t, resp, body, http.StatusSeeOther)
		resp, body = b.get("/account/security")
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "9 recovery codes left") {
			t.Fatalf("security page after a recovery code: %.3000s", body)
		}
		again := newBrowser(t, srv.URL)
		again.passwordStep("alice", "correct horse battery", "/")
		resp, body = again.submitCode(codes[0])
		wantStatus(t, resp, body, http.StatusUnauthorized)
		if !strings.Contains(body, "recovery code was already used") {
			t.Fatalf("reused recovery code page: %.2000s", body)
		}
	})

	t.Run("no pending sign-in", func(t *testing.T) {
		b := newBrowser(t, srv.URL)
		resp, body := b.submitCode(clk.code(t, key))
		wantStatus(t, resp, body, http.StatusBadRequest)
		if !strings.Contains(body, "sign in again") {
			t.Fatalf("code without a password: %.2000s", body)
		}
	})

	t.Run("acr_values asks for the second step", func(t *testing.T) {
		// The early session has the password alone.
		u, pkce := authURL()
		wantClaims(t, claimsOf(t, early.authorizeSignedIn(u), pkce), pwdOnly)

		u, _ = authURL(oauth2.SetAuthURLParam("acr_values", "urn:gatehouse:acr:mfa"), oauth2.SetAuthURLParam("prompt", "none"))
		back := early.authorizeSignedIn(u)
		if back.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none asking for mfa of a password session: %s", back)
		}

		u, pkce = authURL(oauth2.SetAuthURLParam("acr_values", "urn:gatehouse:acr:mfa"))
		resp, body := early.get(u)
		wantStatus(t, resp, body, http.StatusSeeOther)
		step := mustParseURL(t, resp.Header.Get("Location"))
		if step.Path != "/login/code" {
			t.Fatalf("acr_values mfa of a password session went to %s, want the code step", step)
		}
		resp, body = early.get(step.String())
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "asks for your second step") {
			t.Fatalf("step-up page: %.2000s", body)
		}
		clk.step()
		resp, body = early.submitCode(clk.code(t, key))
		wantStatus(t, resp, body, http.StatusSeeOther)
		wantClaims(t, claimsOf(t, early.authorizeSignedIn(resp.Header.Get("Location")), pkce), mfa)

		// A user without a second factor stays single-factor, and the
		// acr says so.
		srv.mustCreateUser(t, "bob", "correct horse battery")
		u, pkce = authURL(oauth2.SetAuthURLParam("acr_values", "urn:gatehouse:acr:mfa"))
		wantClaims(t, claimsOf(t, newBrowser(t, srv.URL).signInAndAuthorize(u, "bob", "correct horse battery", "allow"), pkce), pwdOnly)
	})

	t.Run("prompt=login signs in again with the code", func(t *testing.T) {
		u, pkce := authURL(oauth2.SetAuthURLParam("prompt", "login"))
		resp, body := early.get(u)
		wantStatus(t, resp, body, http.StatusSeeOther)
		login := mustParseURL(t, resp.Header.Get("Location"))
		if login.Path != "/login" || login.Query().Get("fresh") != "1" {
			t.Fatalf("prompt=login went to %s", login)
		}
		early.passwordStep("alice", "correct horse battery", login.Query().Get("return_to"))
		clk.step()
		resp, body = early.submitCode(clk.code(t, key))
		wantStatus(t, resp, body, http.StatusSeeOther)
		wantClaims(t, claimsOf(t, early.authorizeSignedIn(resp.Header.Get("Location")), pkce), mfa)
	})

	t.Run("regenerate and turn off need a code", func(t *testing.T) {
		resp, body := early.post("/account/totp/recovery-codes", url.Values{"code": {"123456"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not right") && !strings.Contains(body, "already used") {
			t.Fatalf("regenerate with a wrong code: %d %.2000s", resp.StatusCode, body)
		}
		resp, body = early.post("/account/totp/recovery-codes", url.Values{"code": {codes[1]}})
		wantStatus(t, resp, body, http.StatusOK)
		fresh := recoveryCodeRE.FindAllStringSubmatch(body, -1)
		if len(fresh) != 10 {
			t.Fatalf("regenerate shows %d codes: %.2000s", len(fresh), body)
		}
		clk.step()
		resp, body = early.post("/account/totp/disable", url.Values{"code": {codes[2]}})
		wantStatus(t, resp, body, http.StatusUnauthorized)
		resp, body = early.post("/account/totp/disable", url.Values{"code": {clk.code(t, key)}})
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "Authenticator app turned off") || !strings.Contains(body, `href="/account/totp/setup"`) {
			t.Fatalf("after turning off: %.3000s", body)
		}
		b := newBrowser(t, srv.URL)
		resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "return_to": {"/"}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		if resp.Header.Get("Location") != "/" {
			t.Fatalf("password sign-in after turning off went to %q", resp.Header.Get("Location"))
		}
	})

	t.Run("audit and activity", func(t *testing.T) {
		events, err := srv.store.ListAuditEvents(ctx, audit.Filter{User: alice.ID})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range events {
			seen[string(e.Type)+" "+e.Detail["reason"]+e.Detail["amr"]] = true
			for _, v := range e.Detail {
				if v == used || v == codes[0] || strings.Contains(v, key) {
					t.Fatalf("event %+v carries a code", e)
				}
			}
		}
		for _, want := range []string{"mfa_enabled ", "mfa_disabled ", "recovery_codes_regenerated ", "sign_in pwd otp mfa", "sign_in pwd", "sign_in_failed wrong_code"} {
			if !seen[want] {
				t.Errorf("no event %q among %v", want, seen)
			}
		}
		resp, body := early.get("/account/security")
		wantStatus(t, resp, body, http.StatusOK)
		for _, want := range []string{"Turned on the authenticator app", "Sign-in refused: wrong code", "Made new recovery codes"} {
			if !strings.Contains(body, want) {
				t.Errorf("activity lacks %q", want)
			}
		}
	})
}

// TestTwoStepThrottle: wrong codes are throttled like passwords; once the
// account's limit is full even the right code waits.
func TestTwoStepThrottle(t *testing.T) {
	srv, clk := newClockedServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	b := newBrowser(t, srv.URL)
	resp, body := b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "return_to": {"/"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	key, _ := setUpTOTP(t, b, clk)

	guesser := newBrowser(t, srv.URL)
	guesser.passwordStep("alice", "correct horse battery", "/")
	clk.step()
	right := clk.code(t, key)
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	for i := range 5 {
		resp, body := guesser.submitCode(wrong)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d %.500s", i+1, resp.StatusCode, body)
		}
	}
	resp, body = guesser.submitCode(right)
	wantStatus(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many wrong codes") {
		t.Fatalf("throttled code: Retry-After %q %.1000s", resp.Header.Get("Retry-After"), body)
	}
}

// TestResetMFACommand: server users reset-mfa removes the app and the
// recovery codes, says what it removed and records it.
func TestResetMFACommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cli.db")
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), append(args, "--db", db, "--secret", testSecret), func(string) string { return "" }, strings.NewReader("a long password\n"), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := cli("users", "create", "--username", "alice", "--password-stdin"); err != nil {
		t.Fatalf("users create: %v %s", err, out)
	}
	store, err := sqlstore.Open(t.Context(), db, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	u, err := store.GetUserByUsername(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnableTOTP(t.Context(), storage.TOTP{UserID: u.ID, Sealed: []byte("sealed"), CreatedAt: time.Now()}, []string{"a", "b", "c"}); err != nil {
		t.Fatal(err)
	}
	out, err := cli("users", "reset-mfa", "--username", "Alice")
	if err != nil || out != "removed the authenticator app and 3 unused recovery codes of alice\n" {
		t.Fatalf("reset-mfa: %q, %v", out, err)
	}
	if _, err := store.GetTOTP(t.Context(), u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("authenticator app after reset-mfa: %v", err)
	}
	if out, err := cli("users", "reset-mfa", "--username", "alice"); err != nil || !strings.Contains(out, "nothing removed") {
		t.Fatalf("reset-mfa again: %q, %v", out, err)
	}
	if _, err := cli("users", "reset-mfa", "--username", "nobody"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Fatalf("reset-mfa of an unknown user: %v", err)
	}
	events, err := store.ListAuditEvents(t.Context(), audit.Filter{User: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(e audit.Event) bool { return e.Type == audit.MFAReset }) {
		t.Fatalf("no mfa_reset event among %+v", events)
	}
}
