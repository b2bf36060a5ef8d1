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

func testStoreLimiter(t *testing.T, store accounts.AttemptStore) {
	ctx := t.Context()
	l := &accounts.StoreLimiter{Store: store}
	t0 := time.Date(2030, time.May, 6, 7, 8, 9, 0, time.UTC)
	// Whatever a form can carry: NUL, invalid UTF-8, a long value.
	odd := "user:" + strings.Repeat("\x00\xff", 5000)
	limit := func(key string, max int) accounts.Limit {
		return accounts.Limit{Key: key, Max: max, Window: 15 * time.Minute}
	}

	reserve := func(now time.Time, wantWait time.Duration, limits ...accounts.Limit) accounts.Attempt {
		t.Helper()
		a, wait, err := l.Reserve(ctx, now, limits...)
		if err != nil {
			t.Fatalf("Reserve(%.20q): %v", limits[0].Key, err)
		}
		if wait != wantWait {
			t.Errorf("Reserve(%.20q) at t0+%v waits %v, want %v", limits[0].Key, now.Sub(t0), wait, wantWait)
		}
		return a
	}

	for _, key := range []string{"user:alice", odd} {
		reserve(t0, 0, limit(key, 3))
		reserve(t0.Add(time.Minute), 0, limit(key, 3))
		reserve(t0.Add(2*time.Minute), 0, limit(key, 3))
		// Locked until the first failure leaves the window.
		reserve(t0.Add(3*time.Minute), 12*time.Minute, limit(key, 3))
		reserve(t0.Add(15*time.Minute-time.Second), time.Second, limit(key, 3))
		reserve(t0.Add(15*time.Minute), 0, limit(key, 3))
	}
	// The fullest limit sets the wait; a refused attempt records nothing
	// under the limits that had room.
	reserve(t0.Add(3*time.Minute), 0, limit("user:bob", 3))
	reserve(t0.Add(4*time.Minute), 11*time.Minute, limit("user:bob", 3), limit("user:alice", 3))
	reserve(t0.Add(4*time.Minute), 0, limit("user:bob", 2))

	// A success withdraws its own attempt and forgets the named keys only.
	a := reserve(t0.Add(5*time.Minute), 0, limit("user:carol", 2), limit("addr:192.0.2.1", 2))
	if err := l.Succeeded(ctx, a); err != nil {
		t.Fatalf("Succeeded: %v", err)
	}
	reserve(t0.Add(5*time.Minute), 0, limit("user:carol", 2), limit("addr:192.0.2.1", 2))
	a = reserve(t0.Add(5*time.Minute), 0, limit("user:carol", 2))
	if err := l.Succeeded(ctx, a, "user:carol"); err != nil {
		t.Fatalf("Succeeded: %v", err)
	}
	reserve(t0.Add(5*time.Minute), 0, limit("user:carol", 1))
	reserve(t0.Add(5*time.Minute), 0, limit("addr:192.0.2.1", 2))
	reserve(t0.Add(5*time.Minute), 15*time.Minute, limit("addr:192.0.2.1", 2))
}

// brokenLimiter is a limiter whose database does not answer.
type brokenLimiter struct{}

var errDown = errors.New("database down")

func (brokenLimiter) Reserve(context.Context, time.Time, ...accounts.Limit) (accounts.Attempt, time.Duration, error) {
	return accounts.Attempt{}, 0, errDown
}
func (brokenLimiter) Succeeded(context.Context, accounts.Attempt, ...string) error { return errDown }

// passwordStore records whether the password was looked at.
type passwordStore struct{ looked bool }

func (s *passwordStore) CreateUser(context.Context, storage.User) error { return nil }
func (s *passwordStore) GetUserByUsername(context.Context, string) (storage.User, error) {
	s.looked = true
	return storage.User{}, storage.ErrNotFound
}
func (s *passwordStore) GetUser(context.Context, string) (storage.User, error) {
	s.looked = true
	return storage.User{}, storage.ErrNotFound
}
func (s *passwordStore) SetUserPassword(context.Context, string, string) error { return nil }
func (s *passwordStore) ReplacePasswordHash(context.Context, string, string, string) error {
	return nil
}

// TestLoginThrottleFailsClosed: when the failures cannot be counted, the
// password is not checked at all.
func TestLoginThrottleFailsClosed(t *testing.T) {
	store := &passwordStore{}
	mux := http.NewServeMux()
	(&accounts.Handler{
		Store:    store,
		Sessions: accounts.NewSessions(nil, [][]byte{make([]byte, 32), make([]byte, 32)}, accounts.SessionConfig{}),
		Logger:   slog.New(slog.DiscardHandler),
		NewPage:  func(*http.Request, string) templates.Page { return templates.Page{} },
		Limiter:  brokenLimiter{},
		Now:      time.Now,
	}).Mount(mux)
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"username": {"alice"}, "password": {"guess"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || store.looked {
		t.Fatalf("status %d, password looked up: %v; want 500 without a lookup", rec.Code, store.looked)
	}
}
