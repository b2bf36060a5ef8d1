package oauth

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"
	"github.com/ory/fosite"

	"gatehouse/accounts"
	"gatehouse/audit"
	"gatehouse/clients"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// authzRequest is an authorization request whose client and redirect URI
// Gatehouse has checked itself before fosite sees it: from then on every
// answer may go to redirect.
type authzRequest struct {
	// client is the client as fosite sees it, its redirect URIs narrowed
	// to the one this request matched.
	client client
	// redirect is where answers go: the redirect URI as sent, or the
	// client's only one when none was sent.
	redirect *url.URL
	// registered is the registered redirect URI that redirect matched.
	registered string
	state      string
	mode       fosite.ResponseModeType
	query      url.Values
	// ar is fosite's parse of the request, nil until fosite accepted it.
	ar fosite.AuthorizeRequester
}

// authorize is GET /oauth2/authorize: it validates the request, makes sure
// someone has signed in recently enough, and either answers at once from a
// remembered consent or shows the consent page.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		// A link checker's HEAD must not be what issues a code: nothing
		// on this endpoint is safe to answer without the body.
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "Use GET or POST.", http.StatusMethodNotAllowed)
		return
	}
	r, ok := h.withDocument(w, r)
	if !ok {
		return
	}
	req, ok := h.authorizeRequest(w, r)
	if !ok {
		return
	}
	prompts := strings.Fields(req.query.Get("prompt"))
	user, signedIn := h.Sessions.Identity(r)
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		h.writeAuthorizeError(w, r, req, fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values."))
		return
	}
	if !signedIn {
		if slices.Contains(prompts, "none") {
			h.writeAuthorizeError(w, r, req, fosite.ErrLoginRequired.WithHint("No one is signed in."))
			return
		}
		h.toLogin(w, r, r.URL.RequestURI())
		return
	}
	fresh, err := freshEnough(req.query, user, time.Now())
	if err != nil {
		h.writeAuthorizeError(w, r, req, err)
		return
	}
	if !fresh {
		h.freshSignIn(w, r, req, slices.Contains(prompts, "none"))
		return
	}
	if h.stepUp(w, r, req, user, slices.Contains(prompts, "none")) {
		return
	}
	silent := h.maySkipConsent(req)
	if silent && !slices.Contains(prompts, "consent") {
		granted, err := h.alreadyGranted(r.Context(), user.UserID, req)
		if err != nil {
			h.writeAuthorizeError(w, r, req, fosite.ErrServerError.WithWrap(err))
			return
		}
		if granted {
			h.issueCode(w, r, req, user, false)
			return
		}
	}
	if slices.Contains(prompts, "none") {
		hint := "The user has not yet allowed this app these scopes."
		if !silent {
			hint = "This app's redirect URI could be answered by any program on the device, so the user must confirm each time."
		}
		h.writeAuthorizeError(w, r, req, fosite.ErrConsentRequired.WithHint(hint))
		return
	}
	h.consentPage(w, r, req, user)
}

// decide is POST /oauth2/authorize: the consent form's Allow or Deny.
// Cross-origin posts never get here (the server refuses them first), so
// the decision is the signed-in user's own.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request) {
	r, ok := h.withDocument(w, r)
	if !ok {
		return
	}
	req, ok := h.authorizeRequest(w, r)
	if !ok {
		return
	}
	user, signedIn := h.Sessions.Identity(r)
	if !signedIn {
		h.toLogin(w, r, "/oauth2/authorize?"+r.URL.RawQuery)
		return
	}
	// The consent form carries the request's acr_values too: a post made
	// without the page still needs the second step.
	if h.stepUp(w, r, req, user, false) {
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		h.issueCode(w, r, req, user, true)
	case "deny":
		h.writeAuthorizeError(w, r, req, fosite.ErrAccessDenied.WithHint("The user denied the request."))
	default:
		h.writeAuthorizeError(w, r, req, fosite.ErrInvalidRequest.WithHint("The decision must be allow or deny."))
	}
}

