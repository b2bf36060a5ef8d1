package sqlstore

import (
	"context"
	"fmt"

	"gatehouse/storage"
)

var (
	// A repeated consent keeps created_at, the date of the first one.
	qPutGrant = newQuery(`INSERT INTO grants (user_id, client_id, scopes, redirect_uris, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, redirect_uris = excluded.redirect_uris, updated_at = excluded.updated_at`)
	qGetGrant   = newQuery(`SELECT user_id, client_id, scopes, redirect_uris, created_at, updated_at FROM grants WHERE user_id = ? AND client_id = ?`)
	qListGrants = newQuery(`SELECT user_id, client_id, scopes, redirect_uris, created_at, updated_at FROM grants WHERE user_id = ? ORDER BY updated_at DESC, client_id`)
	// SQLite drops FOR UPDATE (see dialect.rebind): its one writer
	// serializes transactions already.
	qLockGrant    = newQuery(`SELECT 1 FROM grants WHERE user_id = ? AND client_id = ? FOR UPDATE`)
	qDeleteGrant  = newQuery(`DELETE FROM grants WHERE user_id = ? AND client_id = ?`)
	qDeleteTokens = newQuery(`DELETE FROM tokens WHERE client_id = ? AND subject = ?`)
)

// PutGrant records g, replacing the scopes, redirect URIs and updated_at of an earlier
// grant by the same user to the same client.
func (s *Store) PutGrant(ctx context.Context, g storage.Grant) error {
	_, err := s.exec(ctx, qPutGrant, g.UserID, g.ClientID, encodeList(g.Scopes), encodeList(g.RedirectURIs), s.time(g.CreatedAt), s.time(g.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put grant of %q to %q: %w", g.UserID, g.ClientID, s.d.translate(err))
	}
	return nil
}

func (s *Store) GetGrant(ctx context.Context, userID, clientID string) (storage.Grant, error) {
	g, err := scanGrant(s.stmt(ctx, qGetGrant).QueryRowContext(ctx, userID, clientID))
	if err != nil {
		return storage.Grant{}, fmt.Errorf("get grant of %q to %q: %w", userID, clientID, s.d.translate(err))
	}
	return g, nil
}

// LockGrant holds the grant of userID to clientID until the transaction in
// ctx ends, or returns storage.ErrNotFound when there is none. A token
// issued in that transaction is then either seen by RevokeGrant, which
// waits for the lock, or not issued at all: under READ COMMITTED the
// revoke's DELETE of tokens would otherwise miss rows inserted while it
// ran.
func (s *Store) LockGrant(ctx context.Context, userID, clientID string) error {
	var one int
	if err := s.stmt(ctx, qLockGrant).QueryRowContext(s.quickWrite(ctx), userID, clientID).Scan(&one); err != nil {
		return fmt.Errorf("lock grant of %q to %q: %w", userID, clientID, s.d.translate(err))
	}
	return nil
}

// ListGrants returns userID's grants, the most recently given first.
func (s *Store) ListGrants(ctx context.Context, userID string) ([]storage.Grant, error) {
	rows, err := s.stmt(ctx, qListGrants).QueryContext(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list grants of %q: %w", userID, err)
	}
	defer rows.Close()
	gs := []storage.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("list grants of %q: %w", userID, err)
		}
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list grants of %q: %w", userID, err)
	}
	return gs, nil
}

// RevokeGrant forgets the grant and deletes every token clientID holds for
// userID, in one transaction. storage.ErrNotFound when there was neither.
// The grant goes first: deleting it waits for every issuing transaction
// holding it (LockGrant), so the tokens they wrote are committed and seen
// by the second DELETE.
func (s *Store) RevokeGrant(ctx context.Context, userID, clientID string) error {
	err := s.InTx(ctx, func(ctx context.Context) error {
		grants, err := s.exec(ctx, qDeleteGrant, userID, clientID)
		if err != nil {
			return err
		}
		tokens, err := s.exec(ctx, qDeleteTokens, clientID, userID)
		if err != nil {
			return err
		}
		g, err := grants.RowsAffected()
		if err != nil {
			return err
		}
		t, err := tokens.RowsAffected()
		if err != nil {
			return err
		}
		if g+t == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke grant of %q to %q: %w", userID, clientID, err)
	}
	return nil
}

func scanGrant(row scanner) (storage.Grant, error) {
	var g storage.Grant
	err := row.Scan(&g.UserID, &g.ClientID, listDest{&g.Scopes}, listDest{&g.RedirectURIs}, timeDest{&g.CreatedAt}, timeDest{&g.UpdatedAt})
	if len(g.RedirectURIs) == 0 {
		// A grant recorded without redirect URIs reads back as it was put.
		g.RedirectURIs = nil
	}
	return g, err
}
