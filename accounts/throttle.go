package accounts

import (
	"sync"
	"time"
)

// Limiter counts failed sign-ins per key (an account or a client address)
// and says how long a key must wait once it has failed too often.
type Limiter interface {
	// Wait returns how long key is locked out; zero means it may try.
	Wait(key string, now time.Time) time.Duration
	// Fail records a failed attempt.
	Fail(key string, now time.Time)
	// Reset forgets key after a successful sign-in.
	Reset(key string)
}

// WindowLimiter allows Max failures per key within Window; the next attempt
// waits until the oldest failure leaves the window. It lives in memory, so
// with several instances each counts separately and the effective limit is
// Max times the number of instances.
type WindowLimiter struct {
	Max    int
	Window time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
	swept    time.Time
}

func NewWindowLimiter(max int, window time.Duration) *WindowLimiter {
	return &WindowLimiter{Max: max, Window: window, failures: map[string][]time.Time{}}
}

func (l *WindowLimiter) Wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.recent(key, now)
	if len(recent) < l.Max {
		return 0
	}
	return recent[len(recent)-l.Max].Add(l.Window).Sub(now)
}

func (l *WindowLimiter) Fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[key] = append(l.recent(key, now), now)
	l.sweep(now)
}

func (l *WindowLimiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// recent drops failures older than the window; it keeps at most Max, which
// is all Wait needs, so a flood of failures cannot grow one entry.
func (l *WindowLimiter) recent(key string, now time.Time) []time.Time {
	fs := l.failures[key]
	i := 0
	for i < len(fs) && now.Sub(fs[i]) >= l.Window {
		i++
	}
	fs = fs[i:]
	if len(fs) > l.Max {
		fs = fs[len(fs)-l.Max:]
	}
	if len(fs) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = fs
	return fs
}

// sweep drops idle keys once per window so the map stays bounded by the
// keys that failed recently.
func (l *WindowLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < l.Window {
		return
	}
	l.swept = now
	for k := range l.failures {
		l.recent(k, now)
	}
}
