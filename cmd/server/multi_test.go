package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"gatehouse/storage"
	"gatehouse/storage/storagetest"
)

// These tests run several instances on one PostgreSQL database, as behind a
// load balancer: every instance gets the same --db, --secret and --issuer,
// and a request may land on any of them.

// sharedIssuer is the load balancer's URL. Nothing listens there: tests
// address each instance by its own listener, and cookies follow them
// because a cookie jar ignores ports.
const sharedIssuer = "http://gatehouse.test"

// rotatedSecret replaces testSecret in the rotation test.
const rotatedSecret = "rotated-secret-9876543210zyxwvutsrqponmlkjihgfedcba"

const alicePassword = "correct horse battery"

// instance is one server of the group and the address it answers on.
type instance struct {
	*testServer
	base string
}

// startInstance starts a server on dsn through the same path as main; it
// stops when the calling test or subtest ends. args override the defaults,
// --secret included.
func startInstance(t *testing.T, dsn string, args ...string) *instance {
	t.Helper()
	srv := newTestServer(t, append([]string{"--db", dsn, "--issuer", sharedIssuer}, args...)...)
	return &instance{testServer: srv, base: "http://" + srv.listener.Addr().String()}
}

// startPair starts instances A and B on a fresh PostgreSQL schema.
func startPair(t *testing.T) (a, b *instance) {
	t.Helper()
	dsn := storagetest.PostgresDSN(t)
	return startInstance(t, dsn), startInstance(t, dsn)
}

// multiConf is an OAuth client whose browser goes to auth and whose token
// requests go to token.
func multiConf(c storage.Client, secret string, auth, token *instance, scopes ...string) *oauth2.Config {
	conf := auth.oauthConfig(c, secret, scopes...)
	conf.Endpoint.AuthURL = auth.base + "/oauth2/authorize"
	conf.Endpoint.TokenURL = token.base + "/oauth2/token"
	return conf
}

// at is the same browser, cookies included, pointed at another instance.
func (b *browser) at(in *instance) *browser {
	return &browser{t: b.t, base: in.base, client: b.client}
}

// setup creates alice and a confidential client through a.
func setup(t *testing.T, a *instance) (storage.Client, string) {
	t.Helper()
	a.mustCreateUser(t, "alice", alicePassword)
	return a.mustCreateClient(t, createReg("Reader"))
}

func codeForm(conf *oauth2.Config, code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {conf.RedirectURL}, "code_verifier": {verifier}}
}

func refreshForm(refresh string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
}

// mustTokens posts a token request that must succeed and returns the
// access and refresh tokens.
func mustTokens(t *testing.T, base string, form url.Values, c storage.Client, secret string) (access, refresh string) {
	t.Helper()
	resp, body := tokenRequest(t, base, form, c.ID, secret)
	access, _ = body["access_token"].(string)
	refresh, _ = body["refresh_token"].(string)
	if resp.StatusCode != http.StatusOK || access == "" || refresh == "" {
		t.Fatalf("%s grant at %s: %d %s, want 200 with access and refresh tokens", form.Get("grant_type"), base, resp.StatusCode, fmtErr(body))
	}
	return access, refresh
}

func wantInvalidGrant(t *testing.T, what string, resp *http.Response, body map[string]any) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest || errorCode(body) != "invalid_grant" {
		t.Fatalf("%s: %d %s, want 400 invalid_grant", what, resp.StatusCode, fmtErr(body))
	}
}

func wantAPI(t *testing.T, what string, in *instance, token string, want int) {
	t.Helper()
	if resp, body := api(t, http.MethodGet, in.base+"/api/books", token, nil); resp.StatusCode != want {
		t.Fatalf("%s: books API on %s answered %d %v, want %d", what, in.base, resp.StatusCode, body, want)
	}
}

