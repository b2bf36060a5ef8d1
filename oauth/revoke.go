package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"gatehouse/storage"
)

// revoke is POST /oauth2/revoke (RFC 7009). fosite authenticates the
// client and refuses a token issued to another client. The answer is
// written here because fosite's writer turns every other error, a storage
// failure included, into 200: a client would believe a token revoked that
// still works.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := h.parseTokenRequestForm(w, r)
	if err == nil {
		err = h.provider.NewRevocationRequest(ctx, r)
	}
	switch {
	case err != nil && fosite.ErrorToRFC6749Error(err).ErrorField == fosite.ErrInvalidClient.ErrorField:
		// fosite wraps an unknown client's ErrNotFound, which must not
		// pass for an unknown token below.
		h.writeTokenError(w, r, nil, err)
	case err == nil,
		// RFC 7009 §2.2: an invalid token is not an error, and another
		// client's token is, to this client, an invalid one. Saying so
		// would tell it the token exists; the token itself is untouched.
		errors.Is(err, fosite.ErrUnauthorizedClient),
		errors.Is(err, fosite.ErrNotFound),
		errors.Is(err, fosite.ErrInactiveToken):
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	default:
		h.writeTokenError(w, r, nil, err)
	}
}

func (h *Handler) parseTokenRequestForm(w http.ResponseWriter, r *http.Request) error {
	if err := readForm(w, r, tokenManagementParams); err != nil {
		return err
	}
	if r.PostForm.Get("token") == "" {
		return fosite.ErrInvalidRequest.WithHint("The token parameter is missing.")
	}
	// RFC 7009 and RFC 7662 require client authentication.
	if err := clientAuthProblem(r); err != nil {
		return err
	}
	return nil
}

// introspection is the RFC 7662 answer.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	TokenUse  string `json:"token_use,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Iss       string `json:"iss,omitempty"`
	// Aud lists the resources the token is for (RFC 8707).
	Aud []string `json:"aud,omitempty"`
	// Cnf names the DPoP key an access token is bound to (RFC 9449 §6.2).
	Cnf *confirmation `json:"cnf,omitempty"`
}

type confirmation struct {
	JKT string `json:"jkt"`
}

// introspect is POST /oauth2/introspect. Unlike fosite's own endpoint it
// accepts only a confidential client's credentials (fosite would take any
// access token as the caller's credential), and it reports a token as
// active only to the client it was issued to, so one client cannot learn
// about another's tokens.
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := h.parseTokenRequestForm(w, r); err != nil {
		h.writeTokenError(w, r, nil, err)
		return
	}
	token, hint := r.PostForm.Get("token"), fosite.TokenUse(r.PostForm.Get("token_type_hint"))
	caller, at, err := h.introspectCallerAndToken(ctx, r, token, hint)
	if caller == nil {
		h.writeTokenError(w, r, nil, err)
		return
	}
	use := fosite.AccessToken
	if hint == fosite.RefreshToken || errors.Is(err, errNoAccessToken) {
		// Perhaps a refresh token: fosite tries both kinds, as RFC 7662
		// §2.1 asks whatever the hint says.
		sess := newSession()
		var ar fosite.AccessRequester
		use, ar, err = h.provider.IntrospectToken(ctx, token, hint, sess)
		if err == nil {
			at = introspected(use, ar, sess)
		}
	}
	answer := introspection{}
	if err == nil && at.ClientID == caller.GetID() {
		answer = introspection{
			Active:   true,
			Scope:    strings.Join(at.Scopes, " "),
			ClientID: at.ClientID,
			Username: at.Username,
			TokenUse: string(use),
			Iat:      at.RequestedAt.Unix(),
			Sub:      at.UserID,
			Iss:      h.cfg.Issuer,
			Aud:      at.Audience,
		}
		if use == fosite.AccessToken {
			answer.TokenType = "Bearer"
			if at.JKT != "" {
				answer.TokenType = "DPoP"
				answer.Cnf = &confirmation{JKT: at.JKT}
			}
		}
		// Expired tokens were refused above; a zero expiry means the
		// token does not expire.
		if !at.ExpiresAt.IsZero() {
			answer.Exp = at.ExpiresAt.Unix()
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

// introspectCallerAndToken authenticates the caller and, unless the hint
// names a refresh token, checks token as an access token. The caller's
// client is looked up without its own freshness read, which the token's
// read carries instead (storage.ClientCheck); when that read did not
// confirm it (a client was written since it was cached, or there was no
// row to read), both are done again from the database. A nil caller comes
// with the authentication error; otherwise the error is the token's.
func (h *Handler) introspectCallerAndToken(ctx context.Context, r *http.Request, token string, hint fosite.TokenUse) (fosite.Client, accessToken, error) {
	if hint == fosite.RefreshToken {
		// fosite's read of a refresh token carries no count.
		caller, err := h.introspectionCaller(ctx, r)
		return caller, accessToken{}, err
	}
	checked, check := storage.DeferClientCheck(ctx)
	caller, at, err := h.callerAndAccessToken(checked, r, token)
	if check.Stale() {
		caller, at, err = h.callerAndAccessToken(ctx, r, token)
	}
	return caller, at, err
}

func (h *Handler) callerAndAccessToken(ctx context.Context, r *http.Request, token string) (fosite.Client, accessToken, error) {
	caller, err := h.introspectionCaller(ctx, r)
	if err != nil {
		return nil, accessToken{}, err
	}
	at, err := h.checkAccessToken(ctx, token)
	return caller, at, err
}

// introspectionCaller authenticates the confidential client calling the
// introspection endpoint.
func (h *Handler) introspectionCaller(ctx context.Context, r *http.Request) (fosite.Client, error) {
	caller, err := h.provider.(*fosite.Fosite).AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		return nil, err
	}
	if caller.IsPublic() {
		return nil, fosite.ErrInvalidClient.WithHint("Only confidential clients may introspect tokens.")
	}
	return caller, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = jsonEncode(w, v)
}

// jsonEncode writes v; an error means the client went away, and there is
// no one left to tell.
func jsonEncode(w http.ResponseWriter, v any) error {
	return json.NewEncoder(w).Encode(v)
}
