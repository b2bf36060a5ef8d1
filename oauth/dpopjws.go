package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// proofHeader is what a proof's protected header establishes once it has
// been checked: the algorithm, the public key and its RFC 7638 thumbprint.
// It is never changed after it is made, so proofs share it.
type proofHeader struct {
	alg jose.SignatureAlgorithm
	key crypto.PublicKey
	jkt string
}

// proofHeaders are the headers checked before, by their exact base64url
// text. A client signs all its proofs with one key, so their headers repeat
// byte for byte, and what a header establishes depends on those bytes
// alone: a repeat costs no JSON, JWK or thumbprint work. The signature is
// checked on every proof.
var proofHeaders = &headerCache{max: 2048, maxLen: 2048}

// headerCache is a bounded map of checked headers. When full it drops an
// arbitrary entry: a header that is gone is only checked again. It keeps
// no header longer than maxLen, which an RSA-4096 jwk fits in, so that it
// holds a few megabytes at most.
type headerCache struct {
	max, maxLen int
	mu          sync.RWMutex
	m           map[string]*proofHeader
}

func (c *headerCache) get(segment string) *proofHeader {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[segment]
}

func (c *headerCache) put(segment string, h *proofHeader) {
	if len(segment) > c.maxLen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*proofHeader)
	}
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	// A clone, so that the map does not keep the whole request header.
	c.m[strings.Clone(segment)] = h
}

// errNotJWS is a proof that is not a compact JWS with an accepted
// algorithm and header.
var errNotJWS = errors.New("not a compact JWS")

// parseProof checks the header and the signature of proof, a compact JWS
// (RFC 7515 §7.1), and returns its payload and header, remembering the
// header in c. Every segment must
// be exact base64url without padding: the signature is then over the very
// text received, as go-jose checks it over its re-encoding.
func (c *headerCache) parseProof(proof string) ([]byte, *proofHeader, error) {
	head, rest, ok := strings.Cut(proof, ".")
	body, sigText, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(sigText, ".") {
		return nil, nil, notJWT()
	}
	h := c.get(head)
	known := h != nil
	if !known {
		var err error
		if h, err = checkHeader(head, proof); err != nil {
			return nil, nil, err
		}
	}
	sig, err := decodeSegment(sigText)
	if err != nil {
		return nil, nil, notJWT()
	}
	payload, err := decodeSegment(body)
	if err != nil {
		return nil, nil, notJWT()
	}
	if !h.verify(proof[:len(head)+1+len(body)], sig) {
		return nil, nil, badProof("The DPoP proof's signature does not verify with its jwk.")
	}
	if !known {
		// Only once signed: a header nobody could sign with takes no room.
		c.put(head, h)
	}
	return payload, h, nil
}

func notJWT() error {
	return badProof("The DPoP proof is not a JWT signed with one of %s and a public key.", algNames(DPoPAlgs))
}

// decodeSegment decodes exact unpadded base64url. The decoder would skip
// CR and LF and, without Strict, accept stray low bits; either would let
// two texts stand for one value.
func decodeSegment(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.RawURLEncoding.EncodedLen(len(b)) != len(s) {
		return nil, errNotJWS
	}
	return b, nil
}

// checkHeader checks the protected header of proof, whose first segment is
// head, with go-jose's parser (RFC 9449 §4.3 steps 4-7): an accepted
// algorithm, typ dpop+jwt, a public jwk of the algorithm's type, and no
// crit or b64, which a JWT has no use for and which would change what is
// signed.
func checkHeader(head, proof string) (*proofHeader, error) {
	if _, err := decodeSegment(head); err != nil {
		return nil, notJWT()
	}
	jws, err := jose.ParseSignedCompact(proof, DPoPAlgs)
	if err != nil {
		return nil, notJWT()
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, badProof(`The DPoP proof's typ must be "dpop+jwt".`)
	}
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, badProof("The DPoP proof's header must not carry crit.")
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return nil, badProof("The DPoP proof's header must not carry b64.")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, badProof("The DPoP proof's header must carry the public key as jwk.")
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	if err := keyFits(alg, jwk.Key); err != nil {
		return nil, err
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, badProof("The DPoP proof's jwk has no thumbprint.")
	}
	return &proofHeader{alg: alg, key: jwk.Key, jkt: base64.RawURLEncoding.EncodeToString(thumb)}, nil
}

// keyFits checks that key is of the type alg signs with (RFC 7518 §3).
func keyFits(alg jose.SignatureAlgorithm, key crypto.PublicKey) error {
	ok := false
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		ok = alg == jose.ES256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return badProof("The DPoP proof's RSA key must have at least 2048 bits.")
		}
		ok = alg == jose.RS256 || alg == jose.PS256
	case ed25519.PublicKey:
		ok = alg == jose.EdDSA
	}
	if !ok {
		return badProof("The DPoP proof's jwk is not a key for its alg %s.", alg)
	}
	return nil
}

// verify reports whether sig is the signature of input by h's key, checked
// as go-jose checks it: for ES256 the 64 bytes of r and s (RFC 7518 §3.4),
// for PS256 a salt of any length.
func (h *proofHeader) verify(input string, sig []byte) bool {
	switch h.alg {
	case jose.ES256:
		if len(sig) != 64 {
			return false
		}
		sum := sha256.Sum256([]byte(input))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(h.key.(*ecdsa.PublicKey), sum[:], r, s)
	case jose.RS256:
		sum := sha256.Sum256([]byte(input))
		return rsa.VerifyPKCS1v15(h.key.(*rsa.PublicKey), crypto.SHA256, sum[:], sig) == nil
	case jose.PS256:
		sum := sha256.Sum256([]byte(input))
		return rsa.VerifyPSS(h.key.(*rsa.PublicKey), crypto.SHA256, sum[:], sig, nil) == nil
	case jose.EdDSA:
		return ed25519.Verify(h.key.(ed25519.PublicKey), []byte(input), sig)
	}
	return false
}
