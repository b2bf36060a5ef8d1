package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/audit"
)

// auditLines runs `server audit` with args on db and decodes its JSON
// lines.
func auditLines(t *testing.T, db string, args ...string) []audit.Event {
	t.Helper()
	out := mustRunCmd(t, nil, "", append([]string{"audit", "--db", db}, args...)...)
	var events []audit.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e audit.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("server audit printed %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

// TestAuditTrail performs every recorded action, through the real
// listener or the command line, and reads the events back with `server
// audit`, as an operator would.
func TestAuditTrail(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gatehouse.db")
	srv := newTestServer(t, "--db", db, "--dynamic-registration")
	const password = "correct horse battery"
	alice := srv.mustCreateUser(t, "alice", password)
	b := newBrowser(t, srv.URL)

	// Sign-ins: a wrong password, an unknown user, then the right one.
	resp, body := b.post("/login", url.Values{"username": {"alice"}, "password": {"wrong horse battery"}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = b.post("/login", url.Values{"username": {"nobody"}, "password": {"wrong horse battery"}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {password}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	signInRequest := resp.Header.Get("X-Request-Id")

	// Signing up on /register.
	resp, body = newBrowser(t, srv.URL).post("/register", url.Values{"username": {"carol"}, "password": {password}})
	wantStatus(t, resp, body, http.StatusSeeOther)

	// The console: create, change, new secret.
	resp, body = b.post("/apps", url.Values{"name": {"Shelf"}, "redirect_uris": {"http://127.0.0.1:9999/callback"}, "client_type": {"confidential"}})
	wantStatus(t, resp, body, http.StatusCreated)
	clientID := inputValue(t, body, "client-id")
	resp, body = b.post("/apps/"+clientID, url.Values{"name": {"Bookshelf"}, "redirect_uris": {"http://127.0.0.1:9999/callback"}})
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = b.post("/apps/"+clientID+"/secret", nil)
	wantStatus(t, resp, body, http.StatusOK)
	secret := inputValue(t, body, "client-secret")

	// Consent, a refresh, the retired refresh token replayed.
	c, err := srv.store.GetClient(t.Context(), clientID)
	if err != nil {
		t.Fatal(err)
	}
	conf := srv.oauthConfig(c, secret, "openid", "offline_access", "books:read")
	v := oauth2.GenerateVerifier()
	tok, err := conf.Exchange(t.Context(), authorizedCode(t, srv, b, conf, v, "alice", password), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err != nil {
		t.Fatal(err)
	}
	resp, out := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, clientID, secret)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed refresh token: %d %s", resp.StatusCode, fmtErr(out))
	}

	// Revoking the connection, then deleting the app.
	resp, body = b.post("/account/connections/"+clientID+"/revoke", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.post("/apps/"+clientID+"/delete", nil)
	wantStatus(t, resp, body, http.StatusSeeOther)

	// RFC 7591, then the command line on the same database.
	resp, reg := api(t, http.MethodPost, srv.URL+"/oauth2/register", "", map[string]any{"client_name": "Dynamic", "redirect_uris": []string{"https://dyn.example/cb"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("dynamic registration: %d %v", resp.StatusCode, reg)
	}
	var cli clientJSON
	if err := json.Unmarshal([]byte(mustRunCmd(t, nil, "", "clients", "create", "--name", "Ops", "--redirect-uri", "http://127.0.0.1:9999/cb", "--db", db)), &cli); err != nil {
		t.Fatal(err)
	}
	mustRunCmd(t, nil, "", "clients", "update", cli.ClientID, "--name", "Ops tool", "--rotate-secret", "--db", db)
	mustRunCmd(t, nil, "", "clients", "delete", cli.ClientID, "--db", db)
	auditKeyRotation(t.Context(), cliAudit(srv.store, io.Discard), "key-1")
	mustRunCmd(t, nil, "correct horse battery\n", "users", "create", "--username", "bob", "--password-stdin", "--db", db)
	mustRunCmd(t, nil, "", "users", "delete", "--username", "bob", "--db", db)

	events := auditLines(t, db)
	byType := map[audit.Type][]audit.Event{}
	for i, e := range events {
		byType[e.Type] = append(byType[e.Type], e)
		if i > 0 && e.Time.Before(events[i-1].Time) {
			t.Errorf("server audit is not oldest first: %v after %v", e.Time, events[i-1].Time)
		}
	}
	want := map[audit.Type]int{
		audit.SignInFailed: 2, audit.ClientCreated: 3, audit.ClientUpdated: 2,
		audit.ClientSecretRotated: 2, audit.ConsentGranted: 1, audit.RefreshTokenReused: 1,
		audit.ConsentRevoked: 1, audit.ClientDeleted: 2, audit.SigningKeyRotated: 1, audit.UserDeleted: 1,
		audit.UserCreated: 2, audit.SignIn: 1,
	}
	for typ, n := range want {
		if len(byType[typ]) != n {
			t.Errorf("%d %s events, want %d", len(byType[typ]), typ, n)
		}
	}

	// Who, whom, which app, from where and in which request.
	in := byType[audit.SignIn][0]
	if in.Actor != alice.ID || in.Subject != alice.ID || in.Address != "127.0.0.1" || in.RequestID != signInRequest {
		t.Errorf("sign-in event = %+v; want alice as actor and subject, 127.0.0.1 and request %s", in, signInRequest)
	}
	for _, e := range byType[audit.SignInFailed] {
		if e.Subject == "" && e.Detail["username"] != "" {
			t.Errorf("a refused sign-in of an unknown name keeps the name typed: %+v", e)
		}
	}
	if g := byType[audit.ConsentGranted][0]; g.Client != clientID || g.Subject != alice.ID || g.Detail["scope"] != "openid offline_access books:read" {
		t.Errorf("consent event = %+v", g)
	}
	if r := byType[audit.RefreshTokenReused][0]; r.Client != clientID || r.Subject != alice.ID {
		t.Errorf("reuse event = %+v", r)
	}
	for _, e := range events {
		if e.ID == "" || e.Time.IsZero() || e.Actor == "" {
			t.Errorf("event without id, time or actor: %+v", e)
		}
	}
	for _, e := range byType[audit.ClientDeleted] {
		if e.Client == cli.ClientID && e.Actor != audit.ActorCLI {
			t.Errorf("CLI delete recorded with actor %q, want %q", e.Actor, audit.ActorCLI)
		}
	}

	// The filters.
	for _, e := range auditLines(t, db, "--user", "alice") {
		if e.Actor != alice.ID && e.Subject != alice.ID {
			t.Errorf("--user alice printed %+v", e)
		}
	}
	if got := auditLines(t, db, "--client", cli.ClientID); len(got) != 4 {
		t.Errorf("--client %s printed %d events, want 4 (created, updated, rotated, deleted)", cli.ClientID, len(got))
	}
	if got := auditLines(t, db, "--since", "1h"); len(got) != len(events) {
		t.Errorf("--since 1h printed %d events, want all %d", len(got), len(events))
	}
	if got := auditLines(t, db, "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); len(got) != 0 {
		t.Errorf("--since in the future printed %d events", len(got))
	}
	if r := runCmd(t, nil, "", "audit", "--db", db, "--since", "yesterday"); r.err == nil || !strings.Contains(r.err.Error(), `--since: invalid value "yesterday"`) {
		t.Errorf("--since yesterday: %v", r.err)
	}

	// The metric counts what the server recorded (not the CLI's events).
	resp, body = b.get("/metrics")
	wantStatus(t, resp, body, http.StatusOK)
	for _, line := range []string{`gatehouse_audit_events_total{type="sign_in_failed"} 2`, `gatehouse_audit_events_total{type="refresh_token_reused"} 1`, `gatehouse_audit_events_total{type="user_disabled"} 0`} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	// alice sees her own activity, and nothing of others.
	resp, body = b.get("/account/security")
	wantStatus(t, resp, body, http.StatusOK)
	for _, s := range []string{"Recent activity", "Signed in", "Sign-in refused: wrong password", "Allowed an app", "Shelf", "127.0.0.1"} {
		if !strings.Contains(body, s) {
			t.Errorf("/account/security lacks %q", s)
		}
	}
	for _, s := range []string{"Ops tool", "Dynamic"} {
		if strings.Contains(body, s) {
			t.Errorf("/account/security shows another's event: %q", s)
		}
	}
	resp, body = newBrowser(t, srv.URL).get("/account/security")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?return_to=") {
		t.Errorf("/account/security signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
