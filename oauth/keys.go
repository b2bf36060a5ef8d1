package oauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v3"

	"gatehouse/storage"
)

// keyring holds the ID token signing keys. They live in the database so that
// every instance signs with the same key and publishes the same JWKS. The
// newest key signs; an older key stays published until every ID token it
// signed has expired (its successor's age exceeds the ID token lifetime).
type keyring struct {
	db       Store
	idTTL    time.Duration
	mu       sync.RWMutex
	signing  *jose.JSONWebKey
	public   jose.JSONWebKeySet
	loadedAt time.Time
}

// keyReload bounds how long an instance keeps signing with a key after
// another instance rotated it.
const keyReload = time.Minute

func newKeyring(ctx context.Context, db Store, idTTL time.Duration) (*keyring, error) {
	k := &keyring{db: db, idTTL: idTTL}
	if err := k.load(ctx, true); err != nil {
		return nil, err
	}
	return k, nil
}

// load reads the keys, creating the first one when there is none. Two
// instances starting together may both create one; the primary key makes
// one of them lose, and it simply reloads.
func (k *keyring) load(ctx context.Context, create bool) error {
	keys, err := k.db.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	if len(keys) == 0 {
		if !create {
			return errors.New("no signing key")
		}
		if err := k.generate(ctx); err != nil {
			return err
		}
		return k.load(ctx, false)
	}
	now := time.Now()
	var set jose.JSONWebKeySet
	var signing *jose.JSONWebKey
	for i, sk := range keys {
		if i > 0 && now.Sub(keys[i-1].CreatedAt) > k.idTTL+keyReload {
			break // every token this key signed has expired
		}
		priv, err := x509.ParsePKCS8PrivateKey(sk.PrivateKey)
		if err != nil {
			return fmt.Errorf("parse signing key %s: %w", sk.ID, err)
		}
		rsaKey, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("signing key %s is %T, want RSA", sk.ID, priv)
		}
		jwk := jose.JSONWebKey{Key: rsaKey, KeyID: sk.ID, Algorithm: sk.Algorithm, Use: "sig"}
		if signing == nil {
			signing = &jwk
		}
		set.Keys = append(set.Keys, jwk.Public())
	}
	k.mu.Lock()
	k.signing, k.public, k.loadedAt = signing, set, now
	k.mu.Unlock()
	return nil
}

func (k *keyring) generate(ctx context.Context) error {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("marshal signing key: %w", err)
	}
	err = k.db.CreateSigningKey(ctx, storage.SigningKey{
		ID:         storage.NewID(),
		Algorithm:  string(jose.RS256),
		PrivateKey: der,
		CreatedAt:  time.Now().UTC(),
	})
	if err != nil && !errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("store signing key: %w", err)
	}
	return nil
}

// Rotate makes a new key the signing key. The old one stays in the JWKS.
func (k *keyring) Rotate(ctx context.Context) error {
	if err := k.generate(ctx); err != nil {
		return err
	}
	return k.load(ctx, false)
}

func (k *keyring) refresh(ctx context.Context) {
	k.mu.RLock()
	stale := time.Since(k.loadedAt) > keyReload
	k.mu.RUnlock()
	if stale {
		// On failure the current keys keep serving; the next call retries.
		_ = k.load(ctx, false)
	}
}

// privateKey is fosite's key getter for signing ID tokens.
func (k *keyring) privateKey(ctx context.Context) (any, error) {
	k.refresh(ctx)
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.signing, nil
}

func (k *keyring) jwks(ctx context.Context) jose.JSONWebKeySet {
	k.refresh(ctx)
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.public
}
