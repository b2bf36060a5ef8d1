package accounts

import (
	"context"
	"fmt"
	"time"

	"gatehouse/storage"
)

// Limit is one count an attempt must stay under: fewer than Max failures
// of Key within Window.
type Limit struct {
	Key    string
	Max    int
	Window time.Duration
}

// Attempt is an attempt that Reserve let through.
type Attempt struct{ ids []int64 }

// Limiter throttles attempts at a secret (a password, a code). An attempt
// counts as failed from the moment it is reserved, before the secret is
// checked, so requests arriving at once cannot all slip under a limit.
type Limiter interface {
	// Reserve records an attempt under every limit at once, unless one of
	// them is full: then it records nothing and returns how long to wait.
	Reserve(ctx context.Context, now time.Time, limits ...Limit) (Attempt, time.Duration, error)
	// Succeeded withdraws the attempt, which turned out right, and forgets
	// the earlier failures of the keys in forget.
	Succeeded(ctx context.Context, a Attempt, forget ...string) error
}

// AttemptStore keeps the attempts; storage.Store is one.
type AttemptStore interface {
	ReserveLoginAttempt(ctx context.Context, at time.Time, limits []storage.LoginLimit) (storage.LoginAttempt, error)
	ReleaseLoginAttempt(ctx context.Context, ids []int64) error
	ClearLoginFailures(ctx context.Context, key string) error
}

// StoreLimiter keeps the attempts in the database, so every instance behind
// a load balancer counts the same ones and the limits hold however requests
// are spread. No Window may exceed storage.LoginFailureRetention.
type StoreLimiter struct {
	Store AttemptStore
}

var _ Limiter = (*StoreLimiter)(nil)

// Reserve's wait lasts until the oldest failure of the fullest limit leaves
// its window.
func (l *StoreLimiter) Reserve(ctx context.Context, now time.Time, limits ...Limit) (Attempt, time.Duration, error) {
	rows := make([]storage.LoginLimit, len(limits))
	for i, lim := range limits {
		rows[i] = storage.LoginLimit{Key: storeKey(lim.Key), Max: lim.Max, Since: now.Add(-lim.Window)}
	}
	got, err := l.Store.ReserveLoginAttempt(ctx, now, rows)
	if err != nil {
		return Attempt{}, 0, fmt.Errorf("sign-in throttle: %w", err)
	}
	if got.IDs != nil {
		return Attempt{ids: got.IDs}, 0, nil
	}
	var wait time.Duration
	for i, oldest := range got.Oldest {
		if !oldest.IsZero() {
			wait = max(wait, oldest.Add(limits[i].Window).Sub(now))
		}
	}
	// Another instance's clock may run ahead; the attempt was refused all
	// the same.
	return Attempt{}, max(wait, time.Second), nil
}

func (l *StoreLimiter) Succeeded(ctx context.Context, a Attempt, forget ...string) error {
	if err := l.Store.ReleaseLoginAttempt(ctx, a.ids); err != nil {
		return fmt.Errorf("sign-in throttle: %w", err)
	}
	for _, key := range forget {
		if err := l.Store.ClearLoginFailures(ctx, storeKey(key)); err != nil {
			return fmt.Errorf("sign-in throttle: %w", err)
		}
	}
	return nil
}

// storeKey is the digest of key. Keys carry whatever was typed as a
// username, at times a password in the wrong field, which has no business
// sitting in a table for a day; a digest also has a fixed size and is valid
// text for any database, whatever bytes the form held.
func storeKey(key string) string {
	return digest(key)
}
