package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const minSecretLen = 32

// loadSecrets returns the system secret and the former ones. Without
// --secret an SQLite install generates one on first start and keeps it
// next to the database; PostgreSQL means several instances, which must all
// be given the same secret.
func loadSecrets(cfg config) ([]byte, [][]byte, error) {
	var old [][]byte
	for i, s := range cfg.OldSecrets {
		if len(s) < minSecretLen {
			return nil, nil, fmt.Errorf("--old-secrets: secret %d is shorter than %d bytes", i+1, minSecretLen)
		}
		old = append(old, []byte(s))
	}
	if cfg.Secret != "" {
		if len(cfg.Secret) < minSecretLen {
			return nil, nil, fmt.Errorf("--secret must be at least %d bytes", minSecretLen)
		}
		return []byte(cfg.Secret), old, nil
	}
	if isPostgres(cfg.DB) {
		return nil, nil, errors.New("--secret (or GATEHOUSE_SECRET) is required with PostgreSQL: every instance must share it")
	}
	secret, err := secretFile(filepath.Join(filepath.Dir(cfg.DB), "secret"))
	return secret, old, err
}

// secretFile reads the generated secret, creating it (mode 0600) the
// first time. The secret is written to a temporary file and linked into
// place, so a process starting at the same moment sees either no file or a
// complete one, and both end up with the same secret.
func secretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < minSecretLen {
			return nil, fmt.Errorf("%s holds a secret shorter than %d bytes", path, minSecretLen)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.RawURLEncoding.EncodeToString(raw) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return secretFile(path)
}
