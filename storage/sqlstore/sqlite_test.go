package sqlstore

import (
	"context"
	"os"
	"path/filepath"
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
