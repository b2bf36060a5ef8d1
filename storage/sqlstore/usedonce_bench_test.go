//go:build unix

package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"testing"
	"time"

	"gatehouse/storage/storagetest"
)

// BenchmarkUseOnce is UseOnce of fresh DPoP-sized keys into a table of
// 20,000 by 2 and by 50 callers at once: "group" is UseOnce, which batches
// them on SQLite, "single" runs each insert as its own transaction.
func BenchmarkUseOnce(b *testing.B) {
	s, _ := newBenchStore(b, storagetest.SQLitePath)
	expires := time.Now().Add(time.Hour)
	err := s.InTx(b.Context(), func(ctx context.Context) error {
		for range 20_000 {
			if err := s.UseOnce(ctx, replayKey(), expires); err != nil {
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
		run  func(key string) error
	}{
		{"group", func(key string) error { return s.UseOnce(context.Background(), key, expires) }},
		{"single", func(key string) error {
			_, err := s.exec(context.Background(), qUseOnce, key, s.time(expires))
			return err
		}},
	} {
		for _, perCPU := range []int{1, 25} {
			b.Run(fmt.Sprintf("%s/%d", insert.name, perCPU*runtime.GOMAXPROCS(0)), func(b *testing.B) {
				b.SetParallelism(perCPU)
				b.ReportAllocs()
				start := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := insert.run(replayKey()); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// replayKey is a key as VerifyDPoP makes it.
func replayKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "dpop:" + base64.RawURLEncoding.EncodeToString(b)
}

// BenchmarkDeleteExpiredUsedOnce is the cleanup of used_once holding
// 200,000 live keys, a busy server's five minutes, and 100,000 expired ones
// written before them; it logs the longest batch, the longest the writer
// is held.
func BenchmarkDeleteExpiredUsedOnce(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		b.StopTimer()
		s, _ := newBenchStore(b, storagetest.SQLitePath)
		err := s.InTx(b.Context(), func(ctx context.Context) error {
			for i := range 300_000 {
				expires := now.Add(time.Minute)
				if i < 100_000 {
					expires = now.Add(-time.Minute)
				}
				if err := s.UseOnce(ctx, replayKey(), expires); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start, longest := time.Now(), time.Duration(0)
		for n := int64(expiredBatch); n == expiredBatch; {
			t := time.Now()
			err := s.InTx(b.Context(), func(ctx context.Context) error {
				res, err := s.exec(ctx, qDeleteExpiredUsedOnce, s.time(now), expiredBatch)
				if err == nil {
					n, err = res.RowsAffected()
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			longest = max(longest, time.Since(t))
		}
		b.Logf("cleanup %v, longest batch %v", time.Since(start), longest)
		s.Close()
	}
}
