package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-jose/go-jose/v3/jwt"

	"gatehouse/storage"
	"gatehouse/web/templates"
)

// logoutParams are RP-Initiated Logout 1.0 §2's parameters and the
// confirmation form's decision; none may be repeated.
var logoutParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "decision"}

// originCheck guards the confirmation: POST /oauth2/logout is open to
// cross-site forms, as relying parties may post their sign-out requests,
// but only a form of this server's own may confirm one.
var originCheck = http.NewCrossOriginProtection()

// endSession is GET and POST /oauth2/logout (OpenID Connect RP-Initiated
// Logout 1.0). A valid id_token_hint naming the signed-in user signs out at
// once; anything less asks the user first, so no other site can sign
// people out. The browser is sent only to a post_logout_redirect_uri the
// client registered.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.logoutError(w, r, "The sign-out request could not be read.", "")
			return
		}
		params = r.PostForm
	}
	if name := repeatedParam(params, logoutParams); name != "" {
		h.logoutError(w, r, "The sign-out request is malformed.", "invalid_request: the "+name+" parameter must not be repeated.")
		return
	}
	if name := invalidUTF8Param(params); name != "" {
		h.logoutError(w, r, "The sign-out request is malformed.", "invalid_request: the "+name+" parameter is not valid UTF-8.")
		return
	}
	hint, hinted := h.verifyIDTokenHint(ctx, params.Get("id_token_hint"))
	clientID := params.Get("client_id")
	if hinted {
		switch {
		case clientID == "":
			clientID = hint.Audience[0]
		case !slices.Contains(hint.Audience, clientID):
			h.logoutError(w, r, "The sign-out request is inconsistent.", "invalid_request: client_id is not an audience of id_token_hint.")
			return
		}
	}
	var clientName string
	redirect := params.Get("post_logout_redirect_uri")
	if clientID != "" {
		c, err := h.Store.GetClient(ctx, clientID)
		if errors.Is(err, storage.ErrNotFound) {
			h.logoutError(w, r, "The app asking to sign you out is not registered with this server.", "invalid_request: no client is registered with this client_id.")
			return
		}
		if err != nil {
			h.Logger.ErrorContext(ctx, "sign-out request", "err", err)
			h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. Please try again.", "")
			return
		}
		clientName = c.Name
		if redirect != "" && !slices.Contains(c.PostLogoutRedirectURIs, redirect) {
			h.logoutError(w, r, "This app asked to send you to an address it has not registered, so you have not been sent there.", "invalid_request: post_logout_redirect_uri is not registered for this client.")
			return
		}
	} else if redirect != "" {
		h.logoutError(w, r, "This sign-out request names no app, so its return address cannot be checked.", "invalid_request: post_logout_redirect_uri needs id_token_hint or client_id.")
		return
	}
	user, signedIn := h.Sessions.Identity(r)
	confirmed := r.Method == http.MethodPost && params.Get("decision") == "logout"
	if confirmed {
		if err := originCheck.Check(r); err != nil {
			http.Error(w, "Cross-origin form posts are not accepted.", http.StatusForbidden)
			return
		}
	}
	if signedIn && !confirmed && !(hinted && hint.Subject == user.UserID) {
		hidden := []templates.HiddenField{}
		for _, name := range []string{"id_token_hint", "post_logout_redirect_uri", "state", "ui_locales"} {
			if v := params.Get(name); v != "" {
				hidden = append(hidden, templates.HiddenField{Name: name, Value: v})
			}
		}
		if clientID != "" {
			hidden = append(hidden, templates.HiddenField{Name: "client_id", Value: clientID})
		}
		w.Header().Set("Cache-Control", "no-store")
		h.render(w, r, http.StatusOK, templates.LogoutConfirm(templates.LogoutConfirmView{
			Page:       h.NewPage(r, "Sign out?"),
			ClientName: clientName,
			Hidden:     hidden,
		}))
		return
	}
	if signedIn {
		if err := h.Sessions.SignOut(w, r); err != nil {
			h.Logger.ErrorContext(r.Context(), "sign out", "err", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if redirect == "" {
		page := h.NewPage(r, "Signed out")
		page.User = ""
		h.render(w, r, http.StatusOK, templates.SignedOut(templates.SignedOutView{Page: page}))
		return
	}
	u, err := url.Parse(redirect)
	if err != nil {
		h.logoutError(w, r, "This app's return address is malformed.", "")
		return
	}
	if state := params.Get("state"); state != "" {
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// verifyIDTokenHint checks that hint is an ID token this server signed
// with a key it still publishes, for some client. Expiry is not checked:
// RP-Initiated Logout §2 lets an expired ID token identify the session.
// Anything that fails counts as no hint at all.
func (h *Handler) verifyIDTokenHint(ctx context.Context, hint string) (jwt.Claims, bool) {
	if hint == "" || len(hint) > maxFormBytes {
		return jwt.Claims{}, false
	}
	tok, err := jwt.ParseSigned(hint)
	if err != nil || len(tok.Headers) != 1 {
		return jwt.Claims{}, false
	}
	// The key must be one published for the algorithm the token names.
	key, ok := h.keys.verificationKey(ctx, tok.Headers[0].KeyID, tok.Headers[0].Algorithm)
	if !ok {
		return jwt.Claims{}, false
	}
	var claims jwt.Claims
	if err := tok.Claims(key, &claims); err != nil {
		return jwt.Claims{}, false
	}
	if claims.Issuer != h.cfg.Issuer || len(claims.Audience) == 0 || claims.Subject == "" {
		return jwt.Claims{}, false
	}
	return claims, true
}

// logoutError explains a refused sign-out request and goes nowhere.
func (h *Handler) logoutError(w http.ResponseWriter, r *http.Request, message, detail string) {
	h.errorPage(w, r, http.StatusBadRequest, "This sign-out request can't continue", message, detail)
}
