package oauth

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"gatehouse/accounts"
)

// The authentication context classes (the ID token's acr) this server
// tells apart, advertised in discovery: a password alone, or a password
// and a second factor. An app asks for the second with acr_values; a user
// who has none set up signs in with the password alone all the same, and
// the acr says so.
const (
	ACRPassword = "urn:gatehouse:acr:pwd"
	ACRMFA      = "urn:gatehouse:acr:mfa"
)

// acrOf is the class of a sign-in by its methods.
func acrOf(amr []string) string {
	if slices.Contains(amr, accounts.AMRMFA) {
		return ACRMFA
	}
	return ACRPassword
}

// wantsMFA reports whether the request's acr_values ask for a second
// factor.
func wantsMFA(q url.Values) bool {
	return slices.Contains(strings.Fields(q.Get("acr_values")), ACRMFA)
}

// stepUp sends a user signed in with a password alone through the code
// step, and back to this request, when the request asks for ACRMFA and the
// user has a second factor; the session is not ended first. It reports
// whether it answered the request.
func (h *Handler) stepUp(w http.ResponseWriter, r *http.Request, req *authzRequest, user accounts.Identity, promptNone bool) bool {
	if h.SecondFactor == nil || !wantsMFA(req.query) || slices.Contains(user.AMR, accounts.AMRMFA) {
		return false
	}
	has, err := h.SecondFactor(r.Context(), user.UserID)
	if err != nil {
		h.writeAuthorizeError(w, r, req, fosite.ErrServerError.WithWrap(err))
		return true
	}
	if !has {
		return false
	}
	if promptNone {
		h.writeAuthorizeError(w, r, req, fosite.ErrLoginRequired.WithHint("The request asks for a second factor, which the user must enter."))
		return true
	}
	returnTo := r.URL.Path + "?" + r.URL.RawQuery
	http.Redirect(w, r, accounts.CodeStepPath+"?return_to="+url.QueryEscape(returnTo), http.StatusSeeOther)
	return true
}
