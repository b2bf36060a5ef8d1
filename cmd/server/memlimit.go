package main

import (
	"context"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// The soft Go memory limit when GOMEMLIMIT is not set: the larger of
// minMemoryLimit and twice the live heap, followed every memoryLimitEvery.
//
// With GOGC=300 the heap may grow to four times what is live before a
// collection, and a sign-in's argon2id buffer (7 MiB) counts as live while
// it hashes, so a burst of first-time sign-ins took the peak RSS to 70 MB
// under the fixed 40 MiB limit this replaces and to 150 MB with none.
// Following the live heap holds it near 55 MB for some 5% more CPU per
// first-time sign-in; the other scenarios, whose heap stays far below the
// floor, do not notice it (README, Performance). A fixed limit that low
// would make the collector run without pause once caches grew the live
// heap near it; twice the live heap still lets each collection free as
// much as is live, as GOGC=100 would.
const (
	minMemoryLimit   = 24 << 20
	memoryLimitEvery = 5 * time.Second
)

// memoryLimitFor is the limit for a live heap of live bytes.
func memoryLimitFor(live uint64) int64 {
	return max(minMemoryLimit, 2*int64(min(live, 1<<60)))
}

// followLiveHeap sets the memory limit from the live heap the last
// collection measured, now and then every memoryLimitEvery until ctx ends.
func followLiveHeap(ctx context.Context) {
	sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		rtmetrics.Read(sample)
		if sample[0].Value.Kind() == rtmetrics.KindUint64 {
			debug.SetMemoryLimit(memoryLimitFor(sample[0].Value.Uint64()))
		}
	}
	set()
	t := time.NewTicker(memoryLimitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			set()
		}
	}
}
