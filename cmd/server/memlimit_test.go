package main

import (
	"context"
	"math"
	"runtime/debug"
	"testing"
)

// TestMemoryLimitFor: a small live heap gets the floor, which holds the
// RSS of sign-in bursts down; a larger one twice itself, so the collector
// never works against a limit the caches have reached.
func TestMemoryLimitFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, 24 << 20},
		{4 << 20, 24 << 20},
		{12 << 20, 24 << 20},
		{20 << 20, 40 << 20},
		{100 << 20, 200 << 20},
		{math.MaxUint64, 2 << 60},
	} {
		if got := memoryLimitFor(tc.live); got != tc.want {
			t.Errorf("memoryLimitFor(%d MiB) = %d MiB, want %d MiB", tc.live>>20, got>>20, tc.want>>20)
		}
	}
}

// TestFollowLiveHeap: the server sets the limit at once, not only after
// the first tick.
func TestFollowLiveHeap(t *testing.T) {
	old := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	followLiveHeap(ctx)
	if got := debug.SetMemoryLimit(-1); got == math.MaxInt64 || got < minMemoryLimit {
		t.Fatalf("limit after followLiveHeap = %d, want at least %d", got, minMemoryLimit)
	}
}
