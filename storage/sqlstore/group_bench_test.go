//go:build unix

package sqlstore

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"gatehouse/storage"
	"gatehouse/storage/storagetest"
)

// BenchmarkCreateToken is 50 concurrent token inserts outside a
// transaction, as client_credentials makes them, into a table of 20,000
// rows: "group" is CreateToken, which batches them on SQLite (group.go);
// "single" runs each insert as its own transaction.
func BenchmarkCreateToken(b *testing.B) {
	s, c := newBenchStore(b, storagetest.SQLitePath)
	err := s.InTx(b.Context(), func(ctx context.Context) error {
		for i := range 20_000 {
			if err := s.CreateToken(ctx, benchToken(storage.KindAccess, c.ID, strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, insert := range []struct {
		name string
		run  func(storage.Token) error
	}{
		{"group", func(t storage.Token) error { return s.CreateToken(context.Background(), t) }},
		{"single", func(t storage.Token) error {
			args, err := s.tokenArgs(t)
			if err != nil {
				return err
			}
			_, err = s.exec(context.Background(), qCreateToken, args...)
			return err
		}},
	} {
		b.Run(insert.name, func(b *testing.B) {
			b.SetParallelism(25)
			b.ReportAllocs()
			start := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := insert.run(benchToken(storage.KindAccess, c.ID, storage.NewID())); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's CPU time: on a machine shared with other work
// it varies less than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClientThenToken is a client_credentials request's two steps in
// the store, 50 at once: its client's lookup, then its token's insert.
// "checked" reads client_changes for the lookup; "deferred" looks up under a
// storage.ClientCheck, which the insert confirms.
func BenchmarkClientThenToken(b *testing.B) {
	s, c := newBenchStore(b, storagetest.SQLitePath)
	if _, err := s.GetClient(b.Context(), c.ID); err != nil { // fills the cache
		b.Fatal(err)
	}
	for _, step := range []struct {
		name string
		ctx  func() (context.Context, *storage.ClientCheck)
	}{
		{"checked", func() (context.Context, *storage.ClientCheck) { return context.Background(), nil }},
		{"deferred", func() (context.Context, *storage.ClientCheck) { return storage.DeferClientCheck(context.Background()) }},
	} {
		b.Run(step.name, func(b *testing.B) {
			b.SetParallelism(25)
			b.ReportAllocs()
			start := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, check := step.ctx()
					if _, err := s.GetClient(ctx, c.ID); err != nil {
						b.Error(err)
						return
					}
					if err := s.CreateToken(ctx, benchToken(storage.KindAccess, c.ID, storage.NewID())); err != nil || check.Stale() {
						b.Errorf("CreateToken: %v, stale %v", err, check.Stale())
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
