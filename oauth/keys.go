package oauth

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v3"

	"gatehouse/clients"
	"gatehouse/storage"
)

// KeyStore is what the signing keys need from the database.
type KeyStore interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	CreateSigningKey(ctx context.Context, k storage.SigningKey) error
	UpdateSigningKey(ctx context.Context, k storage.SigningKey) error
}

// sealer seals private signing keys at rest with AES-256-GCM. aeads[0],
// from the current system secret, seals; the others, from former secrets,
// only open. The key id is the associated data, so a sealed key copied onto
// another row does not open.
type sealer struct{ aeads []cipher.AEAD }

// ErrUnsealable is a stored signing key that none of the sealing keys opens.
var ErrUnsealable = errors.New("does not open with --secret or any of --old-secrets (was the system secret changed without listing the former one in --old-secrets?)")

func newSealer(keys [][]byte) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no key to seal the signing keys with")
	}
	s := &sealer{}
	for _, k := range keys {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("signing key sealer: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("signing key sealer: %w", err)
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// seal returns the nonce followed by the sealed der.
func (s *sealer) seal(id string, der []byte) []byte {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(der)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, der, []byte(id))
}

// open returns k's PKCS#8 DER and whether it should be sealed again under
// the current secret: it is in clear (a row from before sealing) or was
// sealed under a former secret.
func (s *sealer) open(k storage.SigningKey) (der []byte, stale bool, err error) {
	if !k.Sealed {
		return k.PrivateKey, true, nil
	}
	for i, aead := range s.aeads {
		if len(k.PrivateKey) < aead.NonceSize() {
			break
		}
		nonce, sealed := k.PrivateKey[:aead.NonceSize()], k.PrivateKey[aead.NonceSize():]
		if der, err := aead.Open(nil, nonce, sealed, []byte(k.ID)); err == nil {
			return der, i > 0, nil
		}
	}
	return nil, false, fmt.Errorf("signing key %s: %w", k.ID, ErrUnsealable)
}

// reseal seals every key that is in clear or under a former secret with the
// current one, so that the former secret can be dropped from --old-secrets
// after a restart. Keys that do not open are left for load to report when
// they are still needed. Instances starting together may both reseal a
// key; each result opens, and the last one stays.
func (s *sealer) reseal(ctx context.Context, db KeyStore) error {
	keys, err := db.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	for _, k := range keys {
		der, stale, err := s.open(k)
		if err != nil || !stale {
			continue
		}
		k.PrivateKey, k.Sealed = s.seal(k.ID, der), true
		if err := db.UpdateSigningKey(ctx, k); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("seal signing key %s: %w", k.ID, err)
		}
	}
	return nil
}

// IDTokenAlgs are the algorithms ID tokens can be signed with, the default
// first; the keyring holds keys of each.
var IDTokenAlgs = clients.IDTokenAlgs

// generateKey returns a new private key for alg.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case string(jose.RS256):
		return rsa.GenerateKey(rand.Reader, 2048)
	case string(jose.ES256):
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case string(jose.EdDSA):
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
}

// newSigningKey generates a key for alg and stores it sealed. A taken id
// is storage.ErrConflict.
func (s *sealer) newSigningKey(ctx context.Context, db KeyStore, alg string) (storage.SigningKey, error) {
	priv, err := generateKey(alg)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("marshal signing key: %w", err)
	}
	k := storage.SigningKey{ID: storage.NewID(), Algorithm: alg, Sealed: true, CreatedAt: time.Now().UTC()}
	k.PrivateKey = s.seal(k.ID, der)
	if err := db.CreateSigningKey(ctx, k); err != nil {
		return storage.SigningKey{}, fmt.Errorf("store signing key: %w", err)
	}
	return k, nil
}

// RotateSigningKey stores a new signing key for each of algs (every one of
// IDTokenAlgs when algs is empty), sealed under sealKeys[0] (sealKeys as in
// Config.SigningKeySealKeys), after sealing the existing keys under it as a
// server start does. Running servers sign with the new keys from their next
// reload, within a minute; the former keys stay published in the JWKS until
// the ID tokens they signed have expired. The keys that sign now must open
// with sealKeys: a key sealed under a secret the servers do not have would
// stop them signing. Resealing lets an operator whose old secret leaked
// rotate both at once, with the new secret and the old one in sealKeys, and
// then start the servers with the new one alone.
func RotateSigningKey(ctx context.Context, db KeyStore, sealKeys [][]byte, algs ...string) ([]storage.SigningKey, error) {
	if len(algs) == 0 {
		algs = IDTokenAlgs
	}
	for _, alg := range algs {
		if !slices.Contains(IDTokenAlgs, alg) {
			return nil, fmt.Errorf("unsupported signing algorithm %q; use %s", alg, strings.Join(IDTokenAlgs, ", "))
		}
	}
	s, err := newSealer(sealKeys)
	if err != nil {
		return nil, err
	}
	if err := s.reseal(ctx, db); err != nil {
		return nil, err
	}
	keys, err := db.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Algorithm] {
			continue
		}
		seen[k.Algorithm] = true
		if _, _, err := s.open(k); err != nil {
			return nil, err
		}
	}
	var created []storage.SigningKey
	for _, alg := range algs {
		k, err := s.newSigningKey(ctx, db, alg)
		if err != nil {
			return created, err
		}
		created = append(created, k)
	}
	return created, nil
}

