//go:build unix

package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"gatehouse/storage/storagetest"
)

// BenchmarkUseOnce is UseOnce of fresh DPoP-sized keys into a table of
// 20,000, about a busy server's five minutes of proofs, by one caller at a
// time and by 50 at once: "group" is UseOnce, which batches them on SQLite,
// "single" runs each insert as its own transaction.
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
		for _, callers := range []int{1, 50} {
			b.Run(fmt.Sprintf("%s/%d", insert.name, callers), func(b *testing.B) {
				b.SetParallelism((callers + 1) / 2)
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
