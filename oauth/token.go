package oauth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"gatehouse/clients"
	"gatehouse/storage"
)

// Metrics counts protocol events for the operator.
type Metrics interface {
	// TokenIssued is called after a successful token response; grantType
	// is the request's grant_type.
	TokenIssued(grantType string)
	// ClientAuthFailed is called for every invalid_client answer.
	ClientAuthFailed()
}

// token is POST /oauth2/token.
func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := readForm(w, r, tokenParams); err != nil {
		h.writeTokenError(w, r, nil, err)
		return
	}
	if err := clientAuthProblem(r); err != nil {
		h.writeTokenError(w, r, nil, err)
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "", "authorization_code", "refresh_token", "client_credentials", clients.GrantDeviceCode:
	default:
		// fosite reports a grant no handler takes as invalid_request; RFC
		// 6749 §5.2 names it. The password and implicit grants are gone
		// in OAuth 2.1 and are not offered.
		h.writeTokenError(w, r, nil, fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported.", gt))
		return
	}
	ar, resp, err := h.accessResponse(ctx, w, r)
	if errors.Is(err, errInGrace) {
		h.replayGrace(w, r, ar)
		return
	}
	if err != nil {
		h.writeTokenError(w, r, ar, err)
		return
	}
	if h.cfg.RefreshGrace > 0 && ar.GetGrantTypes().ExactOne("refresh_token") {
		// Until this is stored, a repeat of the request waits for it
		// (replayGrace); failing to store it only costs that repeat.
		if err := h.sealGrace(ctx, r.PostForm.Get("refresh_token"), resp); err != nil {
			h.Logger.ErrorContext(ctx, "store refresh grace answer", "err", err)
		}
	}
	h.setNonce(w)
	h.provider.WriteAccessResponse(ctx, w, ar, resp)
	if h.Metrics != nil {
		h.Metrics.TokenIssued(strings.Join(ar.GetGrantTypes(), " "))
	}
}

// accessResponse runs the grant. A client_credentials request that
// authenticates with its secret and binds no DPoP key runs it first with
// its client looked up unchecked, the token's insert confirming the client
// (storage.ClientCheck), and again against the database when anything
// failed, the confirmation included. Only that grant is tried so: its one
// write is the token itself, so the first try leaves nothing behind, while
// the other grants consume a code or a refresh token, and a DPoP proof or
// a client assertion is used once.
func (h *Handler) accessResponse(ctx context.Context, w http.ResponseWriter, r *http.Request) (fosite.AccessRequester, fosite.AccessResponder, error) {
	f := r.PostForm
	if f.Get("grant_type") == "client_credentials" && len(r.Header.Values("DPoP")) == 0 &&
		!f.Has("client_assertion") && !f.Has("client_assertion_type") {
		checked, check := storage.DeferClientCheck(ctx)
		ar, resp, err := h.grant(checked, w, r)
		if err == nil && !check.Stale() {
			return ar, resp, nil
		}
	}
	return h.grant(ctx, w, r)
}

// grant is fosite's access request and response with Gatehouse's checks
// between them. It answers nothing itself, beyond DPoP's headers; a
// refresh token already rotated within the grace period is errInGrace.
func (h *Handler) grant(ctx context.Context, w http.ResponseWriter, r *http.Request) (fosite.AccessRequester, fosite.AccessResponder, error) {
	// Each attempt remembers its own rows: a second one must read afresh.
	ctx = withMemo(ctx)
	ar, err := h.provider.NewAccessRequest(ctx, r, newSession())
	if err != nil {
		return ar, nil, err
	}
	if ar.GetGrantTypes().ExactOne("refresh_token") {
		// fosite ignores a refresh request's scope parameter; RFC 6749 §6
		// says it must not ask for more than the grant holds.
		for _, s := range strings.Fields(r.PostForm.Get("scope")) {
			if !ar.GetGrantedScopes().Has(s) {
				return ar, nil, fosite.ErrInvalidScope.WithHintf("The scope %q was not granted originally and cannot be added on refresh.", s)
			}
		}
	}
	// Every scope Gatehouse defines acts for a person, so a client acting
	// for itself gets a token without scope and asking for one is refused.
	if s := ar.GetRequestedScopes(); ar.GetGrantTypes().ExactOne("client_credentials") && len(s) > 0 {
		return ar, nil, fosite.ErrInvalidScope.WithHintf("The scope %q needs an end user and cannot be granted to a client acting for itself.", s[0])
	}
	bound, err := h.bindDPoP(w, r, ar)
	if err != nil {
		return ar, nil, err
	}
	aud, narrowed, err := h.tokenAudience(ar)
	if err != nil {
		return ar, nil, err
	}
	if narrowed {
		ctx = context.WithValue(ctx, audienceKey{}, aud)
	}
	ctx = withIDTokenAlg(ctx, clientRecord(ar.GetClient()).IDTokenAlg)
	resp, err := h.provider.NewAccessResponse(ctx, ar)
	if err != nil && h.cfg.RefreshGrace > 0 && ar.GetGrantTypes().ExactOne("refresh_token") &&
		h.fs.inGrace(ctx, h.strategy.RefreshTokenSignature(ctx, r.PostForm.Get("refresh_token"))) {
		// A racing rotation of the same token won between fosite's read
		// and this request's own rotation.
		return ar, nil, errInGrace
	}
	if err != nil {
		return ar, nil, err
	}
	if bound {
		resp.SetTokenType("DPoP")
	}
	return ar, resp, nil
}