// wantSignedIn checks whether in reads b's session cookie: the app console
// answers a signed-in user and sends anyone else to the login page.
func wantSignedIn(t *testing.T, what string, b *browser, signedIn bool) {
	t.Helper()
	resp, body := b.get("/apps")
	toLogin := resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login")
	if signedIn && resp.StatusCode != http.StatusOK || !signedIn && !toLogin {
		t.Fatalf("%s: GET /apps on %s answered %d (Location %q), want signed in: %v; body: %.300s", what, b.base, resp.StatusCode, resp.Header.Get("Location"), signedIn, body)
	}
}

// TestMultiInstanceFlow follows one user across two instances: every step
// lands on a different instance than the one before.
func TestMultiInstanceFlow(t *testing.T) {
	a, b := startPair(t)
	c, secret := setup(t, a)
	conf := multiConf(c, secret, a, b, "openid", "offline_access", "books:read", "books:write")

	// Sign in and consent on A, redeem the code on B.
	v := oauth2.GenerateVerifier()
	br := newBrowser(t, a.base)
	code := authorizedCode(t, a.testServer, br, conf, v, "alice", alicePassword)
	resp, body := tokenRequest(t, b.base, codeForm(conf, code, v), c.ID, secret)
	if resp.StatusCode != http.StatusOK || body["id_token"] == nil {
		t.Fatalf("code from A redeemed on B: %d %s, want 200 with an id_token", resp.StatusCode, fmtErr(body))
	}
	access, refresh := body["access_token"].(string), body["refresh_token"].(string)
	wantAPI(t, "token from B used on A", a, access, http.StatusOK)

	// Refresh on A: the pair B issued rotates there.
	freshAccess, freshRefresh := mustTokens(t, a.base, refreshForm(refresh), c, secret)
	wantAPI(t, "access token retired by A's rotation, on B", b, access, http.StatusUnauthorized)

	// The books API on B, with what A issued; the book is there on A.
	resp, book := api(t, http.MethodPost, b.base+"/api/books", freshAccess, map[string]any{"title": "Dune"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a book on B: %d %v", resp.StatusCode, book)
	}
	if resp, got := api(t, http.MethodGet, a.base+"/api/books/"+book["id"].(string), freshAccess, nil); resp.StatusCode != http.StatusOK || got["title"] != "Dune" {
		t.Fatalf("read B's book on A: %d %v", resp.StatusCode, got)
	}

	// A's session cookie signs alice in on B, which also knows her
	// consent: authorizing there goes straight back to the app.
	wantSignedIn(t, "A's cookie on B", br.at(b), true)
	resp, page := br.at(b).get(multiConf(c, secret, b, b, "openid", "offline_access", "books:read", "books:write").AuthCodeURL(newState(t), oauth2.S256ChallengeOption(v)))
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), c.RedirectURIs[0]+"?code=") {
		t.Fatalf("authorize on B after consenting on A: %d Location %q, want a redirect to the app with a code; body: %.300s", resp.StatusCode, resp.Header.Get("Location"), page)
	}

	// Both publish the same ID token keys, kept in the database.
	var jwksA, jwksB map[string]any
	getJSON(t, a.base+"/.well-known/jwks.json", &jwksA)
	getJSON(t, b.base+"/.well-known/jwks.json", &jwksB)
	if keys, _ := jwksA["keys"].([]any); len(keys) == 0 || !reflect.DeepEqual(jwksA, jwksB) {
		t.Fatalf("JWKS differ or are empty: A %v, B %v", jwksA, jwksB)
	}

	// Revoke on B; A refuses the tokens at once.
	if resp, body := revoke(t, b.base, freshRefresh, c.ID, secret); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke on B: %d %s", resp.StatusCode, body)
	}
	wantAPI(t, "access token revoked on B, used on A", a, freshAccess, http.StatusUnauthorized)
	resp, body = tokenRequest(t, a.base, refreshForm(freshRefresh), c.ID, secret)
	wantInvalidGrant(t, "refresh token revoked on B, used on A", resp, body)
	if got := introspect(t, a.base, freshAccess, c.ID, secret); got["active"] != false {
		t.Fatalf("A introspects a token revoked on B as %v", got)
	}
}

