package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"gatehouse/storage"
)

var (
	qRecordLoginFailure = newQuery(`INSERT INTO login_failures (throttle_key, failed_at) VALUES (?, ?)`)
	qCountLoginFailures = newQuery(`SELECT COUNT(*), MIN(failed_at) FROM login_failures WHERE throttle_key = ? AND failed_at > ?`)
	qClearLoginFailures = newQuery(`DELETE FROM login_failures WHERE throttle_key = ?`)
	qReserveLogin       = newQuery(`INSERT INTO login_failures (throttle_key, failed_at) VALUES (?, ?) RETURNING id`)
	qReleaseLogin       = newQuery(`DELETE FROM login_failures WHERE id = ?`)
	// Batched like qDeleteExpired, through the id, since PostgreSQL's
	// DELETE has no LIMIT.
	qDeleteOldLoginFailures = newQuery(`DELETE FROM login_failures WHERE id IN
		(SELECT id FROM login_failures WHERE failed_at < ? LIMIT ?)`)
)

// RecordLoginFailure adds one failure of key. Failures are rows of their
// own rather than a counter, so instances recording at once never contend
// for a row.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, at time.Time) error {
	if _, err := s.exec(ctx, qRecordLoginFailure, key, s.time(at)); err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// CountLoginFailures returns the number of failures of key after since and
// the time of the oldest of them.
func (s *Store) CountLoginFailures(ctx context.Context, key string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest *time.Time
	err := s.stmt(ctx, qCountLoginFailures).QueryRowContext(ctx, key, s.time(since)).Scan(&n, nullTimeDest{&oldest})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count login failures: %w", err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, *oldest, nil
}

// ClearLoginFailures deletes every failure of key.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	if _, err := s.exec(ctx, qClearLoginFailures, key); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}

// ReserveLoginAttempt counts and records in one transaction. Counting
// alone would not serialize anything under PostgreSQL's READ COMMITTED:
// two transactions would each miss the other's uncommitted row. So each key
// is locked first (an advisory lock held until commit; in SQLite the
// transaction holds the only writer already), and the count of a second
// attempt starts after the first one committed its row.
func (s *Store) ReserveLoginAttempt(ctx context.Context, at time.Time, limits []storage.LoginLimit) (storage.LoginAttempt, error) {
	var a storage.LoginAttempt
	err := s.InTx(ctx, func(ctx context.Context) error {
		a = storage.LoginAttempt{Oldest: make([]time.Time, len(limits))}
		if s.d.lockKey != "" {
			keys := make([]string, len(limits))
			for i, l := range limits {
				keys[i] = l.Key
			}
			// One order for every transaction, so two never wait for
			// each other's second key.
			slices.Sort(keys)
			for _, k := range slices.Compact(keys) {
				if _, err := txFrom(ctx).ExecContext(ctx, s.d.lockKey, k); err != nil {
					return err
				}
			}
		}
		full := false
		for i, l := range limits {
			n, oldest, err := s.CountLoginFailures(ctx, l.Key, l.Since)
			if err != nil {
				return err
			}
			if n >= l.Max {
				a.Oldest[i], full = oldest, true
			}
		}
		if full {
			return nil
		}
		for _, l := range limits {
			var id int64
			if err := s.stmt(ctx, qReserveLogin).QueryRowContext(ctx, l.Key, s.time(at)).Scan(&id); err != nil {
				return err
			}
			a.IDs = append(a.IDs, id)
		}
		return nil
	})
	if err != nil {
		return storage.LoginAttempt{}, fmt.Errorf("reserve login attempt: %w", err)
	}
	return a, nil
}

func (s *Store) ReleaseLoginAttempt(ctx context.Context, ids []int64) error {
	for _, id := range ids {
		if _, err := s.exec(ctx, qReleaseLogin, id); err != nil {
			return fmt.Errorf("release login attempt: %w", err)
		}
	}
	return nil
}
