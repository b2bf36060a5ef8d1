package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gatehouse/storage"
)

var (
	qGetUserByVerifiedEmail = newQuery(`SELECT ` + userColumns + ` FROM users WHERE lower(email) = ? AND email_verified`)
	qSetUserEmail           = newQuery(`UPDATE users SET email = ?, email_verified = ? WHERE id = ?`)
	qVerifyUserEmail        = newQuery(`UPDATE users SET email_verified = ? WHERE id = ? AND lower(email) = ? AND email <> ''`)
	qSetUserPassword        = newQuery(`UPDATE users SET password_hash = ? WHERE id = ?`)
	qReplacePasswordHash    = newQuery(`UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`)
	qCreateEmailToken       = newQuery(`INSERT INTO email_tokens (token_hash, purpose, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`)
	qGetEmailToken          = newQuery(`SELECT token_hash, purpose, user_id, email, created_at, expires_at, used_at FROM email_tokens WHERE token_hash = ?`)
	qUseEmailToken          = newQuery(`UPDATE email_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`)
	qDeleteExpiredEmail     = newQuery(`DELETE FROM email_tokens WHERE token_hash IN
		(SELECT token_hash FROM email_tokens WHERE expires_at < ? LIMIT ?)`)
)

// GetUserByVerifiedEmail finds the one user who verified email.
func (s *Store) GetUserByVerifiedEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := scanUser(s.stmt(ctx, qGetUserByVerifiedEmail).QueryRowContext(ctx, strings.ToLower(email)))
	if err != nil {
		return storage.User{}, fmt.Errorf("get user by email: %w", s.d.translate(err))
	}
	return u, nil
}

// SetUserEmail replaces the address; the unique index on verified
// addresses turns a taken one into storage.ErrConflict.
func (s *Store) SetUserEmail(ctx context.Context, userID, email string, verified bool) error {
	if err := s.execOne(ctx, qSetUserEmail, email, verified, userID); err != nil {
		return fmt.Errorf("set email of %q: %w", userID, err)
	}
	return nil
}

// VerifyUserEmail marks the address verified only while it is still the
// one the link was sent to.
func (s *Store) VerifyUserEmail(ctx context.Context, userID, email string) error {
	if err := s.execOne(ctx, qVerifyUserEmail, true, userID, strings.ToLower(email)); err != nil {
		return fmt.Errorf("verify email of %q: %w", userID, err)
	}
	return nil
}

func (s *Store) SetUserPassword(ctx context.Context, userID, hash string) error {
	if err := s.execOne(ctx, qSetUserPassword, hash, userID); err != nil {
		return fmt.Errorf("set password of %q: %w", userID, err)
	}
	return nil
}

// ReplacePasswordHash sets a new hash of the same password, unless the
// password changed since old was read.
func (s *Store) ReplacePasswordHash(ctx context.Context, userID, old, hash string) error {
	if err := s.execOne(ctx, qReplacePasswordHash, hash, userID, old); err != nil {
		return fmt.Errorf("replace password hash of %q: %w", userID, err)
	}
	return nil
}

func (s *Store) CreateEmailToken(ctx context.Context, t storage.EmailToken) error {
	_, err := s.exec(ctx, qCreateEmailToken, t.Hash, string(t.Purpose), t.UserID, t.Email, s.time(t.CreatedAt), s.time(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create %s email token: %w", t.Purpose, s.d.translate(err))
	}
	return nil
}

func (s *Store) GetEmailToken(ctx context.Context, hash string) (storage.EmailToken, error) {
	var t storage.EmailToken
	err := s.stmt(ctx, qGetEmailToken).QueryRowContext(ctx, hash).Scan(
		&t.Hash, &t.Purpose, &t.UserID, &t.Email, timeDest{&t.CreatedAt}, timeDest{&t.ExpiresAt}, nullTimeDest{&t.UsedAt})
	if err != nil {
		return storage.EmailToken{}, fmt.Errorf("get email token: %w", s.d.translate(err))
	}
	return t, nil
}

// UseEmailToken marks the token used; the used_at IS NULL condition makes
// one of two racing callers the winner.
func (s *Store) UseEmailToken(ctx context.Context, hash string, at time.Time) error {
	err := s.execOne(ctx, qUseEmailToken, s.time(at), hash)
	if err == nil {
		return nil
	}
	if _, gerr := s.GetEmailToken(ctx, hash); gerr == nil {
		return fmt.Errorf("use email token: %w", storage.ErrInactive)
	}
	return fmt.Errorf("use email token: %w", err)
}
