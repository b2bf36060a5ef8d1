package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"gatehouse/storage"
)

// AssertionAlgs are the signature algorithms of client assertions.
var AssertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256, jose.EdDSA}

const (
	jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionLife is how far ahead an assertion's exp may be: an
	// assertion is made for one request, and a long-lived one is a
	// credential that can be stolen.
	maxAssertionLife = 5 * time.Minute
	assertionSkew    = 30 * time.Second
	maxAssertion     = 8 << 10
)

// JWKSFetcher fetches the JSON Web Key Set a client publishes at its
// jwks_uri. It must refuse addresses that are not public (SSRF).
type JWKSFetcher interface {
	FetchJWKS(ctx context.Context, uri string) ([]byte, error)
}

// authenticateClient is fosite's client authentication strategy. fosite's
// own private_key_jwt accepts an assertion valid for a year, checks jti
// and records it in two steps (two instances can both accept one), knows
// no EdDSA and pins one algorithm per client; assertions are therefore
// checked here, and everything else is fosite's default.
func (h *Handler) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if !form.Has("client_assertion_type") && !form.Has("client_assertion") {
		c, err := h.provider.(*fosite.Fosite).DefaultClientAuthenticationStrategy(ctx, r, form)
		if err == nil && clientRecord(c).AuthMethod == "private_key_jwt" {
			return nil, fosite.ErrInvalidClient.WithHint("This client authenticates with private_key_jwt: send a client_assertion.")
		}
		return c, err
	}
	c, err := h.verifyAssertion(ctx, r, form)
	if err != nil {
		return nil, err
	}
	return client{c}, nil
}

func assertionError(hint string) error { return fosite.ErrInvalidClient.WithHint(hint) }

