package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"gatehouse/storage"
	"gatehouse/storage/storagetest"
)

func TestSQLite(t *testing.T) {
	runBackend(t, storagetest.SQLitePath)
}

func TestSQLiteCreatesFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	mustOpen(t, filepath.Join(dir, "gatehouse.db"))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("folder mode = %o, want 700", perm)
	}
}

// TestSQLiteReadsOutsideTxDoNotWait checks that reads made beside a
// transaction go to the readers instead of queueing for the writer it holds.
func TestSQLiteReadsOutsideTxDoNotWait(t *testing.T) {
	s := mustOpen(t, storagetest.SQLitePath(t))
	u := storage.User{ID: storage.NewID(), Username: "reader"}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	txCtx, err := s.BeginTx(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Rollback(txCtx)
	if err := s.CreateUser(txCtx, storage.User{ID: storage.NewID(), Username: "uncommitted"}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("GetUser beside an open transaction: %v", err)
	}
	n, err := s.CountUsers(ctx)
	if err != nil {
		t.Fatalf("CountUsers beside an open transaction: %v", err)
	}
	if n != 1 {
		t.Errorf("CountUsers outside the transaction = %d, want 1: uncommitted rows leaked", n)
	}
}

// TestSQLiteGroupCommit queues inserts behind an open transaction, so that
// they commit together, and checks that the one with a taken signature
// fails alone and that every other was committed when its caller returned.
func TestSQLiteGroupCommit(t *testing.T) {
	s := mustOpen(t, storagetest.SQLitePath(t))
	ctx := t.Context()
	c := storage.Client{ID: storage.NewID(), Name: "group", Public: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	taken := benchToken(storage.KindAccess, c.ID, "taken")
	if err := s.CreateToken(ctx, taken); err != nil {
		t.Fatal(err)
	}

	// The open transaction holds the writer, so the inserts pile up.
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	tokens := make([]storage.Token, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range tokens {
		tokens[i] = benchToken(storage.KindAccess, c.ID, strconv.Itoa(i))
		if i == n/2 {
			tokens[i].Signature = taken.Signature
		}
		wg.Go(func() {
			errs[i] = s.CreateToken(ctx, tokens[i])
			if errs[i] == nil {
				// Committed by the time CreateToken returns: another
				// connection sees it.
				if _, err := s.GetToken(ctx, storage.KindAccess, tokens[i].Signature); err != nil {
					errs[i] = fmt.Errorf("read back at once: %w", err)
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Rollback(txCtx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case i == n/2 && !errors.Is(err, storage.ErrConflict):
			t.Errorf("insert of a taken signature: %v, want ErrConflict", err)
		case i != n/2 && err != nil:
			t.Errorf("insert %d: %v", i, err)
		}
	}
}
