package sqlstore

import (
	"context"
	"fmt"
	"time"
)

var (
	// One statement, so that concurrent requests of one key queue on its
	// row and each gets its own number, on either database. A window that
	// ended starts again at 1.
	qCountRequest = newQuery(`INSERT INTO request_counts (throttle_key, window_start, requests) VALUES (?, ?, 1)
		ON CONFLICT (throttle_key) DO UPDATE SET
			requests = CASE WHEN request_counts.window_start <= ? THEN 1 ELSE request_counts.requests + 1 END,
			window_start = CASE WHEN request_counts.window_start <= ? THEN excluded.window_start ELSE request_counts.window_start END
		RETURNING requests, window_start`)
	qDeleteOldRequestCounts = newQuery(`DELETE FROM request_counts WHERE throttle_key IN
		(SELECT throttle_key FROM request_counts WHERE window_start < ? LIMIT ?)`)
)

// CountRequest counts one more request of key in the window of length
// window that holds now, starting a new window when the last one ended.
// It returns the request's number in its window and when the window began.
func (s *Store) CountRequest(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	ended := s.time(now.Add(-window))
	var n int
	var start time.Time
	err := s.stmt(ctx, qCountRequest).QueryRowContext(ctx, key, s.time(now), ended, ended).Scan(&n, timeDest{&start})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count request: %w", err)
	}
	return n, start, nil
}
