package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"gatehouse/storage"
)

// userColumns are what scanUser reads, in its order.
const userColumns = `id, username, password_hash, created_at, email, email_verified`

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
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, timeDest{&u.CreatedAt}, &u.Email, &u.EmailVerified)
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
