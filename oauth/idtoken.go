package oauth

import (
	"context"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// idTokenAlgKey carries, in a token request's context, the algorithm the
// authenticated client's ID tokens are signed with.
type idTokenAlgKey struct{}

// withIDTokenAlg names the algorithm for the ID tokens issued under ctx.
// The token endpoint sets it from the client it authenticated, which is
// already in memory; the requester fosite hands the strategy is the one
// stored with the code, whose client is read from the database on demand.
func withIDTokenAlg(ctx context.Context, alg string) context.Context {
	return context.WithValue(ctx, idTokenAlgKey{}, alg)
}

// idTokenStrategy is fosite's ID token strategy, signing each client's ID
// tokens with the algorithm it registered (id_token_signed_response_alg).
type idTokenStrategy struct{ openid.DefaultStrategy }

func (s *idTokenStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, requester fosite.Requester) (string, error) {
	alg, ok := ctx.Value(idTokenAlgKey{}).(string)
	if !ok {
		alg = clientRecord(requester.GetClient()).IDTokenAlg
		ctx = withIDTokenAlg(ctx, alg)
	}
	if sess, ok := requester.GetSession().(openid.Session); ok && alg == string(jose.EdDSA) {
		// fosite hashes at_hash with SHA-256 whatever the algorithm: right
		// for RS256 and ES256, wrong for Ed25519, whose hash is SHA-512
		// (and go-oidc checks it so). at_hash is optional in the code
		// flow (OpenID Connect Core §3.1.3.6): none beats a wrong one.
		sess.IDTokenClaims().AccessTokenHash = ""
	}
	return s.DefaultStrategy.GenerateIDToken(ctx, lifespan, requester)
}

// idTokenSigner is the jwt.Signer of ID tokens: it signs with the key of
// the algorithm the context names (RS256 when it names none) and verifies,
// for id_token_hint, with whichever published key the token's kid names.
type idTokenSigner struct{ keys *keyring }

var _ jwt.Signer = (*idTokenSigner)(nil)

func (s *idTokenSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	alg, _ := ctx.Value(idTokenAlgKey{}).(string)
	key, err := s.keys.signingKey(ctx, alg)
	if err != nil {
		return "", "", err
	}
	signer := jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return key, nil }}
	return signer.Generate(ctx, claims, header)
}

func (s *idTokenSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := s.keys.verificationKey(ctx, kid, string(t.Method))
		if !ok {
			return nil, fmt.Errorf("no published %s key %q", t.Method, kid)
		}
		return key, nil
	})
}

func (s *idTokenSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

func (s *idTokenSigner) GetSignature(ctx context.Context, token string) (string, error) {
	return (&jwt.DefaultSigner{}).GetSignature(ctx, token)
}

func (s *idTokenSigner) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return (&jwt.DefaultSigner{}).Hash(ctx, in)
}

// GetSigningMethodLength is the length of the SHA-256 fosite hashes
// at_hash and c_hash with, whatever the algorithm: ES256 and EdDSA
// (Ed25519, OpenID Connect Core errata) use SHA-256 as RS256 does.
func (s *idTokenSigner) GetSigningMethodLength(ctx context.Context) int {
	return jwt.SHA256HashSize
}