// keyring holds the ID token signing keys. They live in the database so that
// every instance signs with the same keys and publishes the same JWKS. Each
// algorithm of IDTokenAlgs has its own keys: the newest signs; an older one
// stays published until every ID token it signed has expired (its
// successor's age exceeds the ID token lifetime).
type keyring struct {
	db     KeyStore
	sealer *sealer
	idTTL  time.Duration
	mu     sync.RWMutex
	// signing is the key each algorithm signs with.
	signing  map[string]*jose.JSONWebKey
	public   jose.JSONWebKeySet
	loadedAt time.Time
}

// keyReload bounds how long an instance keeps signing with a key after
// another instance rotated it.
const keyReload = time.Minute

// newKeyring seals what is not yet sealed under the current secret, then
// loads the keys.
func newKeyring(ctx context.Context, db KeyStore, sealKeys [][]byte, idTTL time.Duration) (*keyring, error) {
	s, err := newSealer(sealKeys)
	if err != nil {
		return nil, err
	}
	if err := s.reseal(ctx, db); err != nil {
		return nil, err
	}
	k := &keyring{db: db, sealer: s, idTTL: idTTL}
	if err := k.load(ctx, true); err != nil {
		return nil, err
	}
	return k, nil
}

// load reads the keys, creating the first one of each algorithm when there
// is none (on the first start, or the first since the algorithm was
// added). Two instances starting together may both create one; the newer
// signs, and both are published.
func (k *keyring) load(ctx context.Context, create bool) error {
	keys, err := k.db.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	byAlg := map[string][]storage.SigningKey{}
	for _, sk := range keys {
		byAlg[sk.Algorithm] = append(byAlg[sk.Algorithm], sk)
	}
	var missing []string
	for _, alg := range IDTokenAlgs {
		if len(byAlg[alg]) == 0 {
			missing = append(missing, alg)
		}
	}
	if len(missing) > 0 {
		if !create {
			return fmt.Errorf("no %s signing key", strings.Join(missing, ", "))
		}
		for _, alg := range missing {
			if err := k.generate(ctx, alg); err != nil {
				return err
			}
		}
		return k.load(ctx, false)
	}
	now := time.Now()
	var set jose.JSONWebKeySet
	signing := map[string]*jose.JSONWebKey{}
	for _, alg := range IDTokenAlgs {
		for i, sk := range byAlg[alg] {
			if i > 0 && now.Sub(byAlg[alg][i-1].CreatedAt) > k.idTTL+keyReload {
				break // every token this key signed has expired
			}
			jwk, err := k.parse(sk)
			if err != nil {
				return err
			}
			if i == 0 {
				signing[alg] = jwk
			}
			set.Keys = append(set.Keys, jwk.Public())
		}
	}
	k.mu.Lock()
	k.signing, k.public, k.loadedAt = signing, set, now
	k.mu.Unlock()
	return nil
}

// parse opens sk and checks that its key is of its algorithm's type.
func (k *keyring) parse(sk storage.SigningKey) (*jose.JSONWebKey, error) {
	der, _, err := k.sealer.open(sk)
	if err != nil {
		return nil, err
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", sk.ID, err)
	}
	ok := false
	switch key := priv.(type) {
	case *rsa.PrivateKey:
		ok = sk.Algorithm == string(jose.RS256)
	case *ecdsa.PrivateKey:
		ok = sk.Algorithm == string(jose.ES256) && key.Curve == elliptic.P256()
	case ed25519.PrivateKey:
		ok = sk.Algorithm == string(jose.EdDSA)
	}
	if !ok {
		return nil, fmt.Errorf("signing key %s is %T, which cannot sign %s", sk.ID, priv, sk.Algorithm)
	}
	return &jose.JSONWebKey{Key: priv, KeyID: sk.ID, Algorithm: sk.Algorithm, Use: "sig"}, nil
}

func (k *keyring) generate(ctx context.Context, alg string) error {
	if _, err := k.sealer.newSigningKey(ctx, k.db, alg); err != nil && !errors.Is(err, storage.ErrConflict) {
		return err
	}
	return nil
}

// Rotate makes a new key the signing key of each of algs, or of every
// algorithm when algs is empty. The old ones stay in the JWKS.
func (k *keyring) Rotate(ctx context.Context, algs ...string) error {
	if len(algs) == 0 {
		algs = IDTokenAlgs
	}
	for _, alg := range algs {
		if !slices.Contains(IDTokenAlgs, alg) {
			return fmt.Errorf("unsupported signing algorithm %q", alg)
		}
		if err := k.generate(ctx, alg); err != nil {
			return err
		}
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

// signingKey is the key that signs ID tokens with alg; "" is RS256.
func (k *keyring) signingKey(ctx context.Context, alg string) (*jose.JSONWebKey, error) {
	if alg == "" {
		alg = string(jose.RS256)
	}
	k.refresh(ctx)
	k.mu.RLock()
	defer k.mu.RUnlock()
	key := k.signing[alg]
	if key == nil {
		return nil, fmt.Errorf("no %s signing key", alg)
	}
	return key, nil
}

// verificationKey is the published key kid, if it verifies alg.
func (k *keyring) verificationKey(ctx context.Context, kid, alg string) (*jose.JSONWebKey, bool) {
	published := k.jwks(ctx)
	for _, key := range published.Key(kid) {
		if key.Algorithm == alg {
			return &key, true
		}
	}
	return nil, false
}

func (k *keyring) jwks(ctx context.Context) jose.JSONWebKeySet {
	k.refresh(ctx)
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.public
}
