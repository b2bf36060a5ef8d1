package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"gatehouse/storage"
)

// groupCommit batches the token inserts made outside a transaction on
// SQLite's single writer: the callers waiting at one moment share one
// transaction, so one commit, one write of the pages they touch and one
// WAL sync. Each caller is answered only after the commit, so an
// acknowledged token is as durable as one inserted alone. There is no
// background goroutine: a caller that finds no batch running runs one,
// of itself and whoever waits, then hands the lead to the first caller
// that arrived meanwhile, so nobody's request waits for more than its own
// batch and the one before.
type groupCommit struct {
	write *sql.DB
	// stmt is the insert (qCreateToken, qInsertUsedOnce) prepared on the
	// writer; counted, of the token group only, is qCreateTokenCounted.
	stmt    *sql.Stmt
	counted *sql.Stmt

	mu      sync.Mutex
	pending []*groupInsert
	running bool
}

type groupInsert struct {
	args []any
	// counted: args end with a client_changes count, and the row goes in
	// only while client_changes is still at it (see storage.ClientCheck).
	counted bool
	// done receives the insert's outcome, or lead when the caller is to
	// run the next batch.
	done chan groupResult
}

type groupResult struct {
	err  error
	lead bool
}

// maxGroup bounds a batch, so that the writer is never held for long by
// one transaction while others queue for it.
const maxGroup = 128

// insert runs qCreateToken, or qCreateTokenCounted when counted, with args
// in a batch and returns its error once the batch has committed.
func (g *groupCommit) insert(args []any, counted bool) error {
	in := &groupInsert{args: args, counted: counted, done: make(chan groupResult, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, in)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		g.lead()
	}
	for {
		r := <-in.done
		if !r.lead {
			return r.err
		}
		g.lead()
	}
}

// lead runs the waiting inserts, the leader's own among them, as one
// batch and passes the lead on to the first caller still waiting.
func (g *groupCommit) lead() {
	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	batch := make([]*groupInsert, n)
	copy(batch, g.pending)
	g.pending = append(g.pending[:0], g.pending[n:]...)
	g.mu.Unlock()

	g.run(batch)

	g.mu.Lock()
	if len(g.pending) > 0 {
		g.pending[0].done <- groupResult{lead: true}
	} else {
		g.running = false
	}
	g.mu.Unlock()
}

// run inserts batch in one transaction. A failed insert, such as a taken
// signature, fails alone: SQLite undoes only that statement and the
// transaction goes on. The batch serves many requests, so it runs on no
// request's context; the busy timeout bounds its wait for the lock.
func (g *groupCommit) run(batch []*groupInsert) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	err := func() error {
		tx, err := g.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		defer tx.Rollback()
		stmt := tx.StmtContext(ctx, g.stmt)
		var counted *sql.Stmt
		for i, in := range batch {
			if !in.counted {
				_, errs[i] = stmt.ExecContext(ctx, in.args...)
				continue
			}
			if counted == nil {
				counted = tx.StmtContext(ctx, g.counted)
			}
			errs[i] = execCounted(ctx, counted, in.args)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}()
	for i, in := range batch {
		if err != nil {
			errs[i] = err
		}
		in.done <- groupResult{err: errs[i]}
	}
}

// execCounted runs qCreateTokenCounted: no row inserted means that
// client_changes has moved.
func execCounted(ctx context.Context, stmt *sql.Stmt, args []any) error {
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrClientChanged
	}
	return nil
}
