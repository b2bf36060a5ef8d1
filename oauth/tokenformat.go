package oauth

import (
	"context"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"
)

// tokenStrategy is fosite's HMAC token strategy with prefixes that name
// Gatehouse, so that a leaked token says where it belongs: secret scanners
// and people reading a log can match gatehouse_at_, gatehouse_rt_ and
// gatehouse_ac_. The signature, what storage keys a token by, is the part
// after the dot and does not change with the prefix; tokens issued before
// the prefix changed (ory_at_ and the like, fosite's own) still validate
// until they expire.
type tokenStrategy struct {
	*oauth2.HMACSHAStrategyUnPrefixed
}

var _ oauth2.CoreStrategy = tokenStrategy{}

func newTokenStrategy(cfg *fosite.Config) tokenStrategy {
	return tokenStrategy{oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: cfg}, cfg)}
}

// Token prefixes, by kind.
const (
	accessTokenPrefix  = "gatehouse_at_"
	refreshTokenPrefix = "gatehouse_rt_"
	codePrefix         = "gatehouse_ac_"
)

// trimPrefix removes the kind's prefix, Gatehouse's or fosite's.
func trimPrefix(token, prefix, legacy string) string {
	if t, ok := strings.CutPrefix(token, prefix); ok {
		return t
	}
	return strings.TrimPrefix(token, legacy)
}

func withPrefix(prefix, token, signature string, err error) (string, string, error) {
	if err != nil || token == "" {
		return token, signature, err
	}
	return prefix + token, signature, nil
}

func (s tokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, signature, err := s.HMACSHAStrategyUnPrefixed.GenerateAccessToken(ctx, r)
	return withPrefix(accessTokenPrefix, token, signature, err)
}

func (s tokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	return s.HMACSHAStrategyUnPrefixed.ValidateAccessToken(ctx, r, trimPrefix(token, accessTokenPrefix, "ory_at_"))
}

func (s tokenStrategy) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, signature, err := s.HMACSHAStrategyUnPrefixed.GenerateRefreshToken(ctx, r)
	return withPrefix(refreshTokenPrefix, token, signature, err)
}

func (s tokenStrategy) ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error {
	return s.HMACSHAStrategyUnPrefixed.ValidateRefreshToken(ctx, r, trimPrefix(token, refreshTokenPrefix, "ory_rt_"))
}

func (s tokenStrategy) GenerateAuthorizeCode(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, signature, err := s.HMACSHAStrategyUnPrefixed.GenerateAuthorizeCode(ctx, r)
	return withPrefix(codePrefix, token, signature, err)
}

func (s tokenStrategy) ValidateAuthorizeCode(ctx context.Context, r fosite.Requester, token string) error {
	return s.HMACSHAStrategyUnPrefixed.ValidateAuthorizeCode(ctx, r, trimPrefix(token, codePrefix, "ory_ac_"))
}
