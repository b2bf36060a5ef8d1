package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"gatehouse/accounts"
	"gatehouse/storage"
)

// setEmailCommand is `server users set-email`: the operator's way to give
// an account an address, and to verify it when the server sends no mail.
func setEmailCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var username, email string
	var verified bool
	fs, store, err := openForCommand(ctx, "server users set-email", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "username", "", "the account")
		fs.StringVar(&email, "email", "", "the address (empty removes it)")
		fs.BoolVar(&verified, "verified", false, "mark the address verified")
	})
	if err != nil {
		return err
	}
	defer store.Close()
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	u, err := accounts.SetEmail(ctx, store, username, email, verified)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("no user %q", username)
	case errors.Is(err, storage.ErrConflict):
		return fmt.Errorf("%s is already verified on another account", email)
	case err != nil:
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"id": u.ID, "username": u.Username, "email": u.Email, "email_verified": u.EmailVerified})
}
