package accounts_test

import (
	"bytes"
	"encoding/base32"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"gatehouse/accounts"
	"gatehouse/storage/sqlstore"
	"gatehouse/storage/storagetest"
	"gatehouse/web/templates"
)

func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	store, err := sqlstore.Open(t.Context(), storagetest.SQLitePath(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func sealKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// clock is a settable time for TwoStep.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func wantCodeErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// TestTwoStepCodes covers what a code may do: the setup's confirmation,
// the window of one step either side, each step once and only later ones,
// recovery codes once, and the secret sealed at rest.
func TestTwoStepCodes(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	t0 := time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC) // a step boundary
	c := &clock{t0}
	ts, err := accounts.NewTwoStep(store, [][]byte{sealKey(1)}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := accounts.Register(ctx, store, "alice", "correct horse battery", t0)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := accounts.Register(ctx, store, "bob", "correct horse battery", t0)
	if err != nil {
		t.Fatal(err)
	}

	setup, err := ts.NewSetup(alice.ID, alice.Username)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(setup.QR, "data:image/png;base64,") || len(setup.Secret) != 32 {
		t.Fatalf("setup QR %.30q, secret of %d characters", setup.QR, len(setup.Secret))
	}
	_, err = ts.Confirm(ctx, alice.ID, setup.Token, "000000")
	if codeAt(t, setup.Secret, t0) != "000000" {
		wantCodeErr(t, "Confirm with a wrong code", err, accounts.ErrWrongCode)
	}
	_, err = ts.Confirm(ctx, bob.ID, setup.Token, codeAt(t, setup.Secret, t0))
	wantCodeErr(t, "Confirm with another user's setup", err, accounts.ErrSetupExpired)
	_, err = ts.Confirm(ctx, alice.ID, setup.Token[:len(setup.Token)-2]+"AA", codeAt(t, setup.Secret, t0))
	wantCodeErr(t, "Confirm with a tampered setup", err, accounts.ErrSetupExpired)
	c.t = t0.Add(11 * time.Minute)
	_, err = ts.Confirm(ctx, alice.ID, setup.Token, codeAt(t, setup.Secret, c.t))
	wantCodeErr(t, "Confirm after the setup's lifetime", err, accounts.ErrSetupExpired)
	if on, err := ts.Enabled(ctx, alice.ID); err != nil || on {
		t.Fatalf("Enabled after refused confirmations = %v, %v; want false", on, err)
	}

	c.t = t0
	again, err := ts.ReopenSetup(alice.ID, alice.Username, setup.Token)
	if err != nil || again.Secret != setup.Secret {
		t.Fatalf("ReopenSetup = %q, %v; want the same key", again.Secret, err)
	}
	codes, err := ts.Confirm(ctx, alice.ID, setup.Token, codeAt(t, setup.Secret, t0))
	if err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	if len(codes) != accounts.RecoveryCodeCount {
		t.Fatalf("%d recovery codes, want %d", len(codes), accounts.RecoveryCodeCount)
	}
	seen := map[string]bool{}
	for _, code := range codes {
		if !regexp.MustCompile(`^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`).MatchString(code) || seen[code] {
			t.Errorf("recovery code %q is not a fresh xxxx-xxxx-xxxx-xxxx", code)
		}
		seen[code] = true
	}
	_, err = ts.Confirm(ctx, alice.ID, setup.Token, codeAt(t, setup.Secret, t0.Add(30*time.Second)))
	wantCodeErr(t, "Confirm a second time", err, accounts.ErrTOTPOn)

	t.Run("sealed at rest", func(t *testing.T) {
		rec, err := store.GetTOTP(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(setup.Secret)
		if bytes.Contains(rec.Sealed, []byte(setup.Secret)) || bytes.Contains(rec.Sealed, raw) {
			t.Fatal("the stored row holds the secret in clear")
		}
		other, _ := accounts.NewTwoStep(store, [][]byte{sealKey(2)}, c.now)
		if _, err := other.Check(ctx, alice.ID, codeAt(t, setup.Secret, t0)); err == nil || errors.Is(err, accounts.ErrWrongCode) {
			t.Fatalf("Check under another system secret: %v, want an error that it does not open", err)
		}
	})

	// The confirming code is spent.
	_, err = ts.Check(ctx, alice.ID, codeAt(t, setup.Secret, t0))
	wantCodeErr(t, "Check of the confirming code", err, accounts.ErrUsedCode)

	c.t = t0.Add(30 * time.Second)
	// A former secret listed after the current one still opens it.
	rotated, _ := accounts.NewTwoStep(store, [][]byte{sealKey(2), sealKey(1)}, c.now)
	code1 := codeAt(t, setup.Secret, c.t)
	if m, err := rotated.Check(ctx, alice.ID, " "+code1[:3]+" "+code1[3:]); err != nil || m != accounts.MethodTOTP {
		t.Fatalf("Check of the current code, typed with spaces, under a rotated secret = %q, %v", m, err)
	}
	_, err = ts.Check(ctx, alice.ID, code1)
	wantCodeErr(t, "Check replayed in its window", err, accounts.ErrUsedCode)

	c.t = t0.Add(90 * time.Second)
	// One step ahead is accepted; the current step is then older than
	// the last one accepted.
	if _, err := ts.Check(ctx, alice.ID, codeAt(t, setup.Secret, c.t.Add(30*time.Second))); err != nil {
		t.Fatalf("Check of the next step's code: %v", err)
	}
	_, err = ts.Check(ctx, alice.ID, codeAt(t, setup.Secret, c.t))
	wantCodeErr(t, "Check of a step before the last accepted", err, accounts.ErrUsedCode)

	c.t = t0.Add(10 * time.Minute)
	_, err = ts.Check(ctx, alice.ID, codeAt(t, setup.Secret, c.t.Add(-60*time.Second)))
	wantCodeErr(t, "Check of a code two steps old", err, accounts.ErrWrongCode)
	_, err = ts.Check(ctx, alice.ID, codeAt(t, setup.Secret, c.t.Add(60*time.Second)))
	wantCodeErr(t, "Check of a code two steps ahead", err, accounts.ErrWrongCode)
	_, err = ts.Check(ctx, bob.ID, codeAt(t, setup.Secret, c.t))
	wantCodeErr(t, "Check for a user without an app", err, accounts.ErrWrongCode)

	t.Run("racing requests with one code", func(t *testing.T) {
		code := codeAt(t, setup.Secret, c.t)
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = ts.Check(ctx, alice.ID, code) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				wantCodeErr(t, "racing Check", err, accounts.ErrUsedCode)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d racing checks of one code passed, want 1", won, n)
		}
	})

	t.Run("recovery codes", func(t *testing.T) {
		if m, err := ts.Check(ctx, alice.ID, codes[0]); err != nil || m != accounts.MethodRecovery {
			t.Fatalf("Check of a recovery code = %q, %v", m, err)
		}
		_, err := ts.Check(ctx, alice.ID, codes[0])
		wantCodeErr(t, "Check of a used recovery code", err, accounts.ErrUsedRecoveryCode)
		if _, err := ts.Check(ctx, alice.ID, strings.ToUpper(strings.ReplaceAll(codes[1], "-", ""))); err != nil {
			t.Fatalf("Check of a recovery code typed in capitals without dashes: %v", err)
		}
		_, err = ts.Check(ctx, bob.ID, codes[2])
		wantCodeErr(t, "Check of another user's recovery code", err, accounts.ErrWrongCode)
		_, err = ts.Check(ctx, alice.ID, "aaaa-bbbb-cccc-dddd")
		wantCodeErr(t, "Check of a made-up recovery code", err, accounts.ErrWrongCode)
		if n, err := ts.RecoveryCodesLeft(ctx, alice.ID); err != nil || n != accounts.RecoveryCodeCount-2 {
			t.Fatalf("RecoveryCodesLeft = %d, %v; want %d", n, err, accounts.RecoveryCodeCount-2)
		}
		fresh, err := ts.RegenerateRecoveryCodes(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ts.Check(ctx, alice.ID, codes[2])
		wantCodeErr(t, "Check of a replaced recovery code", err, accounts.ErrWrongCode)
		if _, err := ts.Check(ctx, alice.ID, fresh[0]); err != nil {
			t.Fatalf("Check of a new recovery code: %v", err)
		}
	})

	if err := ts.Disable(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if on, err := ts.Enabled(ctx, alice.ID); err != nil || on {
		t.Fatalf("Enabled after Disable = %v, %v", on, err)
	}
	_, err = ts.Check(ctx, alice.ID, codeAt(t, setup.Secret, c.t.Add(30*time.Second)))
	wantCodeErr(t, "Check after Disable", err, accounts.ErrWrongCode)
}

// TestCodeStepThrottle: wrong codes count against the account's sign-in
// limit; once it is full even the right code waits.
func TestCodeStepThrottle(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	now := time.Now()
	ts, err := accounts.NewTwoStep(store, [][]byte{sealKey(1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := accounts.Register(ctx, store, "alice", "correct horse battery", now)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := ts.NewSetup(alice.ID, alice.Username)
	if err != nil {
		t.Fatal(err)
	}
	// A code of an hour ago is refused: it is far outside the window.
	wrong := codeAt(t, setup.Secret, now.Add(-time.Hour))
	if _, err := ts.Confirm(ctx, alice.ID, setup.Token, codeAt(t, setup.Secret, now)); err != nil {
		t.Fatal(err)
	}
	sessions := accounts.NewSessions(store, [][]byte{sealKey(3), sealKey(4)}, accounts.SessionConfig{})
	h := &accounts.Handler{
		Store: store, Sessions: sessions, Logger: slog.New(slog.DiscardHandler),
		NewPage: func(*http.Request, string) templates.Page { return templates.Page{} },
		Limiter: &accounts.StoreLimiter{Store: store}, Now: time.Now, TwoStep: ts,
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(sessions.Middleware(mux))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := client.PostForm(srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, _ := post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "return_to": {"/account/security"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != accounts.CodeStepPath {
		t.Fatalf("password of a user with an app: %d to %q, want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), accounts.CodeStepPath)
	}
	for i := range 5 {
		resp, body := post(accounts.CodeStepPath, url.Values{"code": {wrong}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "That code is not right") {
			t.Fatalf("wrong code %d: %d %.300s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := post(accounts.CodeStepPath, url.Values{"code": {codeAt(t, setup.Secret, time.Now())}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many wrong codes") {
		t.Fatalf("right code after five wrong ones: %d Retry-After %q %.300s, want 429", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// TestTwoStepReseal: after the system secret changes, a start seals the
// app secrets again under the new one, so the old one can be retired.
func TestTwoStepReseal(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	c := &clock{time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)}
	old, _ := accounts.NewTwoStep(store, [][]byte{sealKey(1)}, c.now)
	alice, err := accounts.Register(ctx, store, "alice", "correct horse battery", c.t)
	if err != nil {
		t.Fatal(err)
	}
	setup, _ := old.NewSetup(alice.ID, alice.Username)
	if _, err := old.Confirm(ctx, alice.ID, setup.Token, codeAt(t, setup.Secret, c.t)); err != nil {
		t.Fatal(err)
	}
	stranger, _ := accounts.NewTwoStep(store, [][]byte{sealKey(9)}, c.now)
	if n, bad, err := stranger.Reseal(ctx); err != nil || n != 0 || bad != 1 {
		t.Fatalf("Reseal with an unrelated secret = %d, %d, %v; want 0 resealed, 1 unsealable", n, bad, err)
	}
	rotated, _ := accounts.NewTwoStep(store, [][]byte{sealKey(2), sealKey(1)}, c.now)
	if n, bad, err := rotated.Reseal(ctx); err != nil || n != 1 || bad != 0 {
		t.Fatalf("Reseal = %d, %d, %v; want 1 resealed", n, bad, err)
	}
	if n, _, err := rotated.Reseal(ctx); err != nil || n != 0 {
		t.Fatalf("second Reseal = %d, %v; want nothing left to do", n, err)
	}
	retired, _ := accounts.NewTwoStep(store, [][]byte{sealKey(2)}, c.now)
	c.t = c.t.Add(30 * time.Second)
	if _, err := retired.Check(ctx, alice.ID, codeAt(t, setup.Secret, c.t)); err != nil {
		t.Fatalf("Check with the old secret retired: %v", err)
	}
}
