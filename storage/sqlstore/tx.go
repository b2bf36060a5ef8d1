package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

type txKey struct{}

func txFrom(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{}).(*sql.Tx)
	return tx
}

// BeginTx starts a transaction and returns a context carrying it. Nested
// transactions are refused: on SQLite the outer one holds the only writer
// connection, so waiting for another would never end. On error ctx is
// returned unchanged.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if txFrom(ctx) != nil {
		return ctx, errors.New("begin transaction: a transaction is already open in this context")
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return ctx, fmt.Errorf("begin transaction: %w", err)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction in ctx.
func (s *Store) Commit(ctx context.Context) error {
	tx := txFrom(ctx)
	if tx == nil {
		return errors.New("commit: no transaction in context")
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Rollback rolls back the transaction in ctx. After a Commit, successful or
// not, it does nothing and returns nil, so callers may defer it.
func (s *Store) Rollback(ctx context.Context) error {
	tx := txFrom(ctx)
	if tx == nil {
		return errors.New("rollback: no transaction in context")
	}
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

// txAttempts bounds how often InTx runs a transaction that PostgreSQL
// aborted for a serialization failure or a deadlock.
const txAttempts = 5

// InTx runs fn in a transaction and commits when fn returns nil. Inside a
// transaction already open in ctx, fn simply runs in it. On PostgreSQL a
// transaction aborted by a serialization failure or a deadlock is run
// again, so fn must not have effects outside the database.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if txFrom(ctx) != nil {
		return fn(ctx)
	}
	for attempt := 1; ; attempt++ {
		err := s.runTx(ctx, fn)
		if err == nil || attempt == txAttempts || !s.d.isRetryable(err) {
			return err
		}
		// Exponential backoff with full jitter spreads the retries of
		// transactions that collided.
		backoff := time.Duration(rand.Int64N(int64(time.Millisecond << attempt)))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

func (s *Store) runTx(ctx context.Context, fn func(ctx context.Context) error) error {
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		return err
	}
	// After a commit this does nothing; otherwise, including when fn
	// panics, it releases the connection.
	defer s.Rollback(txCtx)
	if err := fn(txCtx); err != nil {
		return err
	}
	return s.Commit(txCtx)
}
