package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ory/fosite"

	"gatehouse/storage"
)

// dpopCheck is the check for a proof sent with r to this server.
func (h *Handler) dpopCheck(r *http.Request, accessToken string) DPoPCheck {
	chk := DPoPCheck{Method: r.Method, URL: h.cfg.Issuer + r.URL.EscapedPath(), Now: time.Now(), AccessToken: accessToken}
	if h.nonces != nil {
		chk.Nonce = func(n string) bool { return h.nonces.valid(n, chk.Now) }
	}
	return chk
}

// setNonce hands out the current server nonce, when nonces are on.
func (h *Handler) setNonce(w http.ResponseWriter) {
	if h.nonces != nil {
		w.Header().Set("DPoP-Nonce", h.nonces.current(time.Now()))
	}
}

// bindDPoP applies RFC 9449 §5 to a token request: a valid proof binds the
// tokens to be issued to its key. A code requested with dpop_jkt, a refresh
// token bound to a key (public clients) and a client registered with
// dpop_bound_access_tokens all demand a proof with their key. It reports
// whether the tokens are bound.
func (h *Handler) bindDPoP(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester) (bool, error) {
	sess, ok := ar.GetSession().(*session)
	if !ok {
		return false, fosite.ErrServerError.WithHintf("unexpected session type %T", ar.GetSession())
	}
	c := clientRecord(ar.GetClient())
	refresh := ar.GetGrantTypes().ExactOne("refresh_token")
	// A confidential client's refresh token is bound to its client
	// authentication instead, so each refresh may bind a new key (§5).
	prior := sess.JKT
	if refresh && !c.Public {
		prior = ""
	}
	headers := r.Header.Values("DPoP")
	if len(headers) == 0 {
		switch {
		case c.DPoPBound:
			return false, dpopFailure(w, h, badProof("This client must send a DPoP proof with every token request."))
		case prior != "":
			return false, dpopFailure(w, h, badProof("This grant is bound to a DPoP key; send a proof made with it."))
		}
		sess.JKT = ""
		return false, nil
	}
	jkt, err := VerifyDPoP(r.Context(), headers, h.dpopCheck(r, ""), h.Store)
	if err != nil {
		return false, dpopFailure(w, h, err)
	}
	if prior != "" && prior != jkt {
		return false, dpopFailure(w, h, badProof("The DPoP proof is made with another key than the one this grant is bound to."))
	}
	sess.JKT = jkt
	return true, nil
}

// dpopFailure turns a failed proof at the token endpoint into its RFC 9449
// §5 answer: 400 with invalid_dpop_proof or, with a fresh nonce in
// DPoP-Nonce, use_dpop_nonce.
func dpopFailure(w http.ResponseWriter, h *Handler, err error) error {
	var de *DPoPError
	if !errors.As(err, &de) {
		return fosite.ErrServerError.WithWrap(err)
	}
	if de.Code == "use_dpop_nonce" {
		h.setNonce(w)
	}
	return &fosite.RFC6749Error{ErrorField: de.Code, DescriptionField: de.Description, CodeField: http.StatusBadRequest}
}

// clientRecord is the stored client behind a fosite client.
func clientRecord(c fosite.Client) storage.Client {
	switch c := c.(type) {
	case client:
		return c.Client
	case *storedClient:
		return c.get().Client
	}
	return storage.Client{ID: c.GetID(), Public: c.IsPublic()}
}

// dpopChallenge is the DPoP WWW-Authenticate challenge (RFC 9449 §7.1).
// metadata, when set, is the resource's RFC 9728 document, named as in
// the Bearer challenge.
func dpopChallenge(code, description, metadata string) string {
	if code == "" {
		return fmt.Sprintf(`DPoP algs=%q`, algNames(DPoPAlgs)) + metadataParam(metadata)
	}
	return fmt.Sprintf(`DPoP algs=%q, error=%q, error_description=%q`, algNames(DPoPAlgs), code, description) + metadataParam(metadata)
}

// dpopResourceError answers a resource request whose DPoP proof or
// binding failed: 401 with the DPoP challenge.
func (h *Handler) dpopResourceError(w http.ResponseWriter, code, description, metadata string) {
	if code == "use_dpop_nonce" {
		h.setNonce(w)
	}
	w.Header().Set("WWW-Authenticate", dpopChallenge(code, description, metadata))
	writeJSON(w, http.StatusUnauthorized, errorBody{code, description})
}
