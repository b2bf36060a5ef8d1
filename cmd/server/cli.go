package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"gatehouse/accounts"
	"gatehouse/clients"
	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
)

// openForCommand parses a subcommand's flags (the shared --db and --secret
// plus its own) and opens the database, applying migrations.
func openForCommand(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer, own func(*flag.FlagSet)) (*flag.FlagSet, storage.Store, error) {
	var cfg config
	fs := newFlagSet(name, &cfg, stderr)
	if own != nil {
		own(fs)
	}
	if err := parse(fs, args, getenv); err != nil {
		return nil, nil, err
	}
	store, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	return fs, store, nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	_, store, err := openForCommand(ctx, "server migrate", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return store.Close()
}

func usersCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "set-email" {
		return setEmailCommand(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: server users create --username U --password-stdin")
	}
	var username string
	var fromStdin bool
	fs, store, err := openForCommand(ctx, "server users create", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "username", "", "the new user's name")
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	})
	if err != nil {
		return err
	}
	defer store.Close()
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if !fromStdin {
		return errors.New("--password-stdin is required: passwords are never taken from the command line")
	}
	password, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password = strings.TrimSuffix(strings.TrimSuffix(password, "\n"), "\r")
	u, err := accounts.Register(ctx, store, username, password, time.Now())
	if errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("user %q already exists", strings.ToLower(username))
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]string{"id": u.ID, "username": u.Username})
}

// clientJSON is how the CLI prints a client; the secret appears only when
// it was just created.
type clientJSON struct {
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret,omitempty"`
	Name         string    `json:"name"`
	Public       bool      `json:"public"`
	RedirectURIs []string  `json:"redirect_uris"`
	Scope        string    `json:"scope"`
	GrantTypes   []string  `json:"grant_types"`
	CreatedAt    time.Time `json:"created_at"`
}

func toClientJSON(c storage.Client, secret string) clientJSON {
	return clientJSON{
		ClientID:     c.ID,
		ClientSecret: secret,
		Name:         c.Name,
		Public:       c.Public,
		RedirectURIs: c.RedirectURIs,
		Scope:        strings.Join(c.Scopes, " "),
		GrantTypes:   c.GrantTypes,
		CreatedAt:    c.CreatedAt,
	}
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func clientsCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: server clients create|list|delete")
	}
	switch args[0] {
	case "create":
		var reg clients.Registration
		var uris, grants repeated
		fs, store, err := openForCommand(ctx, "server clients create", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&reg.Name, "name", "", "the app's name, shown on the consent page")
			fs.Var(&uris, "redirect-uri", "a redirect URI (repeat for several)")
			fs.BoolVar(&reg.Public, "public", false, "a public client (no secret; PKCE required)")
			fs.StringVar(&reg.Scope, "scope", "", "space-separated scopes (default: all)")
			fs.Var(&grants, "grant-type", "authorization_code, refresh_token or client_credentials (repeat; default: the first two)")
		})
		if err != nil {
			return err
		}
		defer store.Close()
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected arguments: %q", fs.Args())
		}
		reg.RedirectURIs, reg.GrantTypes = uris, grants
		c, secret, err := clients.Register(ctx, store, reg, time.Now())
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(toClientJSON(c, secret))
	case "list":
		_, store, err := openForCommand(ctx, "server clients list", args[1:], getenv, stderr, nil)
		if err != nil {
			return err
		}
		defer store.Close()
		all, err := store.ListClients(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for _, c := range all {
			if err := enc.Encode(toClientJSON(c, "")); err != nil {
				return err
			}
		}
		return nil
	case "delete":
		fs, store, err := openForCommand(ctx, "server clients delete", args[1:], getenv, stderr, nil)
		if err != nil {
			return err
		}
		defer store.Close()
		if fs.NArg() != 1 {
			return errors.New("usage: server clients delete [--db …] ID")
		}
		if err := store.DeleteClient(ctx, fs.Arg(0)); errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no client %q", fs.Arg(0))
		} else if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s\n", fs.Arg(0))
		return nil
	}
	return fmt.Errorf("unknown clients command %q (want create, list or delete)", args[0])
}
