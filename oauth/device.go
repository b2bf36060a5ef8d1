package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	enigma "github.com/ory/fosite/token/hmac"

	"gatehouse/accounts"
	"gatehouse/clients"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// deviceStore is what the device authorization grant keeps in the database.
type deviceStore interface {
	CreateDeviceCode(ctx context.Context, d storage.DeviceCode) error
	GetDeviceCode(ctx context.Context, signature string) (storage.DeviceCode, error)
	GetDeviceCodeByUserCode(ctx context.Context, userCodeHash string) (storage.DeviceCode, error)
	DecideDeviceCode(ctx context.Context, signature string, status storage.DeviceStatus, subject string, data []byte) error
	PollDeviceCode(ctx context.Context, signature string, at time.Time, interval time.Duration) error
	ConsumeDeviceCode(ctx context.Context, signature string) error
}

const (
	// deviceCodeTTL is how long a user has to enter a code. With the
	// throttle below, an address can try at most 10 wrong codes in it
	// (10 per 15 minutes), against 20^8 possible codes.
	deviceCodeTTL = 10 * time.Minute
	// deviceInterval is the polling interval RFC 8628 §3.2 suggests.
	deviceInterval = 5 * time.Second
	// slowDownStep is how much each slow_down adds (RFC 8628 §3.5).
	slowDownStep = 5 * time.Second
	// userCodeAlphabet has no vowels, so no code spells a word, and none of
	// the letters is easily mistaken for a digit (RFC 8628 §6.1).
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
)

// RFC 8628 §3.5 errors, which fosite does not define.
var (
	errAuthorizationPending = &fosite.RFC6749Error{ErrorField: "authorization_pending", DescriptionField: "The user has not yet approved or denied the request.", CodeField: http.StatusBadRequest}
	errSlowDown             = &fosite.RFC6749Error{ErrorField: "slow_down", DescriptionField: "The device polls too often; the interval grows by 5 seconds.", CodeField: http.StatusBadRequest}
	errExpiredToken         = &fosite.RFC6749Error{ErrorField: "expired_token", DescriptionField: "The device code has expired; start a new device authorization.", CodeField: http.StatusBadRequest}
	// fosite's access_denied is 403, an authorization endpoint's status;
	// at the token endpoint every error is 400 (RFC 6749 §5.2).
	errDeviceDenied = &fosite.RFC6749Error{ErrorField: "access_denied", DescriptionField: "The user denied the request.", CodeField: http.StatusBadRequest}
)

var deviceAuthorizeParams = []string{"client_id", "client_secret", "scope"}