// verifyAssertion checks an RFC 7523 §2.2 client assertion against
// RFC 7523 §3 and OIDC Core §9.
func (h *Handler) verifyAssertion(ctx context.Context, r *http.Request, form url.Values) (storage.Client, error) {
	assertion := form.Get("client_assertion")
	switch {
	case form.Get("client_assertion_type") != jwtBearer:
		return storage.Client{}, assertionError("The client_assertion_type must be " + jwtBearer + ".")
	case assertion == "" || len(assertion) > maxAssertion:
		return storage.Client{}, assertionError("The client_assertion is missing or too large.")
	}
	jws, err := jose.ParseSignedCompact(assertion, AssertionAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return storage.Client{}, assertionError("The client_assertion is not a JWT signed with one of " + algNames(AssertionAlgs) + ".")
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *float64        `json:"exp"`
		Nbf *float64        `json:"nbf"`
		Iat *float64        `json:"iat"`
		JTI string          `json:"jti"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return storage.Client{}, assertionError("The client_assertion's claims are not a JSON object of the expected types.")
	}
	switch {
	case claims.Sub == "" || claims.Iss != claims.Sub:
		return storage.Client{}, assertionError("The client_assertion's iss and sub must both be the client_id.")
	case form.Get("client_id") != "" && form.Get("client_id") != claims.Sub:
		return storage.Client{}, assertionError("The client_id does not match the client_assertion's sub.")
	}
	c, err := h.Store.GetClient(ctx, claims.Sub)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, assertionError("No client is registered with the client_assertion's sub.")
	}
	if err != nil {
		return storage.Client{}, fosite.ErrServerError.WithWrap(err)
	}
	if c.AuthMethod != "private_key_jwt" {
		return storage.Client{}, assertionError("This client is not registered for private_key_jwt.")
	}
	if err := h.verifySignature(ctx, c, jws); err != nil {
		return storage.Client{}, err
	}
	now := float64(time.Now().Unix())
	switch {
	case claims.Exp == nil:
		return storage.Client{}, assertionError("The client_assertion needs an exp.")
	case *claims.Exp <= now-assertionSkew.Seconds():
		return storage.Client{}, assertionError("The client_assertion has expired.")
	case *claims.Exp > now+(maxAssertionLife+assertionSkew).Seconds():
		return storage.Client{}, assertionError("The client_assertion's exp may be at most 5 minutes ahead.")
	case claims.Nbf != nil && *claims.Nbf > now+assertionSkew.Seconds():
		return storage.Client{}, assertionError("The client_assertion is not valid yet (nbf).")
	case claims.Iat != nil && *claims.Iat > now+assertionSkew.Seconds():
		return storage.Client{}, assertionError("The client_assertion's iat is in the future.")
	case !h.assertionAudience(claims.Aud, r):
		return storage.Client{}, assertionError("The client_assertion's aud must be the issuer " + h.cfg.Issuer + " or this endpoint's URL.")
	case claims.JTI == "" || len(claims.JTI) > maxJTI:
		return storage.Client{}, assertionError("The client_assertion needs a jti.")
	}
	key := sha256.Sum256([]byte(c.ID + "\x00" + claims.JTI))
	err = h.Store.UseOnce(ctx, "assertion:"+base64.RawURLEncoding.EncodeToString(key[:]), time.Unix(int64(*claims.Exp), 0).Add(assertionSkew))
	if errors.Is(err, storage.ErrConflict) {
		return storage.Client{}, assertionError("The client_assertion's jti was used before; make a new assertion for each request.")
	}
	if err != nil {
		return storage.Client{}, fosite.ErrServerError.WithWrap(err)
	}
	return c, nil
}

// assertionAudience accepts the issuer or the URL of the endpoint the
// assertion was sent to, alone or in an array.
func (h *Handler) assertionAudience(raw json.RawMessage, r *http.Request) bool {
	var auds []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		auds = []string{one}
	} else if json.Unmarshal(raw, &auds) != nil {
		return false
	}
	endpoint := h.cfg.Issuer + r.URL.Path
	return slices.ContainsFunc(auds, func(a string) bool { return a == h.cfg.Issuer || a == endpoint })
}

// verifySignature finds the client's key the assertion names (by kid, or
// any signing key when it names none) and checks the signature with it.
func (h *Handler) verifySignature(ctx context.Context, c storage.Client, jws *jose.JSONWebSignature) error {
	set, err := h.clientKeys(ctx, c, false)
	if err != nil {
		return err
	}
	if verifyWithSet(set, jws) {
		return nil
	}
	if c.JWKSURI != "" {
		// The client may have rotated its keys since the set was cached.
		if set, err = h.clientKeys(ctx, c, true); err != nil {
			return err
		}
		if verifyWithSet(set, jws) {
			return nil
		}
	}
	return assertionError("The client_assertion's signature does not verify with any of the client's registered keys.")
}

func verifyWithSet(set *jose.JSONWebKeySet, jws *jose.JSONWebSignature) bool {
	h := jws.Signatures[0].Header
	keys := set.Keys
	if h.KeyID != "" {
		keys = set.Key(h.KeyID)
	}
	for _, k := range keys {
		if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != h.Algorithm) || !k.IsPublic() {
			continue
		}
		if _, err := jws.Verify(k.Key); err == nil {
			return true
		}
	}
	return false
}

// clientKeys is the client's key set: inline, or fetched from its jwks_uri
// and cached (refresh forces a new fetch, at most once in jwksMinRefetch).
func (h *Handler) clientKeys(ctx context.Context, c storage.Client, refresh bool) (*jose.JSONWebKeySet, error) {
	raw := []byte(c.JWKS)
	if c.JWKS == "" {
		if c.JWKSURI == "" || h.JWKS == nil {
			return nil, assertionError("This client has no keys registered.")
		}
		var err error
		if raw, err = h.jwksCache.get(ctx, h.JWKS, c.JWKSURI, refresh); err != nil {
			h.Logger.WarnContext(ctx, "fetch client jwks", "client_id", c.ID, "err", err)
			return nil, assertionError("The client's jwks_uri could not be fetched.")
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, assertionError("The client's key set is not a valid JSON Web Key Set.")
	}
	return &set, nil
}

const (
	jwksTTL        = 5 * time.Minute
	jwksMinRefetch = 30 * time.Second
)

// jwksCache keeps fetched key sets per URI for jwksTTL.
type jwksCache struct {
	mu      sync.Mutex
	entries map[string]jwksEntry
}

type jwksEntry struct {
	raw     []byte
	fetched time.Time
}

func (j *jwksCache) get(ctx context.Context, f JWKSFetcher, uri string, refresh bool) ([]byte, error) {
	j.mu.Lock()
	e, ok := j.entries[uri]
	j.mu.Unlock()
	age := time.Since(e.fetched)
	if ok && age < jwksTTL && (!refresh || age < jwksMinRefetch) {
		return e.raw, nil
	}
	raw, err := f.FetchJWKS(ctx, uri)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.entries == nil {
		j.entries = map[string]jwksEntry{}
	}
	j.entries[uri] = jwksEntry{raw: raw, fetched: time.Now()}
	return raw, nil
}

func algList(algs []jose.SignatureAlgorithm) []string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return names
}

func algNames(algs []jose.SignatureAlgorithm) string { return strings.Join(algList(algs), " ") }
