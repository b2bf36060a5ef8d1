package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse/storage"
)

var _ storage.Store = (*Store)(nil)

// Options tunes the connection pools. The zero value is ready to use: each
// zero field takes the default given beside it.
type Options struct {
	// MaxOpenConns caps the PostgreSQL pool, which keeps that many
	// connections open when idle too. Default DefaultMaxOpenConns.
	MaxOpenConns int
	// ConnMaxLifetime recycles PostgreSQL connections, so that they spread
	// again over replicas or poolers after a failover. Default 30 minutes.
	ConnMaxLifetime time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout: the server cancels
	// a statement that runs longer. Default 10 seconds; negative disables
	// it. A statement_timeout parameter in the DSN takes precedence.
	StatementTimeout time.Duration
	// SQLiteReaders is the number of read-only SQLite connections that
	// serve reads made outside a transaction. Default GOMAXPROCS, at
	// least 4.
	SQLiteReaders int
}

// DefaultMaxOpenConns is the PostgreSQL pool size when Options leaves it
// zero.
const DefaultMaxOpenConns = 20

func (o Options) withDefaults() Options {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = DefaultMaxOpenConns
	}
	if o.ConnMaxLifetime <= 0 {
		o.ConnMaxLifetime = 30 * time.Minute
	}
	if o.StatementTimeout == 0 {
		o.StatementTimeout = 10 * time.Second
	}
	if o.SQLiteReaders <= 0 {
		o.SQLiteReaders = defaultSQLiteReaders()
	}
	return o
}

// Store is a storage.Store on SQLite or PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	d     *dialect
	write *sql.DB
	read  *sql.DB
	// stmts[q] runs q outside a transaction: on a reader for SQLite
	// SELECTs, on the writer otherwise. txStmts[q] is q prepared on the
	// writer, which transactions rebind to their connection.
	stmts   []*sql.Stmt
	txStmts []*sql.Stmt
	clients clientCache
	// group batches token inserts outside transactions; nil on
	// PostgreSQL, whose pool writes in parallel.
	group *groupCommit
	// usedOnce batches UseOnce the same way.
	usedOnce *groupCommit
}

// Open connects to dsn, an SQLite file path or a postgres:// (or
// postgresql://) URL, applies the pending migrations and prepares every
// statement. An SQLite file and its folder are created when missing.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	h, err := connect(ctx, dsn, opts.withDefaults())
	if err != nil {
		return nil, err
	}
	s := &Store{d: h.d, write: h.write, read: h.read}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.d == sqliteDialect {
		s.group = &groupCommit{write: s.write, stmt: s.txStmts[qCreateToken], counted: s.txStmts[qCreateTokenCounted]}
		s.usedOnce = &groupCommit{write: s.write, stmt: s.txStmts[qInsertUsedOnce]}
	}
	return s, nil
}

// query is the index of one statement of the package in queries.
type query int

// queries holds every statement of the package in portable SQL, so that
// Open can prepare them all before any transaction holds the one SQLite
// writer connection: preparing on demand inside a transaction would wait for
// that connection forever.
var queries []string

func newQuery(text string) query {
	queries = append(queries, text)
	return query(len(queries) - 1)
}

func isRead(text string) bool {
	return strings.HasPrefix(text, "SELECT")
}

func (s *Store) prepare(ctx context.Context) error {
	s.stmts = make([]*sql.Stmt, len(queries))
	s.txStmts = make([]*sql.Stmt, len(queries))
	for i, text := range queries {
		text = s.d.rebind(text)
		w, err := s.write.PrepareContext(ctx, text)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", text, err)
		}
		s.txStmts[i], s.stmts[i] = w, w
		if s.read != s.write && isRead(text) {
			r, err := s.read.PrepareContext(ctx, text)
			if err != nil {
				return fmt.Errorf("prepare %q: %w", text, err)
			}
			s.stmts[i] = r
		}
	}
	return nil
}

// stmt returns q bound to the transaction in ctx, or to the pool when there
// is none. Every method goes through it: with a single SQLite writer, a
// method that ignored the transaction would wait for it forever.
func (s *Store) stmt(ctx context.Context, q query) *sql.Stmt {
	if tx := txFrom(ctx); tx != nil {
		return tx.StmtContext(ctx, s.txStmts[q])
	}
	return s.stmts[q]
}

// quickRead is the context for a read that an index bounds to a page of
// rows, which is over in microseconds: database/sql and the SQLite driver
// each start a goroutine per statement to watch a context that can be
// cancelled, costing more than the read itself would ever save by
// stopping early.
func quickRead(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// quickWrite is quickRead for a statement inside an SQLite transaction,
// which holds the only writer: the statement waits for nothing and is
// over in microseconds or, deleting a backlog, milliseconds, while the
// transaction as a whole still ends with the request's context. Elsewhere
// ctx is kept: outside a transaction the statement waits for the writer,
// and on PostgreSQL it may wait for a row lock.
func (s *Store) quickWrite(ctx context.Context) context.Context {
	if s.d == sqliteDialect && txFrom(ctx) != nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (s *Store) exec(ctx context.Context, q query, args ...any) (sql.Result, error) {
	return s.stmt(ctx, q).ExecContext(s.quickWrite(ctx), args...)
}

// execOne runs q and returns storage.ErrNotFound when it changed no row.
func (s *Store) execOne(ctx context.Context, q query, args ...any) error {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return s.d.translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// time encodes t for a timestamp column.
func (s *Store) time(t time.Time) any {
	return s.d.encodeTime(t)
}

// Ping reports whether the database answers on both pools.
// PoolStats reports the connection pools for monitoring: "write" and
// "read" on SQLite, a single "primary" on PostgreSQL.
func (s *Store) PoolStats() map[string]sql.DBStats {
	if s.read == s.write {
		return map[string]sql.DBStats{"primary": s.write.Stats()}
	}
	return map[string]sql.DBStats{"write": s.write.Stats(), "read": s.read.Stats()}
}

func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Close closes the pools.
func (s *Store) Close() error {
	var errs []error
	for i, w := range s.txStmts {
		if w == nil {
			continue
		}
		errs = append(errs, w.Close())
		if r := s.stmts[i]; r != w {
			errs = append(errs, r.Close())
		}
	}
	if s.read != s.write {
		errs = append(errs, s.read.Close())
	}
	errs = append(errs, s.write.Close())
	return errors.Join(errs...)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// Lists (scopes, redirect URIs, grant types) are stored as JSON arrays in
// text columns, which both dialects read and index alike.
func encodeList(v []string) string {
	if v == nil {
		return "[]"
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

// listDest scans a JSON array column.
type listDest struct{ v *[]string }

func (d listDest) Scan(src any) error {
	var b []byte
	switch src := src.(type) {
	case string:
		b = []byte(src)
	case []byte:
		b = src
	default:
		return fmt.Errorf("scan list: got %T", src)
	}
	*d.v = nil
	return json.Unmarshal(b, d.v)
}

// nullString maps "" to NULL for optional references.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
