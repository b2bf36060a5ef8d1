package sqlstore

import (
	"context"
	"fmt"
	"time"
)

var (
	qRecordLoginFailure = newQuery(`INSERT INTO login_failures (throttle_key, failed_at) VALUES (?, ?)`)
	qCountLoginFailures = newQuery(`SELECT COUNT(*), MIN(failed_at) FROM login_failures WHERE throttle_key = ? AND failed_at > ?`)
	qClearLoginFailures = newQuery(`DELETE FROM login_failures WHERE throttle_key = ?`)
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