// withDocument resolves a client_id that names a client metadata document
// before anything else, so that its failures name their cause for the
// app's developer; the request it returns carries the document's checked
// redirect URI for the client lookups that follow.
func (h *Handler) withDocument(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	ctx, ok := h.documentRequest(w, r)
	if !ok {
		return nil, false
	}
	return r.WithContext(ctx), true
}

// authorizeRequest parses and validates an authorization request, writing
// the error itself when it fails. The request is the query alone: a GET's
// body is never read, and a POST's carries nothing but the decision.
func (h *Handler) authorizeRequest(w http.ResponseWriter, r *http.Request) (*authzRequest, bool) {
	var req *authzRequest
	if r.Method == http.MethodPost && !h.readDecision(w, r) {
		return nil, false
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.authorizeErrorPage(w, r, fosite.ErrInvalidRequest.WithHint("The query string is malformed."))
		return nil, false
	}
	if query, err = h.pushedQuery(r, query); err == nil {
		req, err = h.checkClient(r.Context(), query)
	}
	if err != nil {
		h.logFailure(r.Context(), "authorization request", err)
		h.authorizeErrorPage(w, r, fosite.ErrorToRFC6749Error(err))
		return nil, false
	}
	if err := checkParams(query); err != nil {
		h.writeAuthorizeError(w, r, req, err)
		return nil, false
	}
	ctx := context.WithValue(r.Context(), checkedClientKey{}, req.client)
	ar, err := h.provider.NewAuthorizeRequest(ctx, formOnly(r, withPKCEState(query)))
	if err != nil {
		h.writeAuthorizeError(w, r, req, err)
		return nil, false
	}
	req.ar = ar
	if err := h.checkAuthorizeExtras(ar); err != nil {
		h.writeAuthorizeError(w, r, req, err)
		return nil, false
	}
	if err := h.checkPushed(r, ar); err != nil {
		h.writeAuthorizeError(w, r, req, err)
		return nil, false
	}
	if err := h.grantResources(ar); err != nil {
		h.writeAuthorizeError(w, r, req, err)
		return nil, false
	}
	return req, true
}

// readDecision reads the consent form's body: a small urlencoded form
// with the decision and nothing else.
func (h *Handler) readDecision(w http.ResponseWriter, r *http.Request) bool {
	if !isFormBody(r) {
		h.errorPage(w, r, http.StatusBadRequest, "The form could not be read", "The consent form was not sent as a form.", "invalid_request: the body must be application/x-www-form-urlencoded")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "The form could not be read", "The consent form was malformed or too large.", "")
		return false
	}
	for k := range r.PostForm {
		if k != "decision" {
			h.errorPage(w, r, http.StatusBadRequest, "The form could not be read", "The consent form carried unexpected fields.", "unexpected form field "+k)
			return false
		}
	}
	return true
}

// checkClient finds the client and the redirect URI answers may go to.
// Its errors are never sent to the client: RFC 6749 §4.1.2.1 forbids
// redirecting when either is in doubt.
func (h *Handler) checkClient(ctx context.Context, query url.Values) (*authzRequest, error) {
	// A repeated client_id or redirect_uri leaves in doubt which one the
	// app meant, so even a registered one cannot be trusted.
	if name := repeatedParam(query, []string{"client_id", "redirect_uri"}); name != "" {
		return nil, fosite.ErrInvalidRequest.WithHintf("The %q parameter must not be repeated.", name)
	}
	id := query.Get("client_id")
	if id == "" || !utf8.ValidString(id) {
		return nil, fosite.ErrInvalidClient
	}
	c, err := h.fs.db.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrInvalidClient
	}
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	raw := query.Get("redirect_uri")
	registered := ""
	switch {
	case raw != "":
		reg, ok := clients.MatchRedirectURI(c.RedirectURIs, raw)
		if !ok {
			return nil, fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the client's registered redirect URIs.")
		}
		registered = reg
	case len(c.RedirectURIs) == 1:
		raw, registered = c.RedirectURIs[0], c.RedirectURIs[0]
	default:
		return nil, fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter is required: the client has more than one registered.")
	}
	redirect, err := url.Parse(raw)
	if err != nil {
		return nil, fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter is not a valid URI.")
	}
	view := c
	view.RedirectURIs = []string{raw}
	req := &authzRequest{
		client:     client{view},
		redirect:   redirect,
		registered: registered,
		state:      query.Get("state"),
		mode:       fosite.ResponseModeQuery,
		query:      query,
	}
	// Errors, an unsupported response_mode among them, go in the query
	// unless form_post was asked for.
	if query.Get("response_mode") == string(fosite.ResponseModeFormPost) {
		req.mode = fosite.ResponseModeFormPost
	}
	return req, nil
}

