package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"gatehouse/oauth"
	"gatehouse/storage"
)

// signingKeySealKeys derives the keys that seal the ID token signing keys
// in the database from the system secret and the former ones, the current
// first.
func signingKeySealKeys(secret []byte, old [][]byte) [][]byte {
	keys := [][]byte{derive(secret, "signing-key-seal")}
	for _, s := range old {
		keys = append(keys, derive(s, "signing-key-seal"))
	}
	return keys
}

// keyJSON is how the CLI prints a signing key: never its material.
type keyJSON struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
	// Signing: the newest key of its algorithm, which every instance signs
	// that algorithm's ID tokens with (within a minute of a rotation).
	Signing bool `json:"signing"`
	Sealed  bool `json:"sealed"`
}

func keysCommand() *command {
	return &command{
		name:    "keys",
		summary: "list and rotate the ID token signing keys",
		sub: []*command{
			{
				name:    "list",
				summary: "print the signing keys as JSON lines, newest first (never key material)",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 0, "server keys list [flags]"); err != nil {
							return err
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							keys, err := store.ListSigningKeys(ctx)
							if err != nil {
								return err
							}
							enc := json.NewEncoder(cio.stdout)
							seen := map[string]bool{}
							for _, k := range keys {
								if err := enc.Encode(keyJSON{KID: k.ID, Alg: k.Algorithm, CreatedAt: k.CreatedAt, Signing: !seen[k.Algorithm], Sealed: k.Sealed}); err != nil {
									return err
								}
								seen[k.Algorithm] = true
							}
							return nil
						})
					}
				},
			},
			{
				name:    "rotate",
				summary: "seal the existing keys under --secret and add a new signing key per algorithm",
				flags: func(fs *flag.FlagSet, cfg *config) runFunc {
					alg := fs.String("alg", "all", "the algorithm to rotate: "+strings.Join(oauth.IDTokenAlgs, ", ")+" or all")
					return func(ctx context.Context, cio cmdIO, args []string) error {
						if err := wantArgs(args, 0, "server keys rotate [--alg A] [flags]"); err != nil {
							return err
						}
						var algs []string
						switch {
						case *alg == "all":
						case slices.Contains(oauth.IDTokenAlgs, *alg):
							algs = []string{*alg}
						default:
							return fmt.Errorf("--alg %q: use %s or all", *alg, strings.Join(oauth.IDTokenAlgs, ", "))
						}
						secret, old, err := loadSecrets(*cfg)
						if err != nil {
							return err
						}
						return withStore(ctx, cfg, func(store storage.Store) error {
							created, err := oauth.RotateSigningKey(ctx, store, signingKeySealKeys(secret, old), algs...)
							rec, enc := cliAudit(store, cio.stderr), json.NewEncoder(cio.stdout)
							for _, k := range created {
								auditKeyRotation(ctx, rec, k.ID)
								if err := enc.Encode(keyJSON{KID: k.ID, Alg: k.Algorithm, CreatedAt: k.CreatedAt, Signing: true, Sealed: k.Sealed}); err != nil {
									return err
								}
							}
							return err
						})
					}
				},
			},
		},
	}
}
