package sqlstore

import (
	"context"
	"fmt"

	"gatehouse/storage"
)

var (
	qCreateRefreshGrace = newQuery(`INSERT INTO refresh_grace (signature, client_id, request_id, rotated_at, expires_at, sealed) VALUES (?, ?, ?, ?, ?, NULL)`)
	qSealRefreshGrace   = newQuery(`UPDATE refresh_grace SET sealed = ? WHERE signature = ?`)
	qGetRefreshGrace    = newQuery(`SELECT signature, client_id, request_id, rotated_at, expires_at, sealed FROM refresh_grace WHERE signature = ?`)
	// Batched like qDeleteExpired, for DeleteExpired.
	qDeleteExpiredRefreshGrace = newQuery(`DELETE FROM refresh_grace WHERE signature IN
		(SELECT signature FROM refresh_grace WHERE expires_at < ? LIMIT ?)`)
)

// CreateRefreshGrace opens the grace window of a rotated refresh token,
// still without its answer.
func (s *Store) CreateRefreshGrace(ctx context.Context, g storage.RefreshGrace) error {
	_, err := s.exec(ctx, qCreateRefreshGrace, g.Signature, g.ClientID, g.RequestID, s.time(g.RotatedAt), s.time(g.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create refresh grace: %w", s.d.translate(err))
	}
	return nil
}

// SealRefreshGrace stores the answer the rotation got.
func (s *Store) SealRefreshGrace(ctx context.Context, signature string, sealed []byte) error {
	if err := s.execOne(ctx, qSealRefreshGrace, sealed, signature); err != nil {
		return fmt.Errorf("seal refresh grace: %w", err)
	}
	return nil
}

func (s *Store) GetRefreshGrace(ctx context.Context, signature string) (storage.RefreshGrace, error) {
	var g storage.RefreshGrace
	err := s.stmt(ctx, qGetRefreshGrace).QueryRowContext(ctx, signature).Scan(
		&g.Signature, &g.ClientID, &g.RequestID, timeDest{&g.RotatedAt}, timeDest{&g.ExpiresAt}, &g.Sealed)
	if err != nil {
		return storage.RefreshGrace{}, fmt.Errorf("get refresh grace: %w", s.d.translate(err))
	}
	return g, nil
}