// checkedClientKey carries, in a request's context, the client an
// authorization request was checked against, for checkedClients.
type checkedClientKey struct{}

// checkedClients hands fosite the client of the request being authorized
// as Gatehouse checked it: with only the redirect URI it matched, so that
// fosite's own, looser loopback matching never decides anything, and
// without a second query for the same row.
type checkedClients struct{ audienceStore }

func (s checkedClients) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	if c, ok := ctx.Value(checkedClientKey{}).(client); ok && c.ID == id {
		return c, nil
	}
	return s.fositeStore.GetClient(ctx, id)
}

// withPKCEState lets a PKCE request leave out state, as OAuth 2.1 and RFC
// 9700 §2.1.1 allow (PKCE already ties the response to the client that
// asked) and as MCP clients do: fosite insists on a state, so it is given
// one of its own that never leaves the server, since responses carry
// req.state, the client's. A request without PKCE still needs a state.
func withPKCEState(query url.Values) url.Values {
	if query.Has("state") || query.Get("code_challenge") == "" {
		return query
	}
	q := maps.Clone(query)
	q.Set("state", rand.Text())
	return q
}

// formOnly is r as fosite may see it: its form is query, already parsed,
// and it has no body, so fosite's ParseMultipartForm reads nothing (a body
// on GET is ignored, RFC 9110 §9.3.1).
func formOnly(r *http.Request, query url.Values) *http.Request {
	fr := r.Clone(r.Context())
	fr.Body = http.NoBody
	fr.ContentLength = 0
	fr.Header.Del("Content-Type")
	fr.Form = query
	fr.PostForm = url.Values{}
	fr.MultipartForm = nil
	return fr
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

// signedInAfter marks an authorization request that already sent the user
// to sign in again: its value is when (Unix seconds). A sign-in at or after
// it satisfies prompt=login and max_age, so max_age=0 cannot loop.
const signedInAfter = "signed_in_after"

// freshEnough reports whether the user's sign-in satisfies the request's
// prompt=login and max_age. A request marked with signedInAfter asks only
// for a sign-in since then: the one it sent the user to.
func freshEnough(q url.Values, user accounts.Identity, now time.Time) (bool, error) {
	// The request sent back after a fresh sign-in has no prompt=login.
	if slices.Contains(strings.Fields(q.Get("prompt")), "login") {
		return false, nil
	}
	if s := q.Get(signedInAfter); s != "" {
		at, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return false, fosite.ErrInvalidRequest.WithHintf("%s is not a time.", signedInAfter)
		}
		return !user.AuthTime.Before(time.Unix(at, 0)), nil
	}
	if s := q.Get("max_age"); s != "" {
		maxAge, err := strconv.ParseInt(s, 10, 64)
		if err != nil || maxAge < 0 {
			return false, fosite.ErrInvalidRequest.WithHint("max_age must be a number of seconds.")
		}
		return now.Sub(user.AuthTime) <= time.Duration(min(maxAge, 1<<32))*time.Second, nil
	}
	return true, nil
}

