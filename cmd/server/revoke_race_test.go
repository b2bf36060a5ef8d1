package main

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/storage/storagetest"
)

// TestRevokeRacesRefresh revokes a connected app on one instance while
// refreshes for the same user and app run on another, both on one
// PostgreSQL database. A refresh that was in flight when the revoke ran must
// not leave tokens behind: afterwards the app holds no token for the user
// and every refresh token it was given fails.
func TestRevokeRacesRefresh(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	a, b := startInstance(t, dsn), startInstance(t, dsn)
	c, secret := setup(t, a)
	alice, err := a.store.GetUserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conf := multiConf(c, secret, a, a, "offline_access", "books:read")
	user := newBrowser(t, a.base)

	const rounds, families = 8, 6
	for round := range rounds {
		refresh := make([]string, families)
		for i := range refresh {
			v := oauth2.GenerateVerifier()
			_, refresh[i] = mustTokens(t, a.base, codeForm(conf, authorizedCode(t, a.testServer, user, conf, v, "alice", alicePassword), v), c, secret)
		}

		var revoked atomic.Bool
		var leaked atomic.Int32
		var wg sync.WaitGroup
		last := make([]string, families)
		for i := range families {
			wg.Go(func() {
				tok := refresh[i]
				for after := 0; after < 20; {
					if revoked.Load() {
						after++
					}
					resp, body := tokenRequest(t, a.base, refreshForm(tok), c.ID, secret)
					if resp.StatusCode != http.StatusOK {
						if errorCode(body) != "invalid_grant" {
							t.Errorf("refresh during revoke: %d %s, want 200 or invalid_grant", resp.StatusCode, fmtErr(body))
						}
						break
					}
					tok = body["refresh_token"].(string)
					if after > 0 {
						// Started after the revoke had committed.
						leaked.Add(1)
					}
				}
				last[i] = tok
			})
		}
		time.Sleep(time.Duration(5+round*3) * time.Millisecond)
		resp, body := user.at(b).post("/account/connections/"+c.ID+"/revoke", url.Values{})
		wantStatus(t, resp, body, http.StatusSeeOther)
		revoked.Store(true)
		wg.Wait()

		var left int
		if err := db.QueryRow(`SELECT COUNT(*) FROM tokens WHERE client_id = $1 AND subject = $2 AND kind IN ('access', 'refresh') AND active`, c.ID, alice.ID).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left > 0 || leaked.Load() > 0 {
			t.Fatalf("round %d: after the revoke %d tokens of the app are active and %d refreshes succeeded after it returned", round, left, leaked.Load())
		}
		for i, tok := range last {
			resp, body := tokenRequest(t, b.base, refreshForm(tok), c.ID, secret)
			wantInvalidGrant(t, "refresh token "+string(rune('a'+i))+" after the revoke", resp, body)
		}
	}
}

// TestRevokeRacesCodeExchange revokes a connected app while codes issued
// under its grant are being exchanged: whatever an exchange returned, no
// token of the app for the user survives the revoke.
func TestRevokeRacesCodeExchange(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	a, b := startInstance(t, dsn), startInstance(t, dsn)
	c, secret := setup(t, a)
	alice, err := a.store.GetUserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conf := multiConf(c, secret, a, a, "offline_access", "books:read")
	user := newBrowser(t, a.base)

	const rounds, codes = 8, 10
	for round := range rounds {
		forms := make([]url.Values, codes)
		for i := range forms {
			v := oauth2.GenerateVerifier()
			forms[i] = codeForm(conf, authorizedCode(t, a.testServer, user, conf, v, "alice", alicePassword), v)
		}
		access := make([]string, codes)
		refresh := make([]string, codes)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, form := range forms {
			wg.Go(func() {
				<-start
				resp, body := tokenRequest(t, a.base, form, c.ID, secret)
				switch {
				case resp.StatusCode == http.StatusOK:
					access[i], _ = body["access_token"].(string)
					refresh[i], _ = body["refresh_token"].(string)
				case errorCode(body) != "invalid_grant":
					t.Errorf("exchange during revoke: %d %s, want 200 or invalid_grant", resp.StatusCode, fmtErr(body))
				}
			})
		}
		close(start)
		time.Sleep(time.Duration(round) * time.Millisecond)
		resp, body := user.at(b).post("/account/connections/"+c.ID+"/revoke", url.Values{})
		wantStatus(t, resp, body, http.StatusSeeOther)
		wg.Wait()

		var left int
		if err := db.QueryRow(`SELECT COUNT(*) FROM tokens WHERE client_id = $1 AND subject = $2 AND kind IN ('access', 'refresh')`, c.ID, alice.ID).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left > 0 {
			t.Fatalf("round %d: %d access and refresh tokens of the app survived the revoke", round, left)
		}
		for i := range codes {
			if access[i] == "" {
				continue
			}
			wantAPI(t, "access token issued while revoking", b, access[i], http.StatusUnauthorized)
			resp, body := tokenRequest(t, b.base, refreshForm(refresh[i]), c.ID, secret)
			wantInvalidGrant(t, "refresh token issued while revoking", resp, body)
		}
	}
}
