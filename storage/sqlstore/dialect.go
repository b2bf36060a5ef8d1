package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"gatehouse/storage"
)

// dialect is what differs between SQLite and PostgreSQL once connected. The
// rest of the package writes its SQL once, with ? placeholders, and leaves
// every difference to this file.
type dialect struct {
	name string
	// migrations is the folder of the embedded migrations.
	migrations string
	// migrationsTable creates schema_migrations if it is missing.
	migrationsTable string
	// beginMigration runs first in every migration transaction, so that
	// instances starting together apply each migration once.
	beginMigration []string
	// numbered placeholders: ? becomes $1, $2, ...
	numbered bool
	// isRetryable reports a failure that the same transaction may
	// succeed on if run again.
	isRetryable func(error) bool
	isUnique    func(error) bool
	// encodeTime turns a time into the value bound for a timestamp column.
	encodeTime func(time.Time) any
	// lockKey, run in a transaction with a text argument, holds a lock on
	// that text until the transaction ends; empty when the transaction
	// itself already excludes every other writer.
	lockKey string
}

// rebind rewrites the portable ? placeholders for the dialect. No query of
// this package has a ? inside a literal. SQLite has no FOR UPDATE, nor needs
// one: its single writer runs one transaction at a time. A placeholder may
// carry a PostgreSQL cast (?::text) where PostgreSQL cannot infer its type,
// as in the select list of an INSERT ... SELECT; SQLite, whose values carry
// their own types, goes without.
func (d *dialect) rebind(query string) string {
	if !d.numbered {
		return dropCasts(strings.TrimSuffix(query, " FOR UPDATE"))
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// dropCasts removes the casts of placeholders: ?::text becomes ?.
func dropCasts(query string) string {
	if !strings.Contains(query, "?::") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query))
	for i := 0; i < len(query); i++ {
		b.WriteByte(query[i])
		if query[i] != '?' || !strings.HasPrefix(query[i+1:], "::") {
			continue
		}
		i += 2
		for i+1 < len(query) && 'a' <= query[i+1] && query[i+1] <= 'z' {
			i++
		}
	}
	return b.String()
}

// translate maps driver errors to the storage sentinels, keeping the driver
// error in the chain for the log.
func (d *dialect) translate(err error) error {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storage.ErrNotFound
	case d.isUnique(err):
		return fmt.Errorf("%w: %w", storage.ErrConflict, err)
	}
	return err
}

var sqliteDialect = &dialect{
	name:       "sqlite",
	migrations: "migrations/sqlite",
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`,
	// BEGIN IMMEDIATE already serializes migrations, across processes too.
	beginMigration: nil,
	// The single writer with BEGIN IMMEDIATE never meets a conflict that a
	// retry would resolve; a locked database has already waited out the
	// busy timeout.
	isRetryable: func(error) bool { return false },
	isUnique: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	// A timestamp is an INTEGER of microseconds since the Unix epoch.
	// Integers compare in time order, so expires_at < ? is right and uses
	// the index, which text of variable width would not be ("…:05Z" sorts
	// after "…:05.1Z"). They also cost nothing to read, where the driver
	// parses TIMESTAMP text on every row: a fifth of the time of a token
	// lookup. In the sqlite3 shell, datetime(expires_at / 1000000,
	// 'unixepoch') shows one as a date.
	encodeTime: func(t time.Time) any {
		return t.UnixMicro()
	},
}

// migrationLockKey is the PostgreSQL advisory lock taken while migrating. It
// spells "gatehous" in ASCII, to stay clear of other applications' keys.
const migrationLockKey = 7449363237540164979

// throttleLockClass is the first half of the two-int advisory locks on
// sign-in throttle keys ("gate" in ASCII); PostgreSQL keeps those apart
// from the one-bigint locks such as migrationLockKey.
const throttleLockClass = 0x67617465

var postgresDialect = &dialect{
	name:       "postgres",
	migrations: "migrations/postgres",
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL
	)`,
	beginMigration: []string{
		// Neither a long migration nor the wait of the instances queued
		// behind it should hit the statement timeout meant for requests.
		"SET LOCAL statement_timeout = 0",
		// A transaction-scoped lock is released by COMMIT or ROLLBACK, so
		// a crashed instance cannot leave it held.
		"SELECT pg_advisory_xact_lock(" + strconv.FormatInt(migrationLockKey, 10) + ")",
	},
	numbered: true,
	isRetryable: func(err error) bool {
		var e *pgconn.PgError
		if !errors.As(err, &e) {
			return false
		}
		// serialization_failure, deadlock_detected
		return e.Code == "40001" || e.Code == "40P01"
	},
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505" // unique_violation
	},
	// A hashtext collision only makes two keys wait for each other.
	lockKey: "SELECT pg_advisory_xact_lock(" + strconv.Itoa(throttleLockClass) + ", hashtext($1))",
	// PostgreSQL keeps microseconds but rounds to them; truncating in Go
	// gives both dialects the same instant for the same input.
	encodeTime: func(t time.Time) any {
		return t.UTC().Truncate(time.Microsecond)
	},
}

