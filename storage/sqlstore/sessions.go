package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gatehouse/storage"
)

var (
	qCreateSession = newQuery(`INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, user_agent, address, amr)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	// The join is on the users primary key, so a session costs one
	// indexed read, and a deleted user's sessions find no one.
	qGetSession = newQuery(`SELECT s.id_hash, s.user_id, u.username, s.created_at, s.last_seen_at, s.expires_at, s.user_agent, s.address, s.amr
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?`)
	qTouchSession  = newQuery(`UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`)
	qDeleteSession = newQuery(`DELETE FROM sessions WHERE user_id = ? AND id_hash = ?`)
	qListSessions  = newQuery(`SELECT s.id_hash, s.user_id, u.username, s.created_at, s.last_seen_at, s.expires_at, s.user_agent, s.address, s.amr
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.user_id = ? ORDER BY s.created_at DESC, s.id_hash`)
	qDeleteUserSessions = newQuery(`DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?`)
	// Batched like qDeleteExpired.
	qDeleteExpiredSessions = newQuery(`DELETE FROM sessions WHERE id_hash IN
		(SELECT id_hash FROM sessions WHERE expires_at < ? LIMIT ?)`)
)

func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	_, err := s.exec(ctx, qCreateSession, sess.IDHash, sess.UserID, s.time(sess.CreatedAt), s.time(sess.LastSeenAt),
		s.time(sess.ExpiresAt), sess.UserAgent, sess.Address, strings.Join(sess.AMR, " "))
	if err != nil {
		return fmt.Errorf("create session: %w", s.d.translate(err))
	}
	return nil
}

// GetSession returns the session with its user's name.
func (s *Store) GetSession(ctx context.Context, idHash string) (storage.Session, error) {
	sess, err := scanSession(s.stmt(ctx, qGetSession).QueryRowContext(ctx, idHash))
	if err != nil {
		return storage.Session{}, fmt.Errorf("get session: %w", s.d.translate(err))
	}
	return sess, nil
}

func (s *Store) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	if err := s.execOne(ctx, qTouchSession, s.time(at), idHash); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

func (s *Store) DeleteSession(ctx context.Context, userID, idHash string) error {
	if err := s.execOne(ctx, qDeleteSession, userID, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

func (s *Store) ListSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	rows, err := s.stmt(ctx, qListSessions).QueryContext(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []storage.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

func (s *Store) DeleteUserSessions(ctx context.Context, userID, exceptIDHash string) (int64, error) {
	res, err := s.exec(ctx, qDeleteUserSessions, userID, exceptIDHash)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of %q: %w", userID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete sessions of %q: %w", userID, err)
	}
	return n, nil
}

func scanSession(row scanner) (storage.Session, error) {
	var sess storage.Session
	var amr string
	err := row.Scan(&sess.IDHash, &sess.UserID, &sess.Username, timeDest{&sess.CreatedAt}, timeDest{&sess.LastSeenAt},
		timeDest{&sess.ExpiresAt}, &sess.UserAgent, &sess.Address, &amr)
	sess.AMR = strings.Fields(amr)
	return sess, err
}