// TestMultiInstanceSecretRotation restarts the group with a new secret and
// checks what the old one issued, then the rolling order docs/multi-instance.md
// gives: tokens and cookies under the new secret verify on an instance
// that still signs with the old one and lists the new one in --old-secrets.
func TestMultiInstanceSecretRotation(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	withJar := func(t *testing.T, in *instance) *browser {
		b := newBrowser(t, in.base)
		b.client.Jar = jar
		return b
	}
	var (
		c               storage.Client
		secret          string
		access, refresh string
	)

	if !t.Run("issue under the old secret", func(t *testing.T) {
		old := startInstance(t, dsn, "--secret", testSecret)
		c, secret = setup(t, old)
		conf := multiConf(c, secret, old, old, "offline_access", "books:read")
		v := oauth2.GenerateVerifier()
		code := authorizedCode(t, old.testServer, withJar(t, old), conf, v, "alice", alicePassword)
		access, refresh = mustTokens(t, old.base, codeForm(conf, code, v), c, secret)
	}) {
		return
	}

	// Runs before the next subtest, which needs the refresh token alive:
	// refusing it here must not count as a replay.
	t.Run("new secret alone refuses them", func(t *testing.T) {
		// The signing keys are sealed under the old secret: README's
		// procedure for a leaked secret reseals them first.
		if _, err := runInProcess(t, "keys", "rotate", "--db", dsn, "--secret", rotatedSecret, "--old-secrets", testSecret); err != nil {
			t.Fatalf("keys rotate: %v", err)
		}
		n := startInstance(t, dsn, "--secret", rotatedSecret)
		wantAPI(t, "old access token", n, access, http.StatusUnauthorized)
		resp, body := tokenRequest(t, n.base, refreshForm(refresh), c.ID, secret)
		wantInvalidGrant(t, "old refresh token", resp, body)
		wantSignedIn(t, "old session cookie", withJar(t, n), false)
	})

	t.Run("new secret with --old-secrets accepts them", func(t *testing.T) {
		n := startInstance(t, dsn, "--secret", rotatedSecret, "--old-secrets", testSecret)
		wantAPI(t, "old access token", n, access, http.StatusOK)
		wantSignedIn(t, "old session cookie", withJar(t, n), true)
		newAccess, _ := mustTokens(t, n.base, refreshForm(refresh), c, secret)

		// Rolling: an instance not yet switched, which already accepts
		// the new secret, verifies what a switched one issues.
		staged := startInstance(t, dsn, "--secret", testSecret, "--old-secrets", rotatedSecret)
		wantAPI(t, "token issued under the new secret, on a staged instance", staged, newAccess, http.StatusOK)
		fresh := newBrowser(t, n.base)
		resp, body := fresh.post("/login", url.Values{"username": {"alice"}, "password": {alicePassword}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		wantSignedIn(t, "cookie written under the new secret, on a staged instance", fresh.at(staged), true)
		wantSignedIn(t, "cookie written under the new secret, on an instance that only has the old one", fresh.at(startInstance(t, dsn, "--secret", testSecret)), false)
	})
}

// raceTokenRequest sends form 20 times at once, spread over the instances,
// and checks that exactly one request wins and every other gets 400
// invalid_grant, never a server error.
func raceTokenRequest(t *testing.T, instances []*instance, form url.Values, c storage.Client, secret string) {
	t.Helper()
	const n = 20
	statuses := make([]int, n)
	codes := make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			resp, body := tokenRequest(t, instances[i%len(instances)].base, form, c.ID, secret)
			statuses[i], codes[i] = resp.StatusCode, errorCode(body)
		})
	}
	close(start)
	wg.Wait()
	var wins []int
	for i := range n {
		switch {
		case statuses[i] == http.StatusOK:
			wins = append(wins, i)
		case statuses[i] == http.StatusBadRequest && codes[i] == "invalid_grant":
		default:
			t.Errorf("request %d to instance %d: %d %s, want 200 or 400 invalid_grant", i, i%len(instances), statuses[i], codes[i])
		}
	}
	if len(wins) != 1 {
		t.Fatalf("requests %v got tokens, want exactly one", wins)
	}
}

