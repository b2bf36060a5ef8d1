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
	qUseOnce = newQuery(`INSERT INTO used_once (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`)
	// qInsertUsedOnce is the batched insert on SQLite (group.go): there a
	// unique violation undoes only its own statement, and it is how a
	// used key tells in a batch, which reports errors alone.
	qInsertUsedOnce = newQuery(`INSERT INTO used_once (key, expires_at) VALUES (?, ?)`)
	// On SQLite there is no index on expires_at (migration 0020): the
	// subquery scans in key order, and as keys are hashes the expired rows
	// are spread evenly, so a batch scans about its size over the share
	// that expired, and the last one the table once.
	qDeleteExpiredUsedOnce = newQuery(`DELETE FROM used_once WHERE key IN
		(SELECT key FROM used_once WHERE expires_at < ? LIMIT ?)`)
)

// UseOnce records key; a key recorded before is storage.ErrConflict. On
// SQLite, outside a transaction, it joins the inserts waiting for the
// writer in one transaction: like a token, a key is committed before the
// caller hears of it, and the unique key decides between racers, in this
// process or any other sharing the file.
func (s *Store) UseOnce(ctx context.Context, key string, expires time.Time) error {
	if s.usedOnce != nil && txFrom(ctx) == nil {
		if err := s.usedOnce.insert([]any{key, s.time(expires)}, false); err != nil {
			return fmt.Errorf("use once: %w", s.d.translate(err))
		}
		return nil
	}
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