// deviceAuthorizationResponse is RFC 8628 §3.2.
type deviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// deviceAuthorize is POST /oauth2/device/authorize (RFC 8628 §3.1): the
// client authenticates as at the token endpoint and gets a device code to
// poll with and a user code for the person.
func (h *Handler) deviceAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		h.writeTokenError(w, r, nil, fosite.ErrInvalidRequest.WithHint("The body must be application/x-www-form-urlencoded."))
		return
	}
	if err := readForm(w, r, deviceAuthorizeParams); err != nil {
		h.writeTokenError(w, r, nil, err)
		return
	}
	if err := clientAuthProblem(r); err != nil {
		h.writeTokenError(w, r, nil, err)
		return
	}
	c, err := h.authenticateClient(ctx, r, r.PostForm)
	if err != nil {
		h.writeTokenError(w, r, nil, err)
		return
	}
	if !c.GetGrantTypes().Has(clients.GrantDeviceCode) {
		h.writeTokenError(w, r, nil, fosite.ErrUnauthorizedClient.WithHintf("The client is not registered for the grant type %q.", clients.GrantDeviceCode))
		return
	}
	scopes := fosite.RemoveEmpty(strings.Split(r.PostForm.Get("scope"), " "))
	for _, s := range scopes {
		if !fosite.ExactScopeStrategy(c.GetScopes(), s) {
			h.writeTokenError(w, r, nil, fosite.ErrInvalidScope.WithHintf("The client is not allowed to request the scope %q.", s))
			return
		}
	}
	now := time.Now().UTC()
	req := fosite.NewRequest()
	req.ID = storage.NewID()
	req.RequestedAt = now
	req.Client = c
	req.SetRequestedScopes(scopes)
	req.Form = url.Values{"scope": {strings.Join(scopes, " ")}}
	req.Session = newSession()
	data, err := marshalRequest(req)
	if err != nil {
		h.writeTokenError(w, r, nil, fosite.ErrServerError.WithWrap(err))
		return
	}
	deviceCode, signature, err := h.strategy.Enigma.Generate(ctx)
	if err != nil {
		h.writeTokenError(w, r, nil, fosite.ErrServerError.WithWrap(err))
		return
	}
	// A user code collides with a live one about once in 20^8/n requests
	// for n live codes; a few tries make a failure vanishingly rare.
	var userCode string
	for range 3 {
		userCode = newUserCode()
		err = h.Store.CreateDeviceCode(ctx, storage.DeviceCode{
			Signature:    signature,
			UserCodeHash: h.userCodeHash(userCode),
			ClientID:     c.GetID(),
			Status:       storage.DevicePending,
			Interval:     deviceInterval,
			RequestedAt:  now,
			ExpiresAt:    now.Add(deviceCodeTTL),
			Data:         data,
		})
		if !errors.Is(err, storage.ErrConflict) {
			break
		}
	}
	if err != nil {
		h.writeTokenError(w, r, nil, fosite.ErrServerError.WithWrap(err))
		return
	}
	shown := formatUserCode(userCode)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, deviceAuthorizationResponse{
		DeviceCode:              deviceCode,
		UserCode:                shown,
		VerificationURI:         h.cfg.Issuer + "/device",
		VerificationURIComplete: h.cfg.Issuer + "/device?" + url.Values{"user_code": {shown}}.Encode(),
		ExpiresIn:               int(deviceCodeTTL / time.Second),
		Interval:                int(deviceInterval / time.Second),
	})
}

// newUserCode draws userCodeLength letters uniformly from userCodeAlphabet:
// bytes of 240 and above are dropped so that every letter has the same
// chance (256 is not a multiple of 20).
func newUserCode() string {
	var b strings.Builder
	buf := make([]byte, 16)
	for b.Len() < userCodeLength {
		rand.Read(buf)
		for _, c := range buf {
			if c < 240 && b.Len() < userCodeLength {
				b.WriteByte(userCodeAlphabet[int(c)%len(userCodeAlphabet)])
			}
		}
	}
	return b.String()
}

// formatUserCode shows a code as WXYZ-BCDF.
func formatUserCode(code string) string { return code[:4] + "-" + code[4:] }

// normalizeUserCode reads what a person typed: any case, dashes and spaces
// anywhere. It reports false for anything that cannot be a code.
func normalizeUserCode(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToUpper(s))
	if len(s) != userCodeLength {
		return "", false
	}
	for _, c := range []byte(s) {
		if strings.IndexByte(userCodeAlphabet, c) < 0 {
			return "", false
		}
	}
	return s, true
}

// userCodeHash is the key a user code is stored and found by. It is keyed
// with a secret: 20^8 codes are too few for a plain digest to hide them
// from whoever reads the table.
func (h *Handler) userCodeHash(code string) string {
	m := hmac.New(sha256.New, h.userCodeKey)
	m.Write([]byte(code))
	return hex.EncodeToString(m.Sum(nil))
}

// devicePage is GET /device: the form for the code, filled in when the
// device's link carried it.
func (h *Handler) devicePage(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("user_code")
	if _, signedIn := h.Sessions.Identity(r); !signedIn {
		h.toLogin(w, r, devicePath(code))
		return
	}
	h.deviceEntry(w, r, http.StatusOK, code, "")
}

func devicePath(code string) string {
	if code == "" {
		return "/device"
	}
	return "/device?" + url.Values{"user_code": {code}}.Encode()
}

