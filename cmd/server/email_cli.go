package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"

	"gatehouse/accounts"
	"gatehouse/audit"
	"gatehouse/storage"
)

// setEmailCommand is `server users set-email`: the operator's way to give
// an account an address, and to verify it when the server sends no mail.
func setEmailCommand() *command {
	return &command{
		name:    "set-email",
		args:    "--username U --email E [--verified] [flags]",
		summary: "set a user's email address, verified or not",
		about:   "Prints the user's id, username and address as JSON. An empty --email removes the address.",
		flags: func(fs *flag.FlagSet, cfg *config) runFunc {
			var username, email string
			var verified bool
			fs.StringVar(&username, "username", "", "the account")
			fs.StringVar(&email, "email", "", "the address (empty removes it)")
			fs.BoolVar(&verified, "verified", false, "mark the address verified")
			return func(ctx context.Context, cio cmdIO, args []string) error {
				if err := wantArgs(args, 0, "server users set-email --username U --email E [--verified]"); err != nil {
					return err
				}
				return withStore(ctx, cfg, func(store storage.Store) error {
					u, err := accounts.SetEmail(ctx, store, username, email, verified)
					switch {
					case errors.Is(err, storage.ErrNotFound):
						return fmt.Errorf("no user %q", username)
					case errors.Is(err, storage.ErrConflict):
						return fmt.Errorf("%s is already verified on another account", email)
					case err != nil:
						return err
					}
					audit.Record(ctx, cliAudit(store, cio.stderr), audit.Event{Type: audit.EmailChanged, Subject: u.ID, Detail: map[string]string{"verified": strconv.FormatBool(u.EmailVerified)}})
					return json.NewEncoder(cio.stdout).Encode(map[string]any{"id": u.ID, "username": u.Username, "email": u.Email, "email_verified": u.EmailVerified})
				})
			}
		},
	}
}
