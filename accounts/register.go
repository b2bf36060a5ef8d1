package accounts

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gatehouse/storage"
)

// ValidationError says why a username or password was refused.
type ValidationError struct{ Message string }

func (e *ValidationError) Error() string { return e.Message }

// Register creates a user. Usernames are case-insensitive and stored in
// lower case; a taken one is storage.ErrConflict.
func Register(ctx context.Context, store Store, username, password string, now time.Time) (storage.User, error) {
	return RegisterWithEmail(ctx, store, username, password, "", now)
}

// RegisterWithEmail is Register with an optional, unverified address.
func RegisterWithEmail(ctx context.Context, store Store, username, password, email string, now time.Time) (storage.User, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	if err := validateUsername(username); err != nil {
		return storage.User{}, err
	}
	if err := validatePassword(password); err != nil {
		return storage.User{}, err
	}
	email, err := NormalizeEmail(email)
	if err != nil {
		return storage.User{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return storage.User{}, fmt.Errorf("hash password: %w", err)
	}
	u := storage.User{ID: storage.NewID(), Username: username, PasswordHash: hash, CreatedAt: now.UTC(), Email: email}
	if err := store.CreateUser(ctx, u); err != nil {
		return storage.User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	return u, nil
}

func validateUsername(s string) error {
	if len(s) < 3 || len(s) > 32 {
		return &ValidationError{"Username must be 3 to 32 characters."}
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return &ValidationError{"Username may contain only letters, digits, dots, underscores and hyphens."}
		}
	}
	return nil
}

func validatePassword(s string) error {
	if n := utf8.RuneCountInString(s); !utf8.ValidString(s) || n < 8 || n > 128 {
		return &ValidationError{"Password must be 8 to 128 characters."}
	}
	return nil
}
