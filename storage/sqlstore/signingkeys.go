package sqlstore

import (
	"context"
	"fmt"

	"gatehouse/storage"
)

var (
	qListSigningKeys  = newQuery(`SELECT id, algorithm, private_key, sealed, created_at FROM signing_keys ORDER BY created_at DESC, id DESC`)
	qCreateSigningKey = newQuery(`INSERT INTO signing_keys (id, algorithm, private_key, sealed, created_at) VALUES (?, ?, ?, ?, ?)`)
	qUpdateSigningKey = newQuery(`UPDATE signing_keys SET private_key = ?, sealed = ? WHERE id = ?`)
)

// ListSigningKeys returns every key, newest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.stmt(ctx, qListSigningKeys).QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	ks := []storage.SigningKey{}
	for rows.Next() {
		var k storage.SigningKey
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &k.Sealed, timeDest{&k.CreatedAt}); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return ks, nil
}

// CreateSigningKey stores k. A taken ID is storage.ErrConflict.
func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if _, err := s.exec(ctx, qCreateSigningKey, k.ID, k.Algorithm, k.PrivateKey, k.Sealed, s.time(k.CreatedAt)); err != nil {
		return fmt.Errorf("create signing key %q: %w", k.ID, s.d.translate(err))
	}
	return nil
}

// UpdateSigningKey replaces the private key and sealed flag of k.ID.
func (s *Store) UpdateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if err := s.execOne(ctx, qUpdateSigningKey, k.PrivateKey, k.Sealed, k.ID); err != nil {
		return fmt.Errorf("update signing key %q: %w", k.ID, err)
	}
	return nil
}
