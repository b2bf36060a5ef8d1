package storage

import (
	"context"
	"errors"
)

// ErrClientChanged: a write that was to confirm a storage.ClientCheck found
// that a client was written since, and did not happen.
var ErrClientChanged = errors.New("storage: a client was written since it was read")

// ClientCheck lets one request skip the freshness read of a cached client
// lookup when a statement the request runs anyway can carry that read
// instead: GetClient may then answer from its cache unchecked, recording
// the count of client writes the cache was filled at, and a later
// statement that reads the current count confirms it. Until confirmed the
// client may be stale, and the request must not act on it: Stale says so,
// and the caller then looks the client up again with a context without
// the check. A store that never defers leaves the check never stale.
//
// A ClientCheck belongs to one request and is not safe for concurrent use.
type ClientCheck struct {
	n         int64
	deferred  bool
	confirmed bool
}

type clientCheckKey struct{}

// DeferClientCheck returns a context in which the first GetClient may go
// unchecked, and the check that records it.
func DeferClientCheck(ctx context.Context) (context.Context, *ClientCheck) {
	c := &ClientCheck{}
	return context.WithValue(ctx, clientCheckKey{}, c), c
}

// ClientCheckFrom returns ctx's check, or nil.
func ClientCheckFrom(ctx context.Context) *ClientCheck {
	c, _ := ctx.Value(clientCheckKey{}).(*ClientCheck)
	return c
}

// CanDefer reports whether a lookup may still go unchecked: only one per
// request does, so one count confirms everything the request read.
func (c *ClientCheck) CanDefer() bool { return c != nil && !c.deferred }

// Defer records a client answered unchecked from a cache filled at count n.
func (c *ClientCheck) Defer(n int64) { c.n, c.deferred = n, true }

// Pending returns the count a statement is to compare with the current
// one, and whether there is any to compare.
func (c *ClientCheck) Pending() (n int64, ok bool) {
	if c == nil || !c.deferred || c.confirmed {
		return 0, false
	}
	return c.n, true
}

// Confirm records that a statement read count n; the unchecked client is
// current if no client was written since the cache was filled.
func (c *ClientCheck) Confirm(n int64) {
	if n == c.n {
		c.confirmed = true
	}
}

// Stale reports whether a client was answered unchecked and no statement
// has confirmed it since.
func (c *ClientCheck) Stale() bool { return c != nil && c.deferred && !c.confirmed }
