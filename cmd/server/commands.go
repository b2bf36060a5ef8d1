package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gatehouse/accounts"
	"gatehouse/audit"
	"gatehouse/clients"
	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
)

// runFunc is what a command's flags function returns.
type runFunc = func(ctx context.Context, cio cmdIO, args []string) error

// openStore opens the database a command names, applying migrations.
func openStore(ctx context.Context, cfg *config) (storage.Store, error) {
	if err := checkDBPath(cfg.DB); err != nil {
		return nil, err
	}
	store, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return store, nil
}

// withStore runs fn on the opened database and closes it.
func withStore(ctx context.Context, cfg *config, fn func(storage.Store) error) error {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, n int, usage string) error {
	if len(args) < n {
		return fmt.Errorf("usage: %s", usage)
	}
	if len(args) > n {
		return fmt.Errorf("unexpected arguments: %q (usage: %s)", args[n:], usage)
	}
	return nil
}

func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "run the server, applying database migrations first (the default command)",
		server:  true,
		flags: func(fs *flag.FlagSet, cfg *config) runFunc {
			return func(ctx context.Context, cio cmdIO, args []string) error {
				if err := wantArgs(args, 0, "server serve [flags]"); err != nil {
					return err
				}
				return serve(ctx, *cfg, cio.stderr)
			}
		},
	}
}

func migrateCommand() *command {
	return &command{
		name:    "migrate",
		summary: "apply database migrations and exit",
		flags: func(fs *flag.FlagSet, cfg *config) runFunc {
			return func(ctx context.Context, cio cmdIO, args []string) error {
				if err := wantArgs(args, 0, "server migrate [flags]"); err != nil {
					return err
				}
				return withStore(ctx, cfg, func(storage.Store) error {
					_, err := fmt.Fprintln(cio.stdout, "migrations applied")
					return err
				})
			}
		},
	}
}

func usersCommand() *command {
	return &command{
		name:    "users",
		summary: "create, list, delete, disable and enable users, set their email address, reset their second factors",
		sub: []*command{
			{
				name:    "create",
				args:    "--username U --password-stdin [flags]",
				summary: "create a user, reading the password from standard input",
				about:   "Prints the new user as JSON. One trailing newline of the password is removed:\n  printf '%s\\n' \"$PASSWORD\" | server users create --username alice --password-stdin",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					var username string
					var fromStdin bool
					fs.StringVar(&username, "username", "", "the new user's name")
					fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input (required)")
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 0, "server users create --username U --password-stdin"); err != nil {
							return err
						}
						if !fromStdin {
							return errors.New("--password-stdin is required: passwords are never taken from the command line")
						}
						password, err := bufio.NewReader(io.LimitReader(cio.stdin, 4096)).ReadString('\n')
						if err != nil && !errors.Is(err, io.EOF) {
							return fmt.Errorf("read password: %w", err)
						}
						password = strings.TrimSuffix(strings.TrimSuffix(password, "\n"), "\r")
						return withStore(ctx, cfg, func(store storage.Store) error {
							u, err := accounts.Register(ctx, store, username, password, time.Now())
							if errors.Is(err, storage.ErrConflict) {
								return fmt.Errorf("user %q already exists", strings.ToLower(username))
							}
							if err != nil {
								return err
							}
							audit.Record(ctx, cliAudit(store, cio.stderr), audit.Event{Type: audit.UserCreated, Subject: u.ID, Detail: map[string]string{"username": u.Username}})
							return json.NewEncoder(cio.stdout).Encode(toUserJSON(u))
						})
					}
				},
			},
			{
				name:    "list",
				summary: "print every user as JSON lines, oldest first",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 0, "server users list [flags]"); err != nil {
							return err
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							users, err := store.ListUsers(ctx)
							if err != nil {
								return err
							}
							enc := json.NewEncoder(cio.stdout)
							for _, u := range users {
								if err := enc.Encode(toUserJSON(u)); err != nil {
									return err
								}
							}
							return nil
						})
					}
				},
			},
			{
				name:    "delete",
				args:    "--username U [flags]",
				summary: "delete a user with their consents, tokens, books and apps",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					var username string
					fs.StringVar(&username, "username", "", "the user to delete")
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 0, "server users delete --username U"); err != nil {
							return err
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							u, err := lookUpUser(ctx, store, username)
							if err != nil {
								return err
							}
							if err := store.DeleteUser(ctx, u.ID); err != nil {
								return err
							}
							audit.Record(ctx, cliAudit(store, cio.stderr), audit.Event{Type: audit.UserDeleted, Subject: u.ID, Detail: map[string]string{"username": u.Username}})
							_, err = fmt.Fprintf(cio.stdout, "deleted %s\n", u.Username)
							return err
						})
					}
				},
			},
			setEmailCommand(),
			disableUserCommand(),
			enableUserCommand(),
			resetMFACommand(),
		},
	}
}

