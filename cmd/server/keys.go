package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"gatehouse/oauth"
	"gatehouse/storage/sqlstore"
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
	// Signing: the newest key, which every instance signs ID tokens with
	// (within a minute of a rotation).
	Signing bool `json:"signing"`
	Sealed  bool `json:"sealed"`
}

func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: server keys list|rotate [--db …] [--secret …]")
	}
	switch args[0] {
	case "list":
		fs, store, err := openForCommand(ctx, "server keys list", args[1:], getenv, stderr, nil)
		if err != nil {
			return err
		}
		defer store.Close()
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected arguments: %q", fs.Args())
		}
		keys, err := store.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for i, k := range keys {
			if err := enc.Encode(keyJSON{KID: k.ID, Alg: k.Algorithm, CreatedAt: k.CreatedAt, Signing: i == 0, Sealed: k.Sealed}); err != nil {
				return err
			}
		}
		return nil
	case "rotate":
		// Sealing the new key needs the secret, which openForCommand
		// does not return.
		var cfg config
		fs := newFlagSet("server keys rotate", &cfg, stderr)
		if err := parse(fs, args[1:], getenv); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected arguments: %q", fs.Args())
		}
		secret, old, err := loadSecrets(cfg)
		if err != nil {
			return err
		}
		store, err := sqlstore.Open(ctx, cfg.DB, sqlstore.Options{MaxOpenConns: cfg.DBMaxConns})
		if err != nil {
			return fmt.Errorf("open database: %w", err)
		}
		defer store.Close()
		k, err := oauth.RotateSigningKey(ctx, store, signingKeySealKeys(secret, old))
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(keyJSON{KID: k.ID, Alg: k.Algorithm, CreatedAt: k.CreatedAt, Signing: true, Sealed: k.Sealed})
	}
	return fmt.Errorf("unknown keys command %q (want list or rotate)", args[0])
}