func (h *Handler) deviceEntry(w http.ResponseWriter, r *http.Request, status int, code, problem string) {
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, templates.DeviceEntry(templates.DeviceEntryView{
		Page:     h.NewPage(r, "Connect a device"),
		UserCode: code,
		Error:    problem,
	}))
}

// deviceSubmit is POST /device: a code alone shows the consent page for it;
// a code with decision=allow or deny records the decision for the device.
// Cross-origin posts never get here (the server refuses them first).
// At most deviceCodeGuesses wrong user codes per address in
// deviceCodeGuessWindow (CONTRACT: 10 in 15 minutes).
const (
	deviceCodeGuesses     = 10
	deviceCodeGuessWindow = 15 * time.Minute
)

func (h *Handler) deviceSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "The form could not be read", "The form was malformed or too large.", "")
		return
	}
	typed := r.PostForm.Get("user_code")
	user, signedIn := h.Sessions.Identity(r)
	if !signedIn {
		h.toLogin(w, r, devicePath(typed))
		return
	}
	if h.DeviceLimiter == nil || h.ClientAddress == nil {
		// Unthrottled, a user code could be guessed; refuse instead.
		h.deviceFailed(w, r, errors.New("device pages mounted without DeviceLimiter and ClientAddress"))
		return
	}
	key, now := "device:"+h.ClientAddress(r), time.Now()
	// Fails closed like the sign-in throttle: a check that can be made to
	// fail must not lift the limit.
	attempt, wait, err := h.DeviceLimiter.Reserve(ctx, now, accounts.Limit{Key: key, Max: deviceCodeGuesses, Window: deviceCodeGuessWindow})
	if err != nil {
		h.Logger.ErrorContext(ctx, "device code throttle", "err", err)
		h.deviceEntry(w, r, http.StatusInternalServerError, typed, "Something went wrong. Please try again.")
		return
	}
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		h.deviceEntry(w, r, http.StatusTooManyRequests, typed, "Too many wrong codes. Please wait a few minutes and try again.")
		return
	}
	d, code, ok := h.findDeviceCode(ctx, typed)
	if ok {
		// A real code is not a guess: withdraw its reservation.
		if err := h.DeviceLimiter.Succeeded(ctx, attempt); err != nil {
			h.Logger.WarnContext(ctx, "device code throttle", "err", err)
		}
	} else {
		h.deviceEntry(w, r, http.StatusBadRequest, typed, "That code is not valid. Check the code on your device and try again.")
		return
	}
	switch {
	case now.After(d.ExpiresAt):
		h.deviceEntry(w, r, http.StatusBadRequest, "", "That code has expired. Start again on your device to get a new one.")
		return
	case d.Status != storage.DevicePending:
		h.deviceEntry(w, r, http.StatusBadRequest, "", "That code has already been used. Start again on your device to get a new one.")
		return
	}
	req, err := h.fs.unmarshalRequest(ctx, d.Data, newSession())
	if err != nil {
		h.deviceFailed(w, r, err)
		return
	}
	c, err := h.Store.GetClient(ctx, d.ClientID)
	if err != nil {
		h.deviceFailed(w, r, err)
		return
	}
	switch r.PostForm.Get("decision") {
	case "":
		h.deviceConsent(w, r, c, req, formatUserCode(code))
	case "allow":
		h.deviceDecide(w, r, d, c, req, user, true)
	case "deny":
		h.deviceDecide(w, r, d, c, req, user, false)
	default:
		h.errorPage(w, r, http.StatusBadRequest, "The form could not be read", "The decision must be allow or deny.", "")
	}
}

// findDeviceCode looks up what was typed; a database failure counts as not
// found, which errs towards throttling.
func (h *Handler) findDeviceCode(ctx context.Context, typed string) (storage.DeviceCode, string, bool) {
	code, ok := normalizeUserCode(typed)
	if !ok {
		return storage.DeviceCode{}, "", false
	}
	d, err := h.Store.GetDeviceCodeByUserCode(ctx, h.userCodeHash(code))
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			h.Logger.ErrorContext(ctx, "find device code", "err", err)
		}
		return storage.DeviceCode{}, "", false
	}
	return d, code, true
}

