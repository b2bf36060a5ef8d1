// Package dpoptest builds DPoP proofs (RFC 9449) and client assertions
// (RFC 7523) for tests, including deliberately broken ones.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key is a signing key with its algorithm.
type Key struct {
	Private crypto.Signer
	Alg     jose.SignatureAlgorithm
	KeyID   string
}

// NewES256 returns a fresh P-256 key.
func NewES256() Key {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return Key{Private: k, Alg: jose.ES256}
}

// PublicJWK is the key's public JWK.
func (k Key) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), Algorithm: string(k.Alg), Use: "sig", KeyID: k.KeyID}
}

// JWKS is a JSON Web Key Set holding the public key.
func (k Key) JWKS() string {
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.PublicJWK()}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint, base64url.
func (k Key) Thumbprint() string {
	j := k.PublicJWK()
	t, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(t)
}

// Proof is a DPoP proof. Its fields are the claims and headers; Build signs
// them as given, so a test can make any of them wrong.
type Proof struct {
	Typ         string // "dpop+jwt" unless set
	Method, URL string
	IAT         time.Time // now unless set
	JTI         string    // random unless set
	AccessToken string    // sets ath
	ATH         string    // overrides ath
	Nonce       string
	// JWK replaces the public key in the header (a private key, say).
	JWK *jose.JSONWebKey
	// NoJWK leaves the header without a key.
	NoJWK bool
}

// Build signs p with k.
func (k Key) Build(p Proof) string {
	if p.Typ == "" {
		p.Typ = "dpop+jwt"
	}
	if p.IAT.IsZero() {
		p.IAT = time.Now()
	}
	if p.JTI == "" {
		p.JTI = random()
	}
	claims := map[string]any{"jti": p.JTI, "htm": p.Method, "htu": p.URL, "iat": p.IAT.Unix()}
	if p.AccessToken != "" {
		sum := sha256.Sum256([]byte(p.AccessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if p.ATH != "" {
		claims["ath"] = p.ATH
	}
	if p.Nonce != "" {
		claims["nonce"] = p.Nonce
	}
	headers := map[jose.HeaderKey]any{jose.HeaderType: p.Typ}
	if !p.NoJWK {
		jwk := jose.JSONWebKey{Key: k.Private.Public(), Algorithm: string(k.Alg)}
		if p.JWK != nil {
			jwk = *p.JWK
		}
		headers["jwk"] = jwk
	}
	return k.sign(claims, headers)
}

// Assertion is an RFC 7523 client assertion for clientID with audience aud,
// expiring after ttl; edit adjusts the claims before signing.
func (k Key) Assertion(clientID, aud string, ttl time.Duration, edit func(map[string]any)) string {
	now := time.Now()
	claims := map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "jti": random(),
		"iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if edit != nil {
		edit(claims)
	}
	h := map[jose.HeaderKey]any{jose.HeaderType: "JWT"}
	if k.KeyID != "" {
		h["kid"] = k.KeyID
	}
	return k.sign(claims, h)
}

func (k Key) sign(claims map[string]any, headers map[jose.HeaderKey]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: k.Private}, &jose.SignerOptions{ExtraHeaders: headers})
	if err != nil {
		panic(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return s
}

// SignRaw signs header and payload, JSON texts taken byte for byte, as a
// compact JWS with k and k.Alg, whatever the header says: a test can send
// headers go-jose's signer would not make.
func (k Key) SignRaw(header, payload string) string {
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	return input + "." + base64.RawURLEncoding.EncodeToString(k.signature([]byte(input)))
}

func (k Key) signature(input []byte) []byte {
	sum := sha256.Sum256(input)
	var sig []byte
	var err error
	switch k.Alg {
	case jose.ES256:
		r, s, err := ecdsa.Sign(rand.Reader, k.Private.(*ecdsa.PrivateKey), sum[:])
		if err != nil {
			panic(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case jose.RS256:
		sig, err = k.Private.Sign(rand.Reader, sum[:], crypto.SHA256)
	case jose.PS256:
		sig, err = k.Private.Sign(rand.Reader, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	case jose.EdDSA:
		sig, err = k.Private.Sign(rand.Reader, input, crypto.Hash(0))
	default:
		err = fmt.Errorf("SignRaw does not sign %s", k.Alg)
	}
	if err != nil {
		panic(err)
	}
	return sig
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