// resetMFACommand removes a user's second factors and passkeys, for
// someone who lost both their authenticator app and their recovery codes,
// or a device that holds a passkey; the password is then enough to sign
// in, and the user can set up a new app.
func resetMFACommand() *command {
	return &command{
		name:    "reset-mfa",
		args:    "--username U [flags]",
		summary: "remove a user's authenticator app, recovery codes and passkeys",
		flags: func(fs *flag.FlagSet, cfg *config) runFunc {
			var username string
			fs.StringVar(&username, "username", "", "the user whose second factors and passkeys to remove")
			return func(ctx context.Context, cio cmdIO, args []string) error {
				if err := wantArgs(args, 0, "server users reset-mfa --username U"); err != nil {
					return err
				}
				return withStore(ctx, cfg, func(store storage.Store) error {
					u, err := lookUpUser(ctx, store, username)
					if err != nil {
						return err
					}
					var removed []string
					if _, err := store.GetTOTP(ctx, u.ID); err == nil {
						removed = append(removed, "the authenticator app")
					} else if !errors.Is(err, storage.ErrNotFound) {
						return err
					}
					left, err := store.CountRecoveryCodes(ctx, u.ID)
					if err != nil {
						return err
					}
					if left > 0 {
						removed = append(removed, fmt.Sprintf("%d unused recovery codes", left))
					}
					keys, err := store.ListPasskeys(ctx, u.ID)
					if err != nil {
						return err
					}
					if len(keys) > 0 {
						removed = append(removed, fmt.Sprintf("%d passkeys", len(keys)))
					}
					if len(removed) == 0 {
						_, err := fmt.Fprintf(cio.stdout, "%s has no second factor; nothing removed\n", u.Username)
						return err
					}
					if err := store.ResetMFA(ctx, u.ID); err != nil {
						return err
					}
					audit.Record(ctx, cliAudit(store, cio.stderr), audit.Event{Type: audit.MFAReset, Subject: u.ID, Detail: map[string]string{"username": u.Username, "removed": strings.Join(removed, ", ")}})
					_, err = fmt.Fprintf(cio.stdout, "removed %s of %s\n", strings.Join(removed, " and "), u.Username)
					return err
				})
			}
		},
	}
}

type userJSON struct {
	ID            string     `json:"id"`
	Username      string     `json:"username"`
	CreatedAt     time.Time  `json:"created_at"`
	Email         string     `json:"email"`
	EmailVerified bool       `json:"email_verified"`
	Disabled      bool       `json:"disabled"`
	DisabledAt    *time.Time `json:"disabled_at,omitempty"`
}

func toUserJSON(u storage.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, CreatedAt: u.CreatedAt, Email: u.Email, EmailVerified: u.EmailVerified,
		Disabled: u.DisabledAt != nil, DisabledAt: u.DisabledAt}
}

// clientJSON is how the CLI prints a client; the secret appears only when
// it was just created or rotated.
type clientJSON struct {
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret,omitempty"`
	Name         string    `json:"name"`
	Public       bool      `json:"public"`
	RedirectURIs []string  `json:"redirect_uris"`
	Scope        string    `json:"scope"`
	GrantTypes   []string  `json:"grant_types"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`

	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	AuthMethod             string   `json:"token_endpoint_auth_method,omitempty"`
	JWKSURI                string   `json:"jwks_uri,omitempty"`
	RequirePAR             bool     `json:"require_pushed_authorization_requests,omitempty"`
	DPoPBound              bool     `json:"dpop_bound_access_tokens,omitempty"`
	IDTokenAlg             string   `json:"id_token_signed_response_alg"`
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
		UpdatedAt:    c.UpdatedAt,

		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		AuthMethod:             c.AuthMethod,
		JWKSURI:                c.JWKSURI,
		RequirePAR:             c.RequirePAR,
		DPoPBound:              c.DPoPBound,
		IDTokenAlg:             cmp.Or(c.IDTokenAlg, clients.IDTokenAlgs[0]),
	}
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// getClient loads a client by the id a command was given.
func getClient(ctx context.Context, store storage.Store, id string) (storage.Client, error) {
	c, err := store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return c, fmt.Errorf("no client %q", id)
	}
	return c, err
}