// writeTokenError answers with RFC 6749 §5.2 JSON, closing two gaps in
// fosite: the losers of a race for one code or refresh token get
// invalid_grant rather than server_error or invalid_request, and a failed
// basic authentication carries WWW-Authenticate.
func (h *Handler) writeTokenError(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	switch {
	case errors.Is(err, errGrantRevoked):
		err = fosite.ErrInvalidGrant.WithHint("The user has revoked this app's access.")
	case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) && rfc.ErrorField != fosite.ErrInvalidGrant.ErrorField:
		err = fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
	case errors.Is(err, fosite.ErrInactiveToken) && rfc.ErrorField != fosite.ErrInvalidGrant.ErrorField:
		err = fosite.ErrInvalidGrant.WithHint("The refresh token has already been used.")
	case errors.Is(err, fosite.ErrTokenSignatureMismatch) && rfc.ErrorField != fosite.ErrInvalidGrant.ErrorField:
		// fosite says invalid_request for a refresh token whose signature
		// fails, one made under a retired secret for instance.
		err = fosite.ErrInvalidGrant.WithHint("The refresh token is not valid.")
	case errors.Is(err, fosite.ErrNotFound) && rfc.ErrorField == fosite.ErrInvalidRequest.ErrorField:
		// A racing refresh whose token another racer's reuse detection
		// already deleted: fosite calls that invalid_request.
		err = fosite.ErrInvalidGrant.WithHint("The refresh token is no longer valid.")
	case errors.Is(err, fosite.ErrNotFound) && rfc.ErrorField == fosite.ErrServerError.ErrorField:
		// fosite reads a code twice; when a revoke deleted it between the
		// reads it calls the second miss server_error.
		err = fosite.ErrInvalidGrant.WithHint("The authorization code is no longer valid.")
	}
	rfc = fosite.ErrorToRFC6749Error(err)
	h.logFailure(r.Context(), "token request", err)
	h.challenge(w, r, rfc)
	h.provider.WriteAccessError(r.Context(), w, ar, err)
}

// clientAuthProblem closes two gaps in fosite's client authentication.
// RFC 6749 §5.2 makes a request without client authentication, or with a
// Basic header that does not decode, invalid_client (fosite says
// invalid_request, so no 401 and no challenge), and §2.3 forbids using
// more than one method in a request (fosite silently prefers the header).
func clientAuthProblem(r *http.Request) error {
	_, _, basic := r.BasicAuth()
	switch {
	case !basic && r.PostForm.Get("client_id") == "" && r.PostForm.Get("client_assertion") == "":
		return fosite.ErrInvalidClient.WithHint("The request carries no valid client authentication.")
	case (basic || r.PostForm.Has("client_assertion")) && r.PostForm.Has("client_secret"),
		basic && r.PostForm.Has("client_assertion"):
		return fosite.ErrInvalidRequest.WithHint("Authenticate the client one way only: HTTP Basic, a secret in the body, or a client assertion.")
	}
	return nil
}

// challenge adds WWW-Authenticate to every invalid_client answer (RFC 6749
// §5.2, RFC 9110 §15.5.2: a 401 carries a challenge whatever the client
// tried): Basic, the method the contract names, unless the request's
// Authorization header used another scheme, which is then challenged.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, rfc *fosite.RFC6749Error) {
	if rfc.ErrorField != fosite.ErrInvalidClient.ErrorField {
		return
	}
	// Every invalid_client answer passes here, whichever endpoint gave it.
	if h.Metrics != nil {
		h.Metrics.ClientAuthFailed()
	}
	scheme := "Basic"
	if s, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); s != "" && !strings.EqualFold(s, "basic") && isToken(s) {
		scheme = s
	}
	w.Header().Set("WWW-Authenticate", scheme+` realm="gatehouse"`)
}

// isToken reports whether s is an RFC 9110 token, so that a scheme echoed
// into a header cannot carry anything else.
func isToken(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
