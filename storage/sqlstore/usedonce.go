package sqlstore

import (
	"context"
	"fmt"
	"time"

	"gatehouse/storage"
)

var (
	// DO NOTHING rather than a unique violation: in PostgreSQL a violation
	// would abort a surrounding transaction.
	qUseOnce               = newQuery(`INSERT INTO used_once (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`)
	qDeleteExpiredUsedOnce = newQuery(`DELETE FROM used_once WHERE key IN
		(SELECT key FROM used_once WHERE expires_at < ? LIMIT ?)`)
)

// UseOnce records key; a key recorded before is storage.ErrConflict.
func (s *Store) UseOnce(ctx context.Context, key string, expires time.Time) error {
	res, err := s.exec(ctx, qUseOnce, key, s.time(expires))
	if err != nil {
		return fmt.Errorf("use once: %w", s.d.translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("use once: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("use once: %w", storage.ErrConflict)
	}
	return nil
}
