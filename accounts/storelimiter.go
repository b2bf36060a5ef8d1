package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Limiter counts failed sign-ins per key (an account or a client address)
// and says how long a key must wait once it has failed too often.
type Limiter interface {
	// Wait returns how long key is locked out; zero means it may try.
	Wait(ctx context.Context, key string, now time.Time) (time.Duration, error)
	// Fail records a failed attempt.
	Fail(ctx context.Context, key string, now time.Time) error
	// Reset forgets key after a successful sign-in.
	Reset(ctx context.Context, key string) error
}

// FailureStore keeps failed sign-ins; storage.Store is one.
type FailureStore interface {
	RecordLoginFailure(ctx context.Context, key string, at time.Time) error
	CountLoginFailures(ctx context.Context, key string, since time.Time) (n int, oldest time.Time, err error)
	ClearLoginFailures(ctx context.Context, key string) error
}

// StoreLimiter allows Max failures per key within Window; the next attempt
// waits until the oldest failure leaves the window. The failures live in
// the database, so every instance behind a load balancer counts the same
// ones and the limit holds however requests are spread. Window must not
// exceed storage.LoginFailureRetention.
type StoreLimiter struct {
	Store  FailureStore
	Max    int
	Window time.Duration
}

var _ Limiter = (*StoreLimiter)(nil)

// Wait locks key out once Max failures fall in the window. Instances
// recording at the same moment can push the count past Max; the lockout
// still lasts until fewer than Max remain, but the wait returned is then
// only until the oldest leaves, and the next attempt is told to wait again.
func (l *StoreLimiter) Wait(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	n, oldest, err := l.Store.CountLoginFailures(ctx, storeKey(key), now.Add(-l.Window))
	if err != nil {
		return 0, fmt.Errorf("sign-in throttle: %w", err)
	}
	if n < l.Max {
		return 0, nil
	}
	return oldest.Add(l.Window).Sub(now), nil
}

func (l *StoreLimiter) Fail(ctx context.Context, key string, now time.Time) error {
	if err := l.Store.RecordLoginFailure(ctx, storeKey(key), now); err != nil {
		return fmt.Errorf("sign-in throttle: %w", err)
	}
	return nil
}

func (l *StoreLimiter) Reset(ctx context.Context, key string) error {
	if err := l.Store.ClearLoginFailures(ctx, storeKey(key)); err != nil {
		return fmt.Errorf("sign-in throttle: %w", err)
	}
	return nil
}

// storeKey is the digest of key. Keys carry whatever was typed as a
// username, at times a password in the wrong field, which has no business
// sitting in a table for a day; a digest also has a fixed size and is valid
// text for any database, whatever bytes the form held.
func storeKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
