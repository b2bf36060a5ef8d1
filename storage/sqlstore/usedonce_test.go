package sqlstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gatehouse/storage"
	"gatehouse/storage/storagetest"
)

// TestUseOnceAcrossStores races UseOnce of the same keys through two
// Stores on one database, as two server processes share an SQLite file or
// instances a PostgreSQL database: each key has exactly one winner.
func TestUseOnceAcrossStores(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.newDSN(t)
			stores := []*Store{mustOpen(t, dsn), mustOpen(t, dsn)}
			const keys, racers = 20, 8
			expires := time.Now().Add(time.Hour)
			wins := make([]int, keys)
			var mu sync.Mutex
			var wg sync.WaitGroup
			for k := range keys {
				for r := range racers {
					wg.Go(func() {
						err := stores[r%2].UseOnce(t.Context(), fmt.Sprint("dpop:k", k), expires)
						mu.Lock()
						defer mu.Unlock()
						switch {
						case err == nil:
							wins[k]++
						case !errors.Is(err, storage.ErrConflict):
							t.Errorf("key %d: %v, want nil or ErrConflict", k, err)
						}
					})
				}
			}
			wg.Wait()
			for k, n := range wins {
				if n != 1 {
					t.Errorf("key %d: %d winners, want 1", k, n)
				}
			}
		})
	}
}

// TestSQLiteUseOnceBatch queues UseOnce calls behind an open transaction,
// so that they commit as one batch with a key twice among them: one of the
// two fails alone, and every winner is committed when its call returns,
// so that another Store on the file refuses the key at once.
func TestSQLiteUseOnceBatch(t *testing.T) {
	path := storagetest.SQLitePath(t)
	s, other := mustOpen(t, path), mustOpen(t, path)
	ctx := t.Context()
	expires := time.Now().Add(time.Hour)
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	keys := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range keys {
		keys[i] = fmt.Sprint("dpop:batch", i)
		if i == n-1 {
			keys[i] = keys[0]
		}
		wg.Go(func() {
			if errs[i] = s.UseOnce(ctx, keys[i], expires); errs[i] == nil {
				if err := other.UseOnce(ctx, keys[i], expires); !errors.Is(err, storage.ErrConflict) {
					errs[i] = fmt.Errorf("the other Store's use right after: %v, want ErrConflict", err)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Rollback(txCtx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	conflicts := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, storage.ErrConflict) && (i == 0 || i == n-1):
			conflicts++
		case err != nil:
			t.Errorf("use %d: %v", i, err)
		}
	}
	if conflicts != 1 {
		t.Errorf("%d of the two uses of one key failed, want 1", conflicts)
	}
}