func clientsCommand() *command {
	return &command{
		name:    "clients",
		summary: "register, show, change and delete OAuth clients (apps)",
		sub: []*command{
			{
				name:    "create",
				args:    "--name N --redirect-uri U [flags]",
				summary: "register a client and print it as JSON, with its secret (shown only now)",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					var reg clients.Registration
					var uris, grants, logoutURIs repeated
					fs.StringVar(&reg.Name, "name", "", "the app's name, shown on the consent page")
					fs.Var(&uris, "redirect-uri", "a redirect URI (repeat for several)")
					fs.BoolVar(&reg.Public, "public", false, "a public client (no secret; PKCE required)")
					fs.StringVar(&reg.Scope, "scope", "", "space-separated scopes (default: all)")
					fs.Var(&grants, "grant-type", "authorization_code, refresh_token, client_credentials or "+clients.GrantDeviceCode+" (repeat) (default: authorization_code and refresh_token)")
					fs.Var(&logoutURIs, "post-logout-redirect-uri", "where sign-out may send the browser back (repeat for several)")
					var jwksFile string
					fs.StringVar(&reg.AuthMethod, "auth-method", "", "private_key_jwt: authenticate with signed assertions instead of a secret (needs --jwks-file or --jwks-uri)")
					fs.StringVar(&jwksFile, "jwks-file", "", "a file holding the client's public JSON Web Key Set")
					fs.StringVar(&reg.JWKSURI, "jwks-uri", "", "an https URL where the client publishes its JSON Web Key Set")
					fs.BoolVar(&reg.RequirePAR, "require-par", false, "the client must use pushed authorization requests")
					fs.BoolVar(&reg.DPoPBound, "dpop-bound", false, "every access token of the client must be DPoP-bound")
					fs.StringVar(&reg.IDTokenAlg, "id-token-alg", clients.IDTokenAlgs[0], "the algorithm of the client's ID tokens: "+strings.Join(clients.IDTokenAlgs, ", "))
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 0, "server clients create --name N --redirect-uri U"); err != nil {
							return err
						}
						reg.RedirectURIs, reg.GrantTypes, reg.PostLogoutRedirectURIs, reg.Origin = uris, grants, logoutURIs, storage.OriginCLI
						if jwksFile != "" {
							b, err := os.ReadFile(jwksFile)
							if err != nil {
								return fmt.Errorf("read --jwks-file: %w", err)
							}
							reg.JWKS = strings.TrimSpace(string(b))
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							c, secret, err := clients.Register(ctx, store, reg, time.Now())
							if err != nil {
								return err
							}
							audit.Record(ctx, cliAudit(store, cio.stderr), audit.Event{Type: audit.ClientCreated, Client: c.ID, Detail: map[string]string{"name": c.Name}})
							return json.NewEncoder(cio.stdout).Encode(toClientJSON(c, secret))
						})
					}
				},
			},
			{
				name:    "list",
				summary: "print every client as JSON lines, oldest first",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 0, "server clients list [flags]"); err != nil {
							return err
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							all, err := store.ListClients(ctx)
							if err != nil {
								return err
							}
							enc := json.NewEncoder(cio.stdout)
							for _, c := range all {
								if err := enc.Encode(toClientJSON(c, "")); err != nil {
									return err
								}
							}
							return nil
						})
					}
				},
			},
			{
				name:    "show",
				args:    "ID [flags]",
				summary: "print one client as JSON",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 1, "server clients show ID"); err != nil {
							return err
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							c, err := getClient(ctx, store, args[0])
							if err != nil {
								return err
							}
							return json.NewEncoder(cio.stdout).Encode(toClientJSON(c, ""))
						})
					}
				},
			},
			{
				name:    "update",
				args:    "ID [--name N] [--redirect-uri U …] [--id-token-alg A] [--rotate-secret] [flags]",
				summary: "rename a client, replace its redirect URIs, change its ID token algorithm or give it a new secret",
				about:   "Prints the client as JSON; with --rotate-secret the new secret, which replaces\nthe old one at once, is in it (shown only now).",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					var name string
					var uris repeated
					var rotate bool
					fs.StringVar(&name, "name", "", "the new name (default: unchanged)")
					fs.Var(&uris, "redirect-uri", "a redirect URI, replacing all the current ones (repeat for several) (default: unchanged)")
					fs.BoolVar(&rotate, "rotate-secret", false, "give the client a new secret")
					var alg string
					fs.StringVar(&alg, "id-token-alg", "", "the algorithm of the client's ID tokens: "+strings.Join(clients.IDTokenAlgs, ", ")+" (default: unchanged)")
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 1, "server clients update ID [--name N] [--redirect-uri U …] [--id-token-alg A] [--rotate-secret]"); err != nil {
							return err
						}
						if name == "" && len(uris) == 0 && alg == "" && !rotate {
							return errors.New("nothing to change: give --name, --redirect-uri, --id-token-alg or --rotate-secret")
						}
						if alg != "" {
							if _, err := clients.ValidateIDTokenAlg(alg); err != nil {
								return fmt.Errorf("--id-token-alg: %w", err)
							}
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							c, err := getClient(ctx, store, args[0])
							if err != nil {
								return err
							}
							rec, now := cliAudit(store, cio.stderr), time.Now()
							if name != "" || len(uris) > 0 {
								changed := changedFields(c, name, uris)
								if name == "" {
									name = c.Name
								}
								if len(uris) == 0 {
									uris = c.RedirectURIs
								}
								if c, err = clients.Update(ctx, store, c.ID, name, uris, now); err != nil {
									return err
								}
								audit.Record(ctx, rec, audit.Event{Type: audit.ClientUpdated, Client: c.ID, Detail: map[string]string{"changed": changed}})
							}
							if alg != "" {
								if c, err = clients.SetIDTokenAlg(ctx, store, c.ID, alg, now); err != nil {
									return err
								}
								audit.Record(ctx, rec, audit.Event{Type: audit.ClientUpdated, Client: c.ID, Detail: map[string]string{"changed": "id_token_signed_response_alg"}})
							}
							var secret string
							if rotate {
								if secret, err = clients.RotateSecret(ctx, store, c.ID, now); err != nil {
									return err
								}
								audit.Record(ctx, rec, audit.Event{Type: audit.ClientSecretRotated, Client: c.ID})
								if c, err = store.GetClient(ctx, c.ID); err != nil {
									return err
								}
							}
							return json.NewEncoder(cio.stdout).Encode(toClientJSON(c, secret))
						})
					}
				},
			},
			{
				name:    "delete",
				args:    "ID [flags]",
				summary: "delete a client with its consents and tokens",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 1, "server clients delete ID"); err != nil {
							return err
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							if err := store.DeleteClient(ctx, args[0]); errors.Is(err, storage.ErrNotFound) {
								return fmt.Errorf("no client %q", args[0])
							} else if err != nil {
								return err
							}
							audit.Record(ctx, cliAudit(store, cio.stderr), audit.Event{Type: audit.ClientDeleted, Client: args[0]})
							_, err := fmt.Fprintf(cio.stdout, "deleted %s\n", args[0])
							return err
						})
					}
				},
			},
		},
	}
}

