package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gatehouse/audit"
	"gatehouse/storage"
)

// disableJSON is what `users disable` prints: the user as `users list`
// shows them, and what the disabling ended.
type disableJSON struct {
	userJSON
	SessionsEnded int64 `json:"sessions_ended"`
	TokensRevoked int64 `json:"tokens_revoked"`
}

// lookUpUser finds the user a command names.
func lookUpUser(ctx context.Context, store storage.Store, username string) (storage.User, error) {
	if username == "" {
		return storage.User{}, errors.New("--username is required")
	}
	u, err := store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return u, fmt.Errorf("no user %q", strings.ToLower(username))
	}
	return u, err
}

// disableUserCommand is `server users disable`: the account stays, with its
// data, but is signed out everywhere and signs in no more, by any method,
// and its apps lose their tokens.
func disableUserCommand() *command {
	return &command{
		name:    "disable",
		args:    "--username U [flags]",
		summary: "disable a user: end their sessions, revoke their tokens, refuse their sign-ins",
		about: "Prints the user as JSON with how many sessions ended and tokens were revoked. The account, its\n" +
			"apps, books and consents stay; `server users enable` lets it sign in again. Takes effect at\n" +
			"once on every instance sharing the database.",
		flags: func(fs *flag.FlagSet, cfg *config) runFunc {
			var username string
			fs.StringVar(&username, "username", "", "the user to disable")
			return func(ctx context.Context, cio cmdIO, args []string) error {
				if err := wantArgs(args, 0, "server users disable --username U"); err != nil {
					return err
				}
				return withStore(ctx, cfg, func(store storage.Store) error {
					u, err := lookUpUser(ctx, store, username)
					if err != nil {
						return err
					}
					sessions, tokens, err := store.DisableUser(ctx, u.ID, time.Now())
					if err != nil {
						return err
					}
					if u, err = store.GetUser(ctx, u.ID); err != nil {
						return err
					}
					audit.Record(ctx, cliAudit(store, cio.stderr), audit.Event{Type: audit.UserDisabled, Subject: u.ID, Detail: map[string]string{
						"username": u.Username, "sessions_ended": strconv.FormatInt(sessions, 10), "tokens_revoked": strconv.FormatInt(tokens, 10)}})
					return json.NewEncoder(cio.stdout).Encode(disableJSON{toUserJSON(u), sessions, tokens})
				})
			}
		},
	}
}

// enableUserCommand is `server users enable`, the way back. What disabling
// ended stays ended: the user signs in again and apps ask for new tokens.
func enableUserCommand() *command {
	return &command{
		name:    "enable",
		args:    "--username U [flags]",
		summary: "let a disabled user sign in again",
		about:   "Prints the user as JSON. Sessions and tokens ended by disabling stay ended.",
		flags: func(fs *flag.FlagSet, cfg *config) runFunc {
			var username string
			fs.StringVar(&username, "username", "", "the user to enable")
			return func(ctx context.Context, cio cmdIO, args []string) error {
				if err := wantArgs(args, 0, "server users enable --username U"); err != nil {
					return err
				}
				return withStore(ctx, cfg, func(store storage.Store) error {
					u, err := lookUpUser(ctx, store, username)
					if err != nil {
						return err
					}
					if err := store.EnableUser(ctx, u.ID); err != nil {
						return err
					}
					if u.DisabledAt != nil {
						audit.Record(ctx, cliAudit(store, cio.stderr), audit.Event{Type: audit.UserEnabled, Subject: u.ID, Detail: map[string]string{"username": u.Username}})
					}
					u.DisabledAt = nil
					return json.NewEncoder(cio.stdout).Encode(toUserJSON(u))
				})
			}
		},
	}
}
