package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/clients"
	"gatehouse/storage"
)

// Instances keep the clients they read in memory (see
// storage/sqlstore/clients.go). These tests change a client behind a
// running server's back and check that the very next request sees it.

// wantClientCredentials asks base for a client_credentials token and
// checks the answer: 200, or 401 invalid_client when refused.
func wantClientCredentials(t *testing.T, what, base, id, secret string, ok bool) {
	t.Helper()
	resp, body := tokenRequest(t, base, url.Values{"grant_type": {"client_credentials"}}, id, secret)
	switch {
	case ok && resp.StatusCode != http.StatusOK:
		t.Fatalf("%s: %d %s, want 200", what, resp.StatusCode, fmtErr(body))
	case !ok && (resp.StatusCode != http.StatusUnauthorized || errorCode(body) != "invalid_client"):
		t.Fatalf("%s: %d %s, want 401 invalid_client", what, resp.StatusCode, fmtErr(body))
	}
}

// wantAuthorize checks how base answers an authorization request with
// redirectURI: a redirect to the login page when the URI is registered,
// 400 when it is not.
func wantAuthorize(t *testing.T, what, base, clientID, redirectURI string, registered bool) {
	t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
		"scope": {"books:read"}, "state": {"state-0123456789"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	toLogin := resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login")
	if registered && !toLogin || !registered && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%s: %d (Location %q), want registered %v", what, resp.StatusCode, resp.Header.Get("Location"), registered)
	}
}

// TestCLIClientChangesReachRunningServer rotates a secret, replaces the
// redirect URIs and deletes a client with the CLI, another process, while
// the server runs on the same SQLite file and has the client in its cache.
func TestCLIClientChangesReachRunningServer(t *testing.T) {
	bin := serverBinary(t)
	db := filepath.Join(t.TempDir(), "gatehouse.db")
	out := runCLI(t, bin, db, "", "clients", "create", "--name", "Service", "--redirect-uri", "http://127.0.0.1:9999/callback",
		"--grant-type", "client_credentials", "--grant-type", "authorization_code")
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" || c.Secret == "" {
		t.Fatalf("clients create printed %q: %v", out, err)
	}
	p := startProcess(t, bin, db, "127.0.0.1:0")

	// Twice, so that the second answer comes from the cache.
	wantClientCredentials(t, "first request", p.URL, c.ID, c.Secret, true)
	wantClientCredentials(t, "second request", p.URL, c.ID, c.Secret, true)
	wantAuthorize(t, "registered redirect URI", p.URL, c.ID, "http://127.0.0.1:9999/callback", true)

	out = runCLI(t, bin, db, "", "clients", "update", c.ID, "--rotate-secret")
	var rotated struct {
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || rotated.Secret == "" || rotated.Secret == c.Secret {
		t.Fatalf("clients update --rotate-secret printed %q: %v", out, err)
	}
	wantClientCredentials(t, "old secret after rotate-secret", p.URL, c.ID, c.Secret, false)
	wantClientCredentials(t, "new secret after rotate-secret", p.URL, c.ID, rotated.Secret, true)

	runCLI(t, bin, db, "", "clients", "update", c.ID, "--redirect-uri", "http://127.0.0.1:9999/other")
	wantAuthorize(t, "replaced redirect URI", p.URL, c.ID, "http://127.0.0.1:9999/callback", false)
	wantAuthorize(t, "new redirect URI", p.URL, c.ID, "http://127.0.0.1:9999/other", true)

	runCLI(t, bin, db, "", "clients", "delete", c.ID)
	wantClientCredentials(t, "deleted client", p.URL, c.ID, rotated.Secret, false)
	wantAuthorize(t, "deleted client", p.URL, c.ID, "http://127.0.0.1:9999/other", false)
}

// TestMultiInstanceClientChanges changes a client on instance A while B
// has it cached: B refuses the old secret, the replaced redirect URI and
// the deleted client at once.
func TestMultiInstanceClientChanges(t *testing.T) {
	a, b := startPair(t)
	reg := createReg("Service")
	reg.GrantTypes = []string{"client_credentials", "authorization_code"}
	c, secret := a.mustCreateClient(t, reg)
	wantClientCredentials(t, "B, first request", b.base, c.ID, secret, true)
	wantClientCredentials(t, "B, from its cache", b.base, c.ID, secret, true)

	rotated, err := clients.RotateSecret(t.Context(), a.store, c.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantClientCredentials(t, "old secret on B after rotating on A", b.base, c.ID, secret, false)
	wantClientCredentials(t, "new secret on B", b.base, c.ID, rotated, true)

	wantAuthorize(t, "B, registered redirect URI", b.base, c.ID, c.RedirectURIs[0], true)
	updated := c
	updated.RedirectURIs = []string{"http://127.0.0.1:9999/other"}
	if err := a.store.UpdateClient(t.Context(), updated); err != nil {
		t.Fatal(err)
	}
	wantAuthorize(t, "B, redirect URI replaced on A", b.base, c.ID, c.RedirectURIs[0], false)
	wantAuthorize(t, "B, new redirect URI", b.base, c.ID, "http://127.0.0.1:9999/other", true)

	if err := a.store.DeleteClient(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	wantClientCredentials(t, "B, client deleted on A", b.base, c.ID, rotated, false)
	if _, err := b.store.GetClient(t.Context(), c.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("B's store still finds the client deleted on A: %v", err)
	}
}

// TestIntrospectionClientChanges changes a client on instance A while B
// has it cached as an introspection caller. B looks its caller up without
// reading client_changes, and the token's read carries that check
// (storage.ClientCheck): B must still refuse the old secret and the
// deleted client at once, for a token it finds and for one it does not.
func TestIntrospectionClientChanges(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "gatehouse.db")
		testIntrospectionClientChanges(t, startInstance(t, db), startInstance(t, db))
	})
	t.Run("postgres", func(t *testing.T) {
		a, b := startPair(t)
		testIntrospectionClientChanges(t, a, b)
	})
}

func testIntrospectionClientChanges(t *testing.T, a, b *instance) {
	reg := createReg("Service")
	reg.GrantTypes = []string{"client_credentials"}
	c, secret := a.mustCreateClient(t, reg)
	_, body := tokenRequest(t, a.base, url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
	token, _ := body["access_token"].(string)
	if token == "" {
		t.Fatalf("client_credentials: %v", body)
	}
	wantIntrospection(t, "B, first request", b.base, token, c.ID, secret, http.StatusOK)
	wantIntrospection(t, "B, from its cache", b.base, token, c.ID, secret, http.StatusOK)

	rotated, err := clients.RotateSecret(t.Context(), a.store, c.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantIntrospection(t, "old secret on B after rotating on A", b.base, token, c.ID, secret, http.StatusUnauthorized)
	wantIntrospection(t, "new secret on B", b.base, token, c.ID, rotated, http.StatusOK)
	wantIntrospection(t, "B, from its cache again", b.base, token, c.ID, rotated, http.StatusOK)

	if err := a.store.DeleteClient(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	wantIntrospection(t, "B, client deleted on A, token gone with it", b.base, token, c.ID, rotated, http.StatusUnauthorized)
}

// wantIntrospection introspects token on base as the client and checks the
// status: 200 with the token active, or the status of a refusal.
func wantIntrospection(t *testing.T, what, base, token, id, secret string, status int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != status || status == http.StatusOK && !strings.Contains(body, `"active":true`) {
		t.Fatalf("%s: %d %s, want %d", what, resp.StatusCode, body, status)
	}
}
