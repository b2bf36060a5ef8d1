package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/ory/fosite"

	"gatehouse/accounts"
	"gatehouse/clients"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// authorize is GET /oauth2/authorize: it validates the request, makes sure
// someone is signed in, and either answers at once from a remembered
// consent or shows the consent page.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	ar, ok := h.authorizeRequest(w, r)
	if !ok {
		return
	}
	prompts := strings.Fields(ar.GetRequestForm().Get("prompt"))
	user, signedIn := h.Sessions.Identity(r)
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		h.writeAuthorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values."))
		return
	}
	if !signedIn {
		if slices.Contains(prompts, "none") {
			h.writeAuthorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("No one is signed in."))
			return
		}
		h.toLogin(w, r, r.URL.RequestURI())
		return
	}
	if slices.Contains(prompts, "login") {
		// Sign out and come back without prompt=login, so the fresh sign-in
		// is not asked for again.
		h.Sessions.SignOut(w)
		h.toLogin(w, r, withoutPrompt(r.URL, "login"))
		return
	}
	if !slices.Contains(prompts, "consent") {
		granted, err := h.alreadyGranted(r, user.UserID, ar)
		if err != nil {
			h.writeAuthorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		if granted {
			h.issueCode(w, r, ar, user, false)
			return
		}
	}
	if slices.Contains(prompts, "none") {
		h.writeAuthorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The user has not yet allowed this app these scopes."))
		return
	}
	h.consentPage(w, r, ar, user)
}

// decide is POST /oauth2/authorize: the consent form's Allow or Deny.
// Cross-origin posts never get here (the server refuses them first), so
// the decision is the signed-in user's own.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request) {
	ar, ok := h.authorizeRequest(w, r)
	if !ok {
		return
	}
	user, signedIn := h.Sessions.Identity(r)
	if !signedIn {
		h.toLogin(w, r, "/oauth2/authorize?"+r.URL.RawQuery)
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		h.issueCode(w, r, ar, user, true)
	case "deny":
		h.writeAuthorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
	default:
		h.writeAuthorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHint("The decision must be allow or deny."))
	}
}

// authorizeRequest parses and validates an authorization request, writing
// the error itself when it fails.
func (h *Handler) authorizeRequest(w http.ResponseWriter, r *http.Request) (fosite.AuthorizeRequester, bool) {
	ctx := r.Context()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, r, http.StatusBadRequest, "The form could not be read", "The consent form was malformed or too large.", "")
			return nil, false
		}
		// The body carries only the decision; the request itself is the
		// query the consent page was shown for.
		for k := range r.PostForm {
			if k != "decision" {
				h.errorPage(w, r, http.StatusBadRequest, "The form could not be read", "The consent form carried unexpected fields.", "unexpected form field "+k)
				return nil, false
			}
		}
	}
	ar, err := h.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		h.writeAuthorizeError(w, r, ar, err)
		return nil, false
	}
	// Only the query counts: the POST body carries nothing but the decision.
	if name := repeatedParam(r.URL.Query(), authorizeParams); name != "" {
		h.writeAuthorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHintf("The %q parameter must not be repeated.", name))
		return nil, false
	}
	if name := invalidUTF8Param(r.URL.Query()); name != "" {
		h.writeAuthorizeError(w, r, ar, fosite.ErrInvalidRequest.WithHintf("The %q parameter is not valid UTF-8.", name))
		return nil, false
	}
	if err := h.checkPKCE(ar); err != nil {
		h.writeAuthorizeError(w, r, ar, err)
		return nil, false
	}
	return ar, true
}

// checkPKCE applies fosite's PKCE rules before anyone is asked to consent:
// fosite checks them only when it issues the code, after the consent page,
// so a person would allow a request that then fails.
func (h *Handler) checkPKCE(ar fosite.AuthorizeRequester) error {
	form := ar.GetRequestForm()
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && ar.GetClient().IsPublic():
		return fosite.ErrInvalidRequest.WithHint("Public clients must use PKCE: send code_challenge with code_challenge_method=S256.")
	case challenge == "" && h.cfg.RequirePKCE:
		return fosite.ErrInvalidRequest.WithHint("This server requires PKCE: send code_challenge with code_challenge_method=S256.")
	case challenge != "" && method != "S256":
		return fosite.ErrInvalidRequest.WithHint("Only code_challenge_method=S256 is supported.")
	}
	return nil
}

func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	http.Redirect(w, r, "/login?return_to="+url.QueryEscape(returnTo), http.StatusSeeOther)
}

func withoutPrompt(u *url.URL, drop string) string {
	q := u.Query()
	kept := slices.DeleteFunc(strings.Fields(q.Get("prompt")), func(p string) bool { return p == drop })
	if len(kept) == 0 {
		q.Del("prompt")
	} else {
		q.Set("prompt", strings.Join(kept, " "))
	}
	return u.Path + "?" + q.Encode()
}

// alreadyGranted reports whether the user once allowed this client every
// scope requested now.
func (h *Handler) alreadyGranted(r *http.Request, userID string, ar fosite.AuthorizeRequester) (bool, error) {
	g, err := h.Store.GetGrant(r.Context(), userID, ar.GetClient().GetID())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, s := range ar.GetRequestedScopes() {
		if !slices.Contains(g.Scopes, s) {
			return false, nil
		}
	}
	return true, nil
}