// timeDest scans a timestamp of either dialect as UTC: an integer of
// microseconds from SQLite, a time.Time from PostgreSQL.
type timeDest struct{ t *time.Time }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*d.t = time.UnixMicro(v).UTC()
	case time.Time:
		*d.t = v.UTC()
	default:
		return fmt.Errorf("scan timestamp: got %T", src)
	}
	return nil
}

// nullTimeDest scans a nullable timestamp like timeDest.
type nullTimeDest struct{ t **time.Time }

func (d nullTimeDest) Scan(src any) error {
	if src == nil {
		*d.t = nil
		return nil
	}
	var t time.Time
	if err := (timeDest{&t}).Scan(src); err != nil {
		return err
	}
	*d.t = &t
	return nil
}

// handles are the pools a Store runs on. For PostgreSQL read and write are
// the same pool.
type handles struct {
	d     *dialect
	write *sql.DB
	read  *sql.DB
}

func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func connect(ctx context.Context, dsn string, opts Options) (handles, error) {
	if isPostgresDSN(dsn) {
		return connectPostgres(ctx, dsn, opts)
	}
	return connectSQLite(ctx, dsn, opts)
}

// sqliteURIEscaper escapes the characters that end or alter the path part
// of an SQLite file: URI.
var sqliteURIEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func connectSQLite(ctx context.Context, path string, opts Options) (handles, error) {
	if path == "" {
		return handles{}, errors.New("sqlite: empty database path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return handles{}, fmt.Errorf("sqlite: create database folder: %w", err)
	}
	uri := "file:" + sqliteURIEscaper.Replace(path)

	// One writer connection: SQLite allows one writer at a time anyway,
	// and queueing in database/sql is cheaper than spinning on the busy
	// handler. _txlock=immediate takes the write lock at BEGIN, so a
	// transaction that reads and then writes never fails to upgrade.
	// synchronous=NORMAL is durable across application crashes in WAL
	// mode; only a power loss can drop the last commits.
	write, err := sql.Open("sqlite", uri+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)"+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return handles{}, fmt.Errorf("sqlite: open writer: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	// The first connection switches the file to WAL, which readers rely on
	// to run beside the writer.
	if err := pingSQLite(ctx, write); err != nil {
		write.Close()
		return handles{}, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", uri+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return handles{}, fmt.Errorf("sqlite: open readers: %w", err)
	}
	read.SetMaxOpenConns(opts.SQLiteReaders)
	read.SetMaxIdleConns(opts.SQLiteReaders)
	return handles{d: sqliteDialect, write: write, read: read}, nil
}

// pingSQLite opens the first connection. While another process or Store
// is creating the file or switching it to WAL, SQLite can answer
// SQLITE_BUSY at once instead of waiting out the busy timeout (it does not
// wait where waiting could deadlock, about 1 in 100 of eight Stores
// opening a new file together); the switch takes milliseconds, so the
// ping is tried again for up to the busy timeout.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	const pause, timeout = 20 * time.Millisecond, 5 * time.Second
	deadline := time.Now().Add(timeout)
	for {
		err := db.PingContext(ctx)
		var e *sqlite.Error
		if err == nil || !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

func connectPostgres(ctx context.Context, dsn string, opts Options) (handles, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return handles{}, fmt.Errorf("postgres: parse DSN: %w", err)
	}
	// A statement_timeout in the DSN is the operator's explicit choice.
	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(max(opts.StatementTimeout, 0).Milliseconds(), 10)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxOpenConns)
	// Idle connections are kept up to the cap: at the request rates this
	// server aims for, closing and reopening them costs more than holding
	// them.
	db.SetMaxIdleConns(opts.MaxOpenConns)
	db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return handles{}, fmt.Errorf("postgres: connect to %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return handles{d: postgresDialect, write: db, read: db}, nil
}

// defaultSQLiteReaders sizes the read pool to the CPUs that can run queries
// at once, with a floor so a small machine still overlaps I/O.
func defaultSQLiteReaders() int {
	return max(4, runtime.GOMAXPROCS(0))
}
