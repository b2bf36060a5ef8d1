// Package storagetest gives tests a database of their own: a file in a
// temporary folder for SQLite, a fresh schema for PostgreSQL.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// PostgresEnv names the variable holding the DSN of a PostgreSQL database
// that tests may create schemas in.
const PostgresEnv = "TEST_POSTGRES_DSN"

// SQLitePath returns the path of a database file, not yet created, in a
// folder removed when t ends.
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "gatehouse.db")
}

// RequirePostgres skips the test unless TEST_POSTGRES_DSN is set. A test
// that calls PostgresDSN in many subtests calls it first to skip once.
func RequirePostgres(t testing.TB) {
	t.Helper()
	if os.Getenv(PostgresEnv) == "" {
		t.Skip(PostgresEnv + " not set: skipping PostgreSQL tests (example: postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
}

// PostgresDSN creates an empty schema in the database named by
// TEST_POSTGRES_DSN and returns a DSN whose connections use it, so tests
// running at once never see each other's rows. The schema is dropped when t
// ends. Without TEST_POSTGRES_DSN the test is skipped.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	RequirePostgres(t)
	base := os.Getenv(PostgresEnv)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}

	var b [8]byte
	rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])

	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", PostgresEnv, err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