// changedFields names what an update changes, for the audit event.
func changedFields(c storage.Client, name string, uris []string) string {
	var changed []string
	if name != "" && name != c.Name {
		changed = append(changed, "name")
	}
	if len(uris) > 0 && !slices.Equal(uris, c.RedirectURIs) {
		changed = append(changed, "redirect_uris")
	}
	return strings.Join(changed, " ")
}

func auditCommand() *command {
	return &command{
		name:    "audit",
		args:    "[--since D] [--user U] [--client C] [flags]",
		summary: "print security events as JSON lines, oldest first",
		about:   "Events: " + joinTypes() + ".",
		flags: func(fs *flag.FlagSet, cfg *config) runFunc {
			var since, user, client string
			var limit int
			fs.StringVar(&since, "since", "", "only events after this: a duration back from now (24h) or an RFC 3339 time")
			fs.StringVar(&user, "user", "", "only events by or about this user (a username or a user id)")
			fs.StringVar(&client, "client", "", "only events about this client id")
			fs.IntVar(&limit, "limit", 0, "print at most this many, the latest (default: all)")
			return func(ctx context.Context, cio cmdIO, args []string) error {
				if err := wantArgs(args, 0, "server audit [--since D] [--user U] [--client C]"); err != nil {
					return err
				}
				f := audit.Filter{Client: client, Limit: limit}
				if since != "" {
					t, err := parseSince(since, time.Now())
					if err != nil {
						return err
					}
					f.Since = t
				}
				return withStore(ctx, cfg, func(store storage.Store) error {
					if user != "" {
						f.User = user
						if u, err := store.GetUserByUsername(ctx, user); err == nil {
							f.User = u.ID
						} else if !errors.Is(err, storage.ErrNotFound) {
							return err
						}
					}
					events, err := store.ListAuditEvents(ctx, f)
					if err != nil {
						return err
					}
					enc := json.NewEncoder(cio.stdout)
					for _, e := range slices.Backward(events) {
						if err := enc.Encode(e); err != nil {
							return err
						}
					}
					return nil
				})
			}
		},
	}
}

func joinTypes() string {
	var names []string
	for _, t := range audit.Types {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

// parseSince reads --since: a duration back from now or a point in time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since: invalid value %q (want a duration such as 24h or a time such as 2026-12-01T00:00:00Z)", s)
}