// TestMultiInstanceCodeRedemptionRace: one code, redeemed from 20
// goroutines on both instances at once.
func TestMultiInstanceCodeRedemptionRace(t *testing.T) {
	a, b := startPair(t)
	c, secret := setup(t, a)
	conf := multiConf(c, secret, a, a, "books:read")
	v := oauth2.GenerateVerifier()
	code := authorizedCode(t, a.testServer, newBrowser(t, a.base), conf, v, "alice", alicePassword)
	raceTokenRequest(t, []*instance{a, b}, codeForm(conf, code, v), c, secret)
}

// TestMultiInstanceRefreshRace: one refresh token, rotated from 20
// goroutines on both instances at once.
func TestMultiInstanceRefreshRace(t *testing.T) {
	a, b := startPair(t)
	c, secret := setup(t, a)
	conf := multiConf(c, secret, a, a, "offline_access", "books:read")
	v := oauth2.GenerateVerifier()
	code := authorizedCode(t, a.testServer, newBrowser(t, a.base), conf, v, "alice", alicePassword)
	_, refresh := mustTokens(t, b.base, codeForm(conf, code, v), c, secret)
	raceTokenRequest(t, []*instance{a, b}, refreshForm(refresh), c, secret)
}

// TestRefreshRotationRace is TestMultiInstanceRefreshRace on one SQLite
// server, the counterpart of TestCodeRedemptionRace.
func TestRefreshRotationRace(t *testing.T) {
	srv := newTestServer(t)
	in := &instance{testServer: srv, base: srv.URL}
	c, secret := setup(t, in)
	conf := multiConf(c, secret, in, in, "offline_access", "books:read")
	v := oauth2.GenerateVerifier()
	code := authorizedCode(t, srv, newBrowser(t, in.base), conf, v, "alice", alicePassword)
	_, refresh := mustTokens(t, in.base, codeForm(conf, code, v), c, secret)
	raceTokenRequest(t, []*instance{in}, refreshForm(refresh), c, secret)
}

// TestMultiInstanceLoginThrottle: failed sign-ins on one instance count on
// the other, and a sign-in on one clears the count for both.
func TestMultiInstanceLoginThrottle(t *testing.T) {
	a, b := startPair(t)
	setup(t, a)
	login := func(in *instance, password string) (*http.Response, string) {
		t.Helper()
		return newBrowser(t, in.base).post("/login", url.Values{"username": {"alice"}, "password": {password}})
	}
	fail := func(in *instance, times int) {
		t.Helper()
		for range times {
			resp, body := login(in, "wrong password")
			wantStatus(t, resp, body, http.StatusUnauthorized)
		}
	}

	// Four failures on A, then a sign-in on B clears them: four more on A
	// would otherwise lock the account (five per 15 minutes).
	fail(a, 4)
	resp, body := login(b, alicePassword)
	wantStatus(t, resp, body, http.StatusSeeOther)
	fail(a, 4)
	resp, body = login(a, alicePassword)
	wantStatus(t, resp, body, http.StatusSeeOther)

	fail(a, 3)
	fail(b, 2)
	resp, body = login(b, alicePassword)
	wantStatus(t, resp, body, http.StatusTooManyRequests)
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 15*60 {
		t.Fatalf("Retry-After %q, want 1 to 900 seconds", resp.Header.Get("Retry-After"))
	}
	resp, body = login(a, alicePassword)
	wantStatus(t, resp, body, http.StatusTooManyRequests)
}