// remember adds scopes to the user's grant for the client, keeping what was
// granted before.
func (h *Handler) remember(ctx context.Context, userID, clientID string, scopes []string) error {
	now := time.Now().UTC()
	g, err := h.Store.GetGrant(ctx, userID, clientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		g = storage.Grant{UserID: userID, ClientID: clientID, CreatedAt: now}
	case err != nil:
		return err
	}
	for _, s := range scopes {
		if !slices.Contains(g.Scopes, s) {
			g.Scopes = append(g.Scopes, s)
		}
	}
	g.UpdatedAt = now
	return h.Store.PutGrant(ctx, g)
}

// issueCode grants the requested scopes (the client may only request what
// it is registered for, and the user allowed them) and redirects with the
// code and, per RFC 9207, the issuer. With remember, the consent is stored
// too. The consent, the code and its PKCE and OpenID Connect state are
// written in one transaction: one commit instead of four, and no code
// whose consent was lost.
func (h *Handler) issueCode(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, user accounts.Identity, remember bool) {
	ctx := r.Context()
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	sess := newSession()
	sess.Subject = user.UserID
	sess.Username = user.Username
	sess.Claims.Subject = user.UserID
	sess.Claims.Issuer = h.cfg.Issuer
	sess.Claims.AuthTime = user.AuthTime
	sess.Claims.RequestedAt = time.Now().UTC()
	if ar.GetGrantedScopes().Has("profile") {
		sess.Claims.Extra["preferred_username"] = user.Username
	}
	if ar.GetGrantedScopes().Has("email") {
		if err := h.addEmailClaims(ctx, sess.Claims.Extra, user.UserID); err != nil {
			h.writeAuthorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
	}
	var resp fosite.AuthorizeResponder
	err := h.Store.InTx(ctx, func(ctx context.Context) error {
		if remember {
			if err := h.remember(ctx, user.UserID, ar.GetClient().GetID(), ar.GetRequestedScopes()); err != nil {
				return fosite.ErrServerError.WithWrap(err)
			}
		}
		var err error
		resp, err = h.provider.NewAuthorizeResponse(ctx, ar, sess)
		return err
	})
	if err != nil {
		h.writeAuthorizeError(w, r, ar, err)
		return
	}
	resp.AddParameter("iss", h.cfg.Issuer)
	h.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (h *Handler) consentPage(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, user accounts.Identity) {
	// fosite loaded the client through the adapter's GetClient, so it is
	// the stored record already; no second query.
	fc, ok := ar.GetClient().(client)
	if !ok {
		h.writeAuthorizeError(w, r, ar, fosite.ErrServerError.WithHintf("unexpected client type %T", ar.GetClient()))
		return
	}
	c := fc.Client
	owner := ""
	if c.OwnerID != "" {
		if u, err := h.Store.GetUser(r.Context(), c.OwnerID); err == nil {
			owner = u.Username
		}
	}
	action := "/oauth2/authorize?" + r.URL.RawQuery
	page := h.NewPage(r, "Allow "+c.Name+"?")
	h.render(w, r, http.StatusOK, templates.Consent(templates.ConsentView{
		Page:           page,
		ClientName:     c.Name,
		ClientOwner:    owner,
		RedirectHost:   redirectHost(ar.GetRedirectURI()),
		Scopes:         clients.DescribeScopes(ar.GetRequestedScopes()),
		Action:         action,
		SwitchReturnTo: "/login?return_to=" + url.QueryEscape(action),
	}))
}

// redirectHost is what the consent page shows as the destination: the host
// (with a port other than the default), or the whole scheme for private-use
// schemes of native apps.
func redirectHost(u *url.URL) string {
	if u.Host == "" {
		return u.Scheme + ":"
	}
	return u.Host
}

// writeAuthorizeError redirects an error to the client only when the
// client and redirect URI were verified; otherwise it explains the problem
// on a page and goes nowhere.
func (h *Handler) writeAuthorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	h.logFailure(r.Context(), "authorization request", err)
	if ar == nil || !ar.IsRedirectURIValid() {
		h.authorizeErrorPage(w, r, rfc)
		return
	}
	u := *ar.GetRedirectURI()
	u.Fragment = ""
	q := u.Query()
	q.Set("error", rfc.ErrorField)
	if d := rfc.GetDescription(); d != "" {
		q.Set("error_description", d)
	}
	if s := ar.GetState(); s != "" {
		q.Set("state", s)
	}
	q.Set("iss", h.cfg.Issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
}

func (h *Handler) authorizeErrorPage(w http.ResponseWriter, r *http.Request, rfc *fosite.RFC6749Error) {
	message := "This app sent a sign-in request that cannot be trusted, so you have not been sent back to it."
	detail := rfc.ErrorField + ": " + rfc.GetDescription()
	status := max(rfc.CodeField, http.StatusBadRequest)
	switch {
	case rfc.ErrorField == fosite.ErrInvalidClient.ErrorField:
		message = "This app is not registered with this server, so you have not been sent anywhere."
		detail = "invalid_client: no client is registered with this client_id."
		// fosite's 401 is for the token endpoint; here no client is
		// authenticating, the request itself is bad.
		status = http.StatusBadRequest
	case rfc.CodeField >= 500:
		message = "Something went wrong on our side. Please try again."
		detail = ""
	}
	h.errorPage(w, r, status, "This sign-in request can't continue", message, detail)
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, message, detail string) {
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, templates.Error(templates.ErrorView{
		Page:    h.NewPage(r, heading),
		Heading: heading,
		Message: message,
		Detail:  detail,
	}))
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	if err := templates.Write(r.Context(), w, status, c); err != nil {
		h.Logger.ErrorContext(r.Context(), "render page", "err", err)
	}
}
