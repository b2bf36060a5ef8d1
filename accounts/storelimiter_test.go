package accounts_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/accounts"
	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
	"gatehouse/storage/storagetest"
	"gatehouse/web/templates"
)

func TestStoreLimiterThrottles(t *testing.T) {
	for _, backend := range []struct {
		name string
		dsn  func(testing.TB) string
	}{
		{"SQLite", storagetest.SQLitePath},
		{"Postgres", storagetest.PostgresDSN},
	} {
		t.Run(backend.name, func(t *testing.T) {
			store, err := sqlstore.Open(t.Context(), backend.dsn(t), sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			testStoreLimiter(t, store)
		})
	}
}

func testStoreLimiter(t *testing.T, store accounts.FailureStore) {
	ctx := t.Context()
	l := &accounts.StoreLimiter{Store: store, Max: 3, Window: 15 * time.Minute}
	t0 := time.Date(2030, time.May, 6, 7, 8, 9, 0, time.UTC)
	// Whatever a form can carry: NUL, invalid UTF-8, a long value.
	odd := "user:" + strings.Repeat("\x00\xff", 5000)

	wantWait := func(key string, now time.Time, want time.Duration) {
		t.Helper()
		got, err := l.Wait(ctx, key, now)
		if err != nil {
			t.Fatalf("Wait(%.20q): %v", key, err)
		}
		if got != want {
			t.Errorf("Wait(%.20q) at t0+%v = %v, want %v", key, now.Sub(t0), got, want)
		}
	}
	fail := func(key string, at time.Time) {
		t.Helper()
		if err := l.Fail(ctx, key, at); err != nil {
			t.Fatalf("Fail(%.20q): %v", key, err)
		}
	}

	for _, key := range []string{"user:alice", odd} {
		fail(key, t0)
		fail(key, t0.Add(time.Minute))
		wantWait(key, t0.Add(2*time.Minute), 0)
		fail(key, t0.Add(2*time.Minute))
		// Locked until the first failure leaves the window.
		wantWait(key, t0.Add(3*time.Minute), 12*time.Minute)
		wantWait(key, t0.Add(15*time.Minute-time.Second), time.Second)
		wantWait(key, t0.Add(15*time.Minute), 0)
	}
	wantWait("user:bob", t0.Add(3*time.Minute), 0)

	if err := l.Reset(ctx, "user:alice"); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	wantWait("user:alice", t0.Add(3*time.Minute), 0)
	wantWait(odd, t0.Add(3*time.Minute), 12*time.Minute)
}

// brokenLimiter is a limiter whose database does not answer.
type brokenLimiter struct{}

var errDown = errors.New("database down")

func (brokenLimiter) Wait(context.Context, string, time.Time) (time.Duration, error) {
	return 0, errDown
}
func (brokenLimiter) Fail(context.Context, string, time.Time) error { return errDown }
func (brokenLimiter) Reset(context.Context, string) error           { return errDown }

// passwordStore records whether the password was looked at.
type passwordStore struct{ looked bool }

func (s *passwordStore) CreateUser(context.Context, storage.User) error { return nil }
func (s *passwordStore) GetUserByUsername(context.Context, string) (storage.User, error) {
	s.looked = true
	return storage.User{}, storage.ErrNotFound
}

// TestLoginThrottleFailsClosed: when the failures cannot be counted, the
// password is not checked at all.
func TestLoginThrottleFailsClosed(t *testing.T) {
	store := &passwordStore{}
	mux := http.NewServeMux()
	(&accounts.Handler{
		Store:     store,
		Sessions:  accounts.NewSessions([][]byte{make([]byte, 32), make([]byte, 32)}, false),
		Logger:    slog.New(slog.DiscardHandler),
		NewPage:   func(*http.Request, string) templates.Page { return templates.Page{} },
		Accounts:  brokenLimiter{},
		Addresses: brokenLimiter{},
		Now:       time.Now,
	}).Mount(mux)
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"username": {"alice"}, "password": {"guess"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || store.looked {
		t.Fatalf("status %d, password looked up: %v; want 500 without a lookup", rec.Code, store.looked)
	}
}
