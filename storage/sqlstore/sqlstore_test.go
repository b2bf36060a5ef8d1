package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"gatehouse/storage"
	"gatehouse/storage/conformance"
)

func mustOpen(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// runBackend runs everything a backend must pass; newDSN returns the DSN of
// an empty database.
func runBackend(t *testing.T, newDSN func(t testing.TB) string) {
	t.Run("Conformance", func(t *testing.T) {
		conformance.RunTests(t, func(t *testing.T) storage.Store {
			return mustOpen(t, newDSN(t))
		})
	})
	t.Run("ConcurrentOpen", func(t *testing.T) {
		testConcurrentOpen(t, newDSN(t))
	})
	t.Run("ReopenKeepsData", func(t *testing.T) {
		dsn := newDSN(t)
		u := storage.User{ID: storage.NewID(), Username: "kept", PasswordHash: "x"}
		first, err := Open(t.Context(), dsn, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := first.CreateUser(t.Context(), u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if err := first.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := mustOpen(t, dsn).GetUser(t.Context(), u.ID); err != nil {
			t.Fatalf("GetUser after reopening: %v", err)
		}
	})
	t.Run("NestedBeginTxFails", func(t *testing.T) {
		s := mustOpen(t, newDSN(t))
		ctx, err := s.BeginTx(t.Context())
		if err != nil {
			t.Fatalf("BeginTx: %v", err)
		}
		defer s.Rollback(ctx)
		if _, err := s.BeginTx(ctx); err == nil {
			t.Fatal("BeginTx inside a transaction succeeded, want an error")
		}
	})
}

// testConcurrentOpen opens the same empty database from several goroutines,
// as instances starting together do, and checks each migration ran once.
func testConcurrentOpen(t *testing.T, dsn string) {
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = Open(t.Context(), dsn, Options{})
		})
	}
	wg.Wait()
	for i, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
		}
	}
	if t.Failed() {
		return
	}

	ms, err := loadMigrations(stores[0].d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := stores[0].write.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got, want []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		want = append(want, m.version)
	}
	if !slices.Equal(got, want) {
		t.Errorf("schema_migrations holds versions %v, want %v", got, want)
	}
}

func TestMigrationsMatchAcrossDialects(t *testing.T) {
	versions := func(d *dialect) []string {
		ms, err := loadMigrations(d.migrations)
		if err != nil {
			t.Fatalf("%s migrations: %v", d.name, err)
		}
		if len(ms) == 0 {
			t.Fatalf("%s: no migrations", d.name)
		}
		var vs []string
		for _, m := range ms {
			vs = append(vs, fmt.Sprintf("%04d", m.version))
		}
		return vs
	}
	lite, pg := versions(sqliteDialect), versions(postgresDialect)
	if !slices.Equal(lite, pg) {
		t.Errorf("migration versions differ: sqlite %v, postgres %v", lite, pg)
	}
}

func TestRebind(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"none", "SELECT 1", "SELECT 1"},
		{"several", "UPDATE t SET a = ? WHERE b = ? AND c = ?", "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"},
		{"ten and more", "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := postgresDialect.rebind(tc.in); got != tc.want {
				t.Errorf("postgres rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := sqliteDialect.rebind(tc.in); got != tc.in {
				t.Errorf("sqlite rebind(%q) = %q, want it unchanged", tc.in, got)
			}
		})
	}
	const cast = "SELECT ?::text, ?::timestamptz, ? WHERE a = ?::bigint"
	if got, want := postgresDialect.rebind(cast), "SELECT $1::text, $2::timestamptz, $3 WHERE a = $4::bigint"; got != want {
		t.Errorf("postgres rebind(%q) = %q, want %q", cast, got, want)
	}
	if got, want := sqliteDialect.rebind(cast), "SELECT ?, ?, ? WHERE a = ?"; got != want {
		t.Errorf("sqlite rebind(%q) = %q, want %q", cast, got, want)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.MaxOpenConns <= 0 || o.ConnMaxLifetime <= 0 || o.StatementTimeout <= 0 || o.SQLiteReaders <= 0 {
		t.Errorf("zero Options left a zero field: %+v", o)
	}
	set := Options{MaxOpenConns: 3, ConnMaxLifetime: 5, StatementTimeout: -1, SQLiteReaders: 2}
	if got := set.withDefaults(); got != set {
		t.Errorf("withDefaults changed set fields: got %+v, want %+v", got, set)
	}
}
