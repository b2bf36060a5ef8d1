package oauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"gatehouse/storage"
)

// DPoPAlgs are the proof signature algorithms accepted (RFC 9449 §4.3 step
// 5): asymmetric only, never "none" or an HMAC.
var DPoPAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256, jose.EdDSA}

const (
	// dpopMaxAge is how old a proof's iat may be, dpopMaxSkew how far ahead
	// of this server's clock; a proof is remembered for as long as it could
	// be accepted.
	dpopMaxAge  = 5 * time.Minute
	dpopMaxSkew = 30 * time.Second
	// maxDPoPProof caps a proof before it is parsed: a 4096-bit RSA key
	// with its signature fits in well under half of it.
	maxDPoPProof = 8 << 10
	maxJTI       = 256
)

// DPoPError is a proof that fails verification. Code is invalid_dpop_proof,
// or use_dpop_nonce when only the server nonce was missing or stale.
type DPoPError struct {
	Code        string
	Description string
}

func (e *DPoPError) Error() string { return e.Code + ": " + e.Description }

func badProof(format string, args ...any) error {
	return &DPoPError{Code: "invalid_dpop_proof", Description: fmt.Sprintf(format, args...)}
}

// DPoPCheck is what a proof must match: the request it came with.
type DPoPCheck struct {
	Method string
	// URL is the request's absolute URL as the client addressed it; query
	// and fragment are ignored (RFC 9449 §4.3 step 9).
	URL string
	Now time.Time
	// AccessToken, when set, must be the one the proof's ath hashes: a
	// proof at a protected resource.
	AccessToken string
	// Nonce, when set, says whether the proof's nonce is one the server
	// currently hands out (RFC 9449 §8).
	Nonce func(nonce string) bool
}

// Replays remembers used proofs; it is the database, so a proof used at one
// instance is refused at every other.
type Replays interface {
	UseOnce(ctx context.Context, key string, expires time.Time) error
}

// VerifyDPoP checks the DPoP header values of a request against RFC 9449
// §4.3 and returns the JWK SHA-256 thumbprint (RFC 7638) of the proof key.
// headers are all values of the DPoP header: exactly one is allowed. A
// failing proof is a *DPoPError; any other error is the replay store's.
func VerifyDPoP(ctx context.Context, headers []string, chk DPoPCheck, replays Replays) (string, error) {
	if len(headers) != 1 {
		return "", badProof("Send exactly one DPoP header.")
	}
	proof := headers[0]
	if len(proof) > maxDPoPProof {
		return "", badProof("The DPoP proof is too large.")
	}
	payload, ph, err := proofHeaders.parseProof(proof)
	if err != nil {
		return "", err
	}
	var c struct {
		JTI   string          `json:"jti"`
		HTM   string          `json:"htm"`
		HTU   string          `json:"htu"`
		IAT   json.Number     `json:"iat"`
		ATH   string          `json:"ath"`
		Nonce json.RawMessage `json:"nonce"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return "", badProof("The DPoP proof's claims are not a JSON object of the expected types.")
	}
	switch {
	case c.JTI == "" || len(c.JTI) > maxJTI:
		return "", badProof("The DPoP proof needs a jti of 1 to %d characters.", maxJTI)
	case c.HTM != chk.Method:
		return "", badProof("The DPoP proof's htm must be %s.", chk.Method)
	case !sameHTU(c.HTU, chk.URL):
		return "", badProof("The DPoP proof's htu must be %s.", chk.URL)
	}
	iat, err := c.IAT.Float64()
	if err != nil {
		return "", badProof("The DPoP proof needs a numeric iat.")
	}
	// Compared as floats: a huge iat must not wrap around as an integer.
	now := float64(chk.Now.Unix())
	switch {
	case iat < now-dpopMaxAge.Seconds():
		return "", badProof("The DPoP proof was issued too long ago; make a new one.")
	case iat > now+dpopMaxSkew.Seconds():
		return "", badProof("The DPoP proof's iat is in the future.")
	}
	issued := time.Unix(int64(iat), 0)
	if chk.AccessToken != "" {
		sum := sha256.Sum256([]byte(chk.AccessToken))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(want)) != 1 {
			return "", badProof("The DPoP proof's ath must be the hash of the access token sent with it.")
		}
	}
	if chk.Nonce != nil {
		var nonce string
		if len(c.Nonce) > 0 && json.Unmarshal(c.Nonce, &nonce) != nil {
			return "", badProof("The DPoP proof's nonce must be a string.")
		}
		if !chk.Nonce(nonce) {
			return "", &DPoPError{Code: "use_dpop_nonce", Description: "Make the DPoP proof again with the nonce in the DPoP-Nonce header."}
		}
	}
	jkt := ph.jkt
	// The jti is only unique per key; the hash keeps the key short.
	key := sha256.Sum256([]byte(jkt + "\x00" + c.JTI))
	err = replays.UseOnce(ctx, "dpop:"+base64.RawURLEncoding.EncodeToString(key[:]), issued.Add(dpopMaxAge+dpopMaxSkew))
	if errors.Is(err, storage.ErrConflict) {
		return "", badProof("The DPoP proof was used before; make a new one for each request.")
	}
	if err != nil {
		return "", err
	}
	return jkt, nil
}

// sameHTU compares URLs after RFC 3986 §6.2.2-6.2.3 normalisation of the
// scheme, host and default port, without query and fragment.
func sameHTU(got, want string) bool {
	g, err1 := url.Parse(got)
	w, err2 := url.Parse(want)
	if err1 != nil || err2 != nil || g.Scheme == "" || g.Host == "" || g.User != nil {
		return false
	}
	norm := func(u *url.URL) string {
		scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
		port := u.Port()
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			port = ""
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if port != "" {
			host += ":" + port
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		return scheme + "://" + host + path
	}
	return norm(g) == norm(w)
}

// dpopNonces are server nonces (RFC 9449 §8) that need no shared state: a
// nonce is the MAC of a time window, so every instance with the same
// secret hands out and accepts the same ones.
type dpopNonces struct {
	key    []byte
	period time.Duration
}

func (n *dpopNonces) at(window int64) string {
	m := hmac.New(sha256.New, n.key)
	_ = binary.Write(m, binary.BigEndian, window)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// current is the nonce to hand out now.
func (n *dpopNonces) current(now time.Time) string {
	return n.at(now.Unix() / int64(n.period.Seconds()))
}

// valid accepts the current nonce and the previous window's, so a nonce
// handed out just before a window ends still works.
func (n *dpopNonces) valid(nonce string, now time.Time) bool {
	w := now.Unix() / int64(n.period.Seconds())
	return hmac.Equal([]byte(nonce), []byte(n.at(w))) || hmac.Equal([]byte(nonce), []byte(n.at(w-1)))
}
