package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gatehouse/storage"
)

// userColumns are what scanUser reads, in its order.
const userColumns = `id, username, password_hash, created_at, email, email_verified, disabled_at`

var (
	qCreateUser = newQuery(`INSERT INTO users (id, username, password_hash, created_at, email, email_verified) VALUES (?, ?, ?, ?, ?, ?)`)
	qGetUser    = newQuery(`SELECT ` + userColumns + ` FROM users WHERE id = ?`)
	qGetUserBy  = newQuery(`SELECT ` + userColumns + ` FROM users WHERE username = ?`)
	qCountUsers = newQuery(`SELECT COUNT(*) FROM users`)
)

// CreateUser stores u with its username in lower case, which is what makes
// names unique regardless of case. A taken username is storage.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	username := strings.ToLower(u.Username)
	if _, err := s.exec(ctx, qCreateUser, u.ID, username, u.PasswordHash, s.time(u.CreatedAt), u.Email, u.EmailVerified); err != nil {
		return fmt.Errorf("create user %q: %w", username, s.d.translate(err))
	}
	return nil
}

func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.stmt(ctx, qGetUser).QueryRowContext(ctx, id))
	if err != nil {
		return storage.User{}, fmt.Errorf("get user %q: %w", id, s.d.translate(err))
	}
	return u, nil
}

// GetUserByUsername finds a user whatever the case of username.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	username = strings.ToLower(username)
	u, err := scanUser(s.stmt(ctx, qGetUserBy).QueryRowContext(ctx, username))
	if err != nil {
		return storage.User{}, fmt.Errorf("get user %q: %w", username, s.d.translate(err))
	}
	return u, nil
}

func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.stmt(ctx, qCountUsers).QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

func scanUser(row scanner) (storage.User, error) {
	var u storage.User
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, timeDest{&u.CreatedAt}, &u.Email, &u.EmailVerified, nullTimeDest{&u.DisabledAt})
	return u, err
}

var (
	qListUsers        = newQuery(`SELECT ` + userColumns + ` FROM users ORDER BY created_at, id`)
	qDeleteUserTokens = newQuery(`DELETE FROM tokens WHERE subject = ?`)
	qDeleteUser       = newQuery(`DELETE FROM users WHERE id = ?`)
)

// ListUsers returns every user, oldest first.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.stmt(ctx, qListUsers).QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// DeleteUser deletes the user with every token issued for them; their
// grants, books and the clients they own go with the row.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	err := s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.exec(ctx, qDeleteUserTokens, id); err != nil {
			return err
		}
		return s.execOne(ctx, qDeleteUser, id)
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	return nil
}

var (
	// The first disabling is the one kept: disabling again changes
	// nothing but ends what was started since.
	qDisableUser = newQuery(`UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?`)
	qEnableUser  = newQuery(`UPDATE users SET disabled_at = NULL WHERE id = ?`)
	// SQLite drops FOR UPDATE (see dialect.rebind): its one writer
	// serializes the transaction with every issuing one anyway.
	qLockUserGrants          = newQuery(`SELECT client_id FROM grants WHERE user_id = ? ORDER BY client_id FOR UPDATE`)
	qDeleteAllUserSessions   = newQuery(`DELETE FROM sessions WHERE user_id = ?`)
	qDeleteUserGrace         = newQuery(`DELETE FROM refresh_grace WHERE request_id IN (SELECT request_id FROM tokens WHERE subject = ?)`)
	qDeleteUserApprovedCodes = newQuery(`DELETE FROM device_codes WHERE subject = ? AND status = ?`)
)

// DisableUser marks the user disabled and, in the same transaction, ends
// their sessions and deletes every code and token issued for them, with
// the answers kept for rotated refresh tokens and device codes approved
// but not yet collected. The user's grants are locked first, as token
// issuing does (see LockGrant): a refresh or code exchange under way
// either commits before, and its tokens are deleted here, or runs after
// and finds its token gone.
func (s *Store) DisableUser(ctx context.Context, id string, at time.Time) (sessions, tokens int64, err error) {
	err = s.InTx(ctx, func(ctx context.Context) error {
		rows, err := s.stmt(ctx, qLockUserGrants).QueryContext(ctx, id)
		if err != nil {
			return err
		}
		// Rows are locked as they are read.
		for rows.Next() {
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := s.execOne(ctx, qDisableUser, s.time(at), id); err != nil {
			return err
		}
		if sessions, err = s.affected(ctx, qDeleteAllUserSessions, id); err != nil {
			return err
		}
		if _, err := s.exec(ctx, qDeleteUserGrace, id); err != nil {
			return err
		}
		if _, err := s.exec(ctx, qDeleteUserApprovedCodes, id, string(storage.DeviceApproved)); err != nil {
			return err
		}
		tokens, err = s.affected(ctx, qDeleteUserTokens, id)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("disable user %q: %w", id, err)
	}
	return sessions, tokens, nil
}

// EnableUser lets a disabled user sign in again.
func (s *Store) EnableUser(ctx context.Context, id string) error {
	if err := s.execOne(ctx, qEnableUser, id); err != nil {
		return fmt.Errorf("enable user %q: %w", id, err)
	}
	return nil
}

// affected runs q and returns how many rows it changed.
func (s *Store) affected(ctx context.Context, q query, args ...any) (int64, error) {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