// freshSignIn asks the signed-in user to sign in again, without signing
// them out first (a link must not be able to sign anyone out), and comes
// back to the request without prompt=login, marked with signedInAfter.
// A request already marked has had its chance and gets login_required.
func (h *Handler) freshSignIn(w http.ResponseWriter, r *http.Request, req *authzRequest, promptNone bool) {
	if promptNone || req.query.Has(signedInAfter) {
		h.writeAuthorizeError(w, r, req, fosite.ErrLoginRequired.WithHint("The request needs a more recent sign-in."))
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.writeAuthorizeError(w, r, req, fosite.ErrInvalidRequest)
		return
	}
	kept := slices.DeleteFunc(strings.Fields(q.Get("prompt")), func(p string) bool { return p == "login" })
	if len(kept) == 0 {
		q.Del("prompt")
	} else {
		q.Set("prompt", strings.Join(kept, " "))
	}
	q.Set(signedInAfter, strconv.FormatInt(time.Now().Unix(), 10))
	returnTo := r.URL.Path + "?" + q.Encode()
	http.Redirect(w, r, "/login?return_to="+url.QueryEscape(returnTo)+"&fresh=1", http.StatusSeeOther)
}

// maySkipConsent reports whether a remembered consent may answer this
// request without asking. Not for a public client whose redirect URI is on
// loopback or uses a private-use scheme: any program on the device can
// listen there and pose as the app with its own PKCE pair (RFC 8252 §8.6,
// RFC 6749 §10.2).
func (h *Handler) maySkipConsent(req *authzRequest) bool {
	return !req.client.Public || !(clients.IsLoopbackRedirect(req.redirect) || clients.IsPrivateUseRedirect(req.redirect))
}

// alreadyGranted reports whether the user once allowed this client every
// scope requested now, shown this redirect URI.
func (h *Handler) alreadyGranted(ctx context.Context, userID string, req *authzRequest) (bool, error) {
	g, err := h.Store.GetGrant(ctx, userID, req.client.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !slices.Contains(g.RedirectURIs, req.registered) {
		return false, nil
	}
	for _, s := range req.ar.GetRequestedScopes() {
		if !slices.Contains(g.Scopes, s) {
			return false, nil
		}
	}
	return true, nil
}

// remember adds scopes and the registered redirect URI to the user's grant
// for the client, keeping what was granted before.
func (h *Handler) remember(ctx context.Context, userID, clientID string, scopes []string, redirectURI string) error {
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
	// A device grant has no redirect URI to remember.
	if redirectURI != "" && !slices.Contains(g.RedirectURIs, redirectURI) {
		g.RedirectURIs = append(g.RedirectURIs, redirectURI)
	}
	g.UpdatedAt = now
	return h.Store.PutGrant(ctx, g)
}

// issueCode grants the requested scopes (the client may only request what
// it is registered for, and the user allowed them) and sends the code and,
// per RFC 9207, the issuer. With remember, the consent is stored too. The
// consent, the code and its PKCE and OpenID Connect state are written in
// one transaction: one commit instead of four, and no code whose consent
// was lost.
func (h *Handler) issueCode(w http.ResponseWriter, r *http.Request, req *authzRequest, user accounts.Identity, remember bool) {
	ctx := r.Context()
	ar := req.ar
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	sess := newSession()
	sess.Subject = user.UserID
	sess.Username = user.Username
	sess.Claims.Subject = user.UserID
	sess.Claims.Issuer = h.cfg.Issuer
	sess.Claims.AuthTime = user.AuthTime
	sess.Claims.AuthenticationMethodsReferences = user.AMR
	sess.Claims.AuthenticationContextClassReference = acrOf(user.AMR)
	sess.Claims.RequestedAt = time.Now().UTC()
	sess.JKT = ar.GetRequestForm().Get("dpop_jkt")
	if ar.GetGrantedScopes().Has("profile") {
		sess.Claims.Extra["preferred_username"] = user.Username
	}
	if ar.GetGrantedScopes().Has("email") {
		if err := h.addEmailClaims(ctx, sess.Claims.Extra, user.UserID); err != nil {
			h.writeAuthorizeError(w, r, req, fosite.ErrServerError.WithWrap(err))
			return
		}
	}
	var resp fosite.AuthorizeResponder
	err := h.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.consumePAR(ctx, ar); err != nil {
			return err
		}
		if remember {
			if err := h.remember(ctx, user.UserID, req.client.ID, req.ar.GetRequestedScopes(), req.registered); err != nil {
				return fosite.ErrServerError.WithWrap(err)
			}
		}
		var err error
		resp, err = h.provider.NewAuthorizeResponse(ctx, ar, sess)
		return err
	})
	if err != nil {
		h.writeAuthorizeError(w, r, req, err)
		return
	}
	if remember {
		audit.Record(ctx, h.cfg.Audit, audit.Event{Type: audit.ConsentGranted, Actor: user.UserID, Subject: user.UserID, Client: ar.GetClient().GetID(), Detail: map[string]string{"scope": strings.Join(ar.GetRequestedScopes(), " ")}})
	}
	params := resp.GetParameters()
	params.Del("state")
	if req.state != "" {
		params.Set("state", req.state)
	}
	params.Set("iss", h.cfg.Issuer)
	h.respond(w, r, req, params)
}

