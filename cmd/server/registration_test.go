package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"gatehouse/storage/storagetest"
)

const registrationBody = `{"client_name":"Dynamic App","redirect_uris":["http://127.0.0.1:9999/callback"]}`

// postRegistration sends one registration request; header values are
// set as given.
func postRegistration(t *testing.T, base, body string, header map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/register", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if raw := readBody(t, resp); json.Unmarshal([]byte(raw), &out) != nil {
		t.Fatalf("registration answered %d with a body that is not JSON: %q", resp.StatusCode, raw)
	}
	return resp, out
}

// TestRegistrationRateLimit sends more registrations at once than one
// address may make in an hour: exactly the limit succeed, the rest get 429
// with Retry-After, and other addresses are counted apart.
func TestRegistrationRateLimit(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		testRegistrationRateLimit(t, newTestServer(t, "--dynamic-registration", "--trusted-proxies", "127.0.0.1").URL)
	})
	t.Run("PostgreSQL, two instances", func(t *testing.T) {
		dsn := storagetest.PostgresDSN(t)
		a := startInstance(t, dsn, "--dynamic-registration", "--trusted-proxies", "127.0.0.1")
		b := startInstance(t, dsn, "--dynamic-registration", "--trusted-proxies", "127.0.0.1")
		testRegistrationRateLimit(t, a.base, b.base)
	})
}

// testRegistrationRateLimit spreads the requests over the servers at
// bases, which share one database.
func testRegistrationRateLimit(t *testing.T, bases ...string) {
	const n = registrationsPerHour + 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			resp, body := postRegistration(t, bases[i%len(bases)], registrationBody, nil)
			statuses[i] = resp.StatusCode
			if resp.StatusCode == http.StatusTooManyRequests {
				retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if err != nil || retry < 1 || retry > 3600 {
					t.Errorf("429 with Retry-After %q, want 1 to 3600 seconds", resp.Header.Get("Retry-After"))
				}
				if body["error"] != "too_many_requests" || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("429 body %v (%s), want JSON error too_many_requests", body, resp.Header.Get("Content-Type"))
				}
			}
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != registrationsPerHour || count[http.StatusTooManyRequests] != n-registrationsPerHour {
		t.Fatalf("statuses %v, want %d × 201 and %d × 429", count, registrationsPerHour, n-registrationsPerHour)
	}

	// Behind the trusted proxy each forwarded address has a count of its
	// own; the addresses of one IPv6 /64 share one.
	if resp, body := postRegistration(t, bases[0], registrationBody, map[string]string{"X-Forwarded-For": "203.0.113.7"}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("another address: %d %v, want 201", resp.StatusCode, body)
	}
	for i := range registrationsPerHour {
		addr := "2001:db8:1:2::" + strconv.Itoa(i+1)
		if resp, body := postRegistration(t, bases[0], registrationBody, map[string]string{"X-Forwarded-For": addr}); resp.StatusCode != http.StatusCreated {
			t.Fatalf("registration %d from the /64: %d %v, want 201", i+1, resp.StatusCode, body)
		}
	}
	if resp, _ := postRegistration(t, bases[0], registrationBody, map[string]string{"X-Forwarded-For": "2001:db8:1:2:ffff::1"}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("one more from the same /64: %d, want 429", resp.StatusCode)
	}
	if resp, _ := postRegistration(t, bases[0], registrationBody, map[string]string{"X-Forwarded-For": "2001:db8:1:3::1"}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the neighbouring /64: %d, want 201", resp.StatusCode)
	}
}

// TestRegistrationToken requires the initial access token of RFC 7591 §3.
func TestRegistrationToken(t *testing.T) {
	const token = "initial-access-token-for-developers"
	srv := newTestServer(t, "--dynamic-registration", "--registration-token", token)
	for name, header := range map[string]map[string]string{
		"none":          nil,
		"wrong token":   {"Authorization": "Bearer " + token + "x"},
		"prefix":        {"Authorization": "Bearer " + token[:10]},
		"basic":         {"Authorization": "Basic " + token},
		"bare token":    {"Authorization": token},
		"empty bearer ": {"Authorization": "Bearer "},
	} {
		resp, body := postRegistration(t, srv.URL, registrationBody, header)
		if resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_token" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %v (WWW-Authenticate %q), want 401 invalid_token with a Bearer challenge", name, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}
	resp, body := postRegistration(t, srv.URL, registrationBody, map[string]string{"Authorization": "bearer " + token})
	if resp.StatusCode != http.StatusCreated || body["client_id"] == nil {
		t.Fatalf("with the token: %d %v, want 201", resp.StatusCode, body)
	}

	t.Run("from the environment", func(t *testing.T) {
		var cfg config
		fs := newFlagSet("server", &cfg, io.Discard)
		serverFlags(fs, &cfg)
		env := map[string]string{"GATEHOUSE_REGISTRATION_TOKEN": token, "GATEHOUSE_DYNAMIC_REGISTRATION": "true"}
		if err := parse(fs, nil, func(k string) string { return env[k] }); err != nil || cfg.RegistrationToken != token {
			t.Fatalf("GATEHOUSE_REGISTRATION_TOKEN gave %q (%v)", cfg.RegistrationToken, err)
		}
	})
	t.Run("needs dynamic registration", func(t *testing.T) {
		if err := startError(t, "--registration-token", token, "--secret", testSecret, "--db", t.TempDir()+"/g.db"); err == nil || !strings.Contains(err.Error(), "--dynamic-registration") {
			t.Fatalf("--registration-token alone: %v, want an error naming --dynamic-registration", err)
		}
	})
}

// TestConsentSaysWhoRegistered shows the consent page for an app the
// operator created and for one that registered itself: only the first
// claims the operator.
func TestConsentSaysWhoRegistered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	srv := newTestServer(t, "--dynamic-registration", "--db", path)
	srv.mustCreateUser(t, "alice", alicePassword)
	_, body := postRegistration(t, srv.URL, registrationBody, nil)
	dynamicID, _ := body["client_id"].(string)
	out, err := runInProcess(t, "clients", "create", "--db", path, "--name", "Operator App", "--redirect-uri", "http://127.0.0.1:9999/callback")
	if err != nil {
		t.Fatalf("clients create: %v", err)
	}
	var cli clientJSON
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, srv.URL)
	resp, page := b.post("/login", map[string][]string{"username": {"alice"}, "password": {alicePassword}})
	wantStatus(t, resp, page, http.StatusSeeOther)
	for _, tc := range []struct {
		id, want, notWant string
	}{
		{dynamicID, "Registered by the app itself; the operator of this server has not reviewed it", "Registered by the operator"},
		{cli.ClientID, "Registered by the operator of this server", "has not reviewed"},
	} {
		conf := &oauth2.Config{ClientID: tc.id, RedirectURL: "http://127.0.0.1:9999/callback", Endpoint: oauth2.Endpoint{AuthURL: srv.URL + "/oauth2/authorize"}}
		resp, page := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		wantStatus(t, resp, page, http.StatusOK)
		if !strings.Contains(page, tc.want) || strings.Contains(page, tc.notWant) {
			t.Errorf("consent page for %s: want %q and not %q", tc.id, tc.want, tc.notWant)
		}
	}
}