func (h *Handler) deviceConsent(w http.ResponseWriter, r *http.Request, c storage.Client, req fosite.Requester, shown string) {
	owner := ""
	if c.OwnerID != "" {
		if u, err := h.Store.GetUser(r.Context(), c.OwnerID); err == nil {
			owner = u.Username
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, templates.DeviceConsent(templates.DeviceConsentView{
		Page:           h.NewPage(r, "Allow "+c.Name+" on your device?"),
		ClientName:     c.Name,
		ClientOwner:    owner,
		Scopes:         clients.DescribeScopes(req.GetRequestedScopes()),
		UserCode:       shown,
		SwitchReturnTo: "/login?return_to=" + url.QueryEscape(devicePath(shown)),
	}))
}

// deviceDecide records the user's decision. An approval stores the request
// as granted, with the session the tokens will carry, and remembers the
// consent so that the app shows under connected apps.
func (h *Handler) deviceDecide(w http.ResponseWriter, r *http.Request, d storage.DeviceCode, c storage.Client, req *fosite.Request, user accounts.Identity, allow bool) {
	ctx := r.Context()
	status := storage.DeviceDenied
	if allow {
		status = storage.DeviceApproved
		for _, s := range req.GetRequestedScopes() {
			req.GrantScope(s)
		}
		sess := req.Session.(*session)
		sess.Subject = user.UserID
		sess.Username = user.Username
		sess.Claims.Subject = user.UserID
		sess.Claims.Issuer = h.cfg.Issuer
		sess.Claims.AuthTime = user.AuthTime
		sess.Claims.AuthenticationMethodsReferences = user.AMR
		sess.Claims.AuthenticationContextClassReference = acrOf(user.AMR)
		sess.Claims.RequestedAt = time.Now().UTC()
		if req.GetGrantedScopes().Has("profile") {
			sess.Claims.Extra["preferred_username"] = user.Username
		}
		if req.GetGrantedScopes().Has("email") {
			if err := h.addEmailClaims(r.Context(), sess.Claims.Extra, user.UserID); err != nil {
				h.deviceFailed(w, r, err)
				return
			}
		}
	}
	data, err := marshalRequest(req)
	if err != nil {
		h.deviceFailed(w, r, err)
		return
	}
	err = h.Store.InTx(ctx, func(ctx context.Context) error {
		if allow {
			if err := h.remember(ctx, user.UserID, c.ID, req.GetRequestedScopes(), ""); err != nil {
				return err
			}
		}
		return h.Store.DecideDeviceCode(ctx, d.Signature, status, user.UserID, data)
	})
	if errors.Is(err, storage.ErrInactive) {
		h.deviceEntry(w, r, http.StatusBadRequest, "", "That code has already been used. Start again on your device to get a new one.")
		return
	}
	if err != nil {
		h.deviceFailed(w, r, err)
		return
	}
	title := "Device connected"
	if !allow {
		title = "Request denied"
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, templates.DeviceDone(templates.DeviceDoneView{
		Page:       h.NewPage(r, title),
		ClientName: c.Name,
		Approved:   allow,
	}))
}

func (h *Handler) deviceFailed(w http.ResponseWriter, r *http.Request, err error) {
	h.Logger.ErrorContext(r.Context(), "device authorization", "err", err)
	h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. Please try again.", "")
}

// deviceGrant is the token endpoint's device_code grant (RFC 8628 §3.4),
// written on fosite's handler interface so that fosite authenticates the
// client and the tokens come from the same strategies and storage as every
// other grant's.
type deviceGrant struct {
	h        *Handler
	enigma   *enigma.HMACStrategy
	tokens   *oauth2.HandleHelper
	refresh  oauth2.RefreshTokenStrategy
	store    *fositeStore
	idTokens *openid.IDTokenHandleHelper
	cfg      *fosite.Config
}

var _ fosite.TokenEndpointHandler = (*deviceGrant)(nil)

func (g *deviceGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (g *deviceGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(clients.GrantDeviceCode)
}

// HandleTokenEndpointRequest answers a poll. Only an approved code gets
// past it, and only once: the conditional update in ConsumeDeviceCode lets
// one of racing polls through.
func (g *deviceGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	if !ar.GetClient().GetGrantTypes().Has(clients.GrantDeviceCode) {
		return fosite.ErrUnauthorizedClient.WithHintf("The client is not registered for the grant type %q.", clients.GrantDeviceCode)
	}
	code := ar.GetRequestForm().Get("device_code")
	if code == "" {
		return fosite.ErrInvalidRequest.WithHint("The device_code parameter is missing.")
	}
	if err := g.enigma.Validate(ctx, code); err != nil {
		return fosite.ErrInvalidGrant.WithHint("The device code is not valid.")
	}
	signature := g.enigma.Signature(code)
	d, err := g.h.Store.GetDeviceCode(ctx, signature)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The device code is not valid.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if d.ClientID != ar.GetClient().GetID() {
		return fosite.ErrInvalidGrant.WithHint("The device code was issued to another client.")
	}
	now := time.Now().UTC()
	if now.After(d.ExpiresAt) {
		return errExpiredToken
	}
	switch d.Status {
	case storage.DevicePending:
		interval, answer := d.Interval, error(errAuthorizationPending)
		if !d.LastPolledAt.IsZero() && now.Sub(d.LastPolledAt) < d.Interval {
			interval, answer = d.Interval+slowDownStep, errSlowDown
		}
		if err := g.h.Store.PollDeviceCode(ctx, signature, now, interval); err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		return answer
	case storage.DeviceDenied:
		return errDeviceDenied
	case storage.DeviceApproved:
	default:
		return fosite.ErrInvalidGrant.WithHint("The device code has already been used.")
	}
	if err := g.h.Store.ConsumeDeviceCode(ctx, signature); err != nil {
		if errors.Is(err, storage.ErrInactive) || errors.Is(err, storage.ErrNotFound) {
			return fosite.ErrInvalidGrant.WithHint("The device code has already been used.")
		}
		return fosite.ErrServerError.WithWrap(err)
	}
	stored, err := g.store.unmarshalRequest(ctx, d.Data, ar.GetSession())
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	ar.SetID(stored.GetID())
	ar.SetRequestedScopes(stored.GetRequestedScopes())
	for _, s := range stored.GetGrantedScopes() {
		ar.GrantScope(s)
	}
	sess := ar.GetSession()
	sess.SetExpiresAt(fosite.AccessToken, now.Add(g.cfg.GetAccessTokenLifespan(ctx)))
	if g.issuesRefresh(ar) {
		sess.SetExpiresAt(fosite.RefreshToken, now.Add(g.cfg.GetRefreshTokenLifespan(ctx)))
	}
	return nil
}

// issuesRefresh follows the code grant's rule: a refresh token needs
// offline_access and a client registered for refresh_token.
func (g *deviceGrant) issuesRefresh(ar fosite.AccessRequester) bool {
	return ar.GetGrantedScopes().HasOneOf(g.cfg.GetRefreshTokenScopes(context.Background())...) &&
		ar.GetClient().GetGrantTypes().Has(clients.GrantRefreshToken)
}

func (g *deviceGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	accessSignature, err := g.tokens.IssueAccessToken(ctx, g.cfg.GetAccessTokenLifespan(ctx), ar, resp)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if g.issuesRefresh(ar) {
		token, signature, err := g.refresh.GenerateRefreshToken(ctx, ar)
		if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		if err := g.store.CreateRefreshTokenSession(ctx, signature, accessSignature, ar.Sanitize(nil)); err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		resp.SetExtra("refresh_token", token)
	}
	if ar.GetGrantedScopes().Has("openid") {
		if err := g.idTokens.IssueExplicitIDToken(ctx, g.cfg.GetIDTokenLifespan(ctx), ar, resp); err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
	}
	return nil
}