func (h *Handler) consentPage(w http.ResponseWriter, r *http.Request, req *authzRequest, user accounts.Identity) {
	c := req.client.Client
	owner := ""
	if c.OwnerID != "" {
		if u, err := h.Store.GetUser(r.Context(), c.OwnerID); err == nil {
			owner = u.Username
		}
	}
	action := "/oauth2/authorize?" + r.URL.RawQuery
	page := h.NewPage(r, "Allow "+c.Name+"?")
	// The page's form action holds the whole request; no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, templates.Consent(templates.ConsentView{
		Page:           page,
		ClientName:     c.Name,
		ClientOwner:    owner,
		ClientOrigin:   string(c.Origin),
		RedirectHost:   redirectHost(req.redirect),
		Scopes:         clients.DescribeScopes(req.ar.GetRequestedScopes()),
		Action:         action,
		SwitchReturnTo: "/login?return_to=" + url.QueryEscape(action),
		DocumentHost:   h.documentHost(c.ID),
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

// writeAuthorizeError sends an error to the client once its client and
// redirect URI were checked (req != nil); otherwise it explains the
// problem on a page and goes nowhere.
func (h *Handler) writeAuthorizeError(w http.ResponseWriter, r *http.Request, req *authzRequest, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	h.logFailure(r.Context(), "authorization request", err)
	if req == nil {
		h.authorizeErrorPage(w, r, rfc)
		return
	}
	params := url.Values{"error": {rfc.ErrorField}}
	if d := rfc.GetDescription(); d != "" {
		params.Set("error_description", d)
	}
	if req.state != "" {
		params.Set("state", req.state)
	}
	params.Set("iss", h.cfg.Issuer)
	h.respond(w, r, req, params)
}

// respond delivers an authorization response or error to the client's
// redirect URI in the request's response mode: in the query of a 303, or
// as a form the browser posts (OAuth 2.0 Form Post Response Mode).
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, req *authzRequest, params url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	u := *req.redirect
	u.Fragment = ""
	if req.mode == fosite.ResponseModeFormPost {
		fields := make([]templates.FormField, 0, len(params))
		for _, k := range slices.Sorted(maps.Keys(params)) {
			fields = append(fields, templates.FormField{Name: k, Value: params.Get(k)})
		}
		h.render(w, r, http.StatusOK, templates.FormPost(templates.FormPostView{
			Page:       h.NewPage(r, "Returning to "+req.client.Name),
			ClientName: req.client.Name,
			Action:     u.String(),
			Fields:     fields,
		}))
		return
	}
	q := u.Query()
	for k := range params {
		q.Set(k, params.Get(k))
	}
	u.RawQuery = q.Encode()
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
