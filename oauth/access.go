package oauth

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"

	"gatehouse/storage"
)

// accessToken is a live access token as a resource or an introspection
// sees it.
type accessToken struct {
	Principal
	JKT         string // the DPoP key it is bound to; "" for a bearer token
	RequestedAt time.Time
	ExpiresAt   time.Time
}

// errNoAccessToken is the cause of checkAccessToken's error when the
// token is no access token at all (it might be a refresh token), rather
// than an expired or revoked one.
var errNoAccessToken = errors.New("no such access token")

// checkAccessToken checks token as fosite's introspection of an access
// token does, in the opposite order: the HMAC first, so a forged token
// costs no query, then one row read by signature without the stored
// request, whose decoding was the largest cost of every API call. A row
// written without claims (before migration 0014) goes through fosite.
// Every failure is a fosite error: ErrRequestUnauthorized or
// ErrTokenExpired for a token that is not a live access token (wrapping
// errNoAccessToken when it is none at all), ErrServerError when the
// database failed.
func (h *Handler) checkAccessToken(ctx context.Context, token string) (accessToken, error) {
	sig := h.strategy.AccessTokenSignature(ctx, token)
	if sig == "" {
		return accessToken{}, fosite.ErrRequestUnauthorized.WithWrap(errNoAccessToken).WithDebug("The token is malformed.")
	}
	if !h.accessMAC.valid(trimPrefix(token, accessTokenPrefix, "ory_at_")) {
		return accessToken{}, fosite.ErrRequestUnauthorized.WithWrap(errNoAccessToken).WithDebug("The token's signature does not match.")
	}
	t, err := h.Store.GetTokenClaims(ctx, storage.KindAccess, sig)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return accessToken{}, fosite.ErrRequestUnauthorized.WithWrap(errNoAccessToken)
	case err != nil:
		return accessToken{}, fosite.ErrServerError.WithWrap(err)
	case !t.Active:
		return accessToken{}, fosite.ErrRequestUnauthorized.WithWrap(fosite.ErrInactiveToken)
	case t.Claims == nil:
		return h.introspectAccessToken(ctx, token)
	case !t.ExpiresAt.After(time.Now()):
		return accessToken{}, fosite.ErrTokenExpired.WithHintf("Access token expired at '%s'.", t.ExpiresAt)
	}
	return accessToken{
		Principal: Principal{
			UserID:      t.Subject,
			Username:    t.Claims.Username,
			ClientID:    t.ClientID,
			Scopes:      t.Claims.Scopes,
			Audience:    t.Claims.Audience,
			BookChanges: t.SubjectBookChanges,
		},
		JKT:         t.Claims.JKT,
		RequestedAt: t.RequestedAt,
		ExpiresAt:   t.ExpiresAt,
	}, nil
}

// introspectAccessToken is fosite's check of an access token, from the
// stored request.
func (h *Handler) introspectAccessToken(ctx context.Context, token string) (accessToken, error) {
	sess := newSession()
	use, ar, err := h.provider.IntrospectToken(ctx, token, fosite.AccessToken, sess)
	if err != nil {
		return accessToken{}, err
	}
	if use != fosite.AccessToken {
		return accessToken{}, fosite.ErrRequestUnauthorized.WithHint("The token is not an access token.")
	}
	return introspected(use, ar, sess), nil
}

// introspected is what fosite's introspection found of a token of use.
func introspected(use fosite.TokenUse, ar fosite.AccessRequester, sess *session) accessToken {
	return accessToken{
		Principal: Principal{
			UserID:   sess.Subject,
			Username: sess.Username,
			ClientID: ar.GetClient().GetID(),
			Scopes:   ar.GetGrantedScopes(),
			Audience: ar.GetGrantedAudience(),
		},
		JKT:         sess.JKT,
		RequestedAt: ar.GetRequestedAt(),
		ExpiresAt:   sess.GetExpiresAt(fosite.TokenType(use)),
	}
}
