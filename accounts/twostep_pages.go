package accounts

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/audit"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// twoFactorAMR is a sign-in with a password and a one-time code (RFC 8176:
// otp for the code, mfa for the two factors).
var twoFactorAMR = []string{AMRPassword, AMROTP, AMRMFA}

// CodeStepPath is the page of the second step. An app asking for a second
// factor (acr_values) sends a signed-in user there with return_to.
const CodeStepPath = "/login/code"

func (h *Handler) mountTwoStep(mux *http.ServeMux) {
	mux.HandleFunc("GET /login/code", h.codePage)
	mux.HandleFunc("POST /login/code", h.codeStep)
	mux.HandleFunc("GET /account/totp/setup", h.totpSetupPage)
	mux.HandleFunc("POST /account/totp/setup", h.totpConfirm)
	mux.HandleFunc("POST /account/totp/recovery-codes", h.totpRegenerate)
	mux.HandleFunc("POST /account/totp/disable", h.totpDisable)
}

// accountKey is what the per-account limit counts for username: a browser
// that signed in to the account before has a count of its own, so
// guessers elsewhere cannot lock the user out of it.
func (h *Handler) accountKey(r *http.Request, username string) string {
	if device, ok := h.Sessions.KnownDevice(r, username); ok {
		return "device:" + device
	}
	return "user:" + username
}

// askForCode sends a user whose password was right to the code step.
func (h *Handler) askForCode(w http.ResponseWriter, r *http.Request, p Pending) {
	if err := h.Sessions.SetPending(w, p); err != nil {
		h.Logger.ErrorContext(r.Context(), "sign in", "err", err)
		http.Error(w, "Could not continue the sign-in.", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, CodeStepPath, http.StatusSeeOther)
}

// codePage is GET /login/code. Without a pending sign-in it is the step-up
// of a signed-in user whose session has the password alone (an app sent
// them with acr_values); it then waits for the code as if the password had
// just been entered, keeping the session's sign-in time.
func (h *Handler) codePage(w http.ResponseWriter, r *http.Request) {
	view := templates.LoginCodeView{Page: h.NewPage(r, "Two-step sign-in"), Recovery: r.URL.Query().Get("recovery") == "1"}
	w.Header().Set("Cache-Control", "no-store")
	if p, ok := h.Sessions.Pending(r); ok {
		view.StepUp = p.StepUp
		h.render(w, r, http.StatusOK, templates.LoginCode(view))
		return
	}
	returnTo := SafeReturnTo(r.URL.Query().Get("return_to"))
	id, signedIn := h.Sessions.Identity(r)
	if !signedIn {
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(returnTo), http.StatusSeeOther)
		return
	}
	on, err := h.TwoStep.Enabled(r.Context(), id.UserID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "two-step sign-in", "err", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return
	}
	if !on || slices.Contains(id.AMR, AMRMFA) {
		// Nothing more to prove.
		http.Redirect(w, r, returnTo, http.StatusSeeOther)
		return
	}
	p := Pending{UserID: id.UserID, Username: id.Username, ReturnTo: returnTo, AuthTime: id.AuthTime.Unix(), StepUp: true}
	if err := h.Sessions.SetPending(w, p); err != nil {
		h.Logger.ErrorContext(r.Context(), "two-step sign-in", "err", err)
		http.Error(w, "Could not continue the sign-in.", http.StatusInternalServerError)
		return
	}
	view.StepUp = true
	h.render(w, r, http.StatusOK, templates.LoginCode(view))
}

// codeStep is POST /login/code: the code that completes a sign-in.
func (h *Handler) codeStep(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	p, ok := h.Sessions.Pending(r)
	if ok && p.StepUp {
		// A step-up completes the session it started from, not one ended
		// since (signed out, or everywhere by a password change).
		id, signedIn := h.Sessions.Identity(r)
		ok = signedIn && id.UserID == p.UserID
	}
	if !ok {
		h.render(w, r, http.StatusBadRequest, templates.Login(templates.LoginView{
			Page:             h.NewPage(r, "Sign in"),
			ReturnTo:         "/",
			Error:            "Your sign-in took too long to finish. Please sign in again.",
			RegistrationOpen: h.RegistrationOpen,
		}))
		return
	}
	view := templates.LoginCodeView{Page: h.NewPage(r, "Two-step sign-in"), StepUp: p.StepUp, Recovery: !isTOTPCode(normalizeCode(r.PostForm.Get("code")))}
	method, status, message := h.checkCode(w, r, p.UserID, p.Username, r.PostForm.Get("code"))
	if status != 0 {
		view.Error = message
		h.render(w, r, status, templates.LoginCode(view))
		return
	}
	h.Sessions.ClearPending(w)
	err := h.Sessions.SignIn(w, r, Identity{UserID: p.UserID, Username: p.Username, AuthTime: time.Unix(p.AuthTime, 0), AMR: twoFactorAMR})
	if errors.Is(err, ErrAccountDisabled) {
		// Disabled between the password and the code.
		audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.SignInFailed, Actor: p.UserID, Subject: p.UserID, Detail: map[string]string{"reason": reasonDisabled}})
		h.render(w, r, http.StatusForbidden, templates.Login(templates.LoginView{
			Page: h.NewPage(r, "Sign in"), Username: p.Username, ReturnTo: SafeReturnTo(p.ReturnTo), Error: DisabledMessage, RegistrationOpen: h.RegistrationOpen,
		}))
		return
	}
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "save session", "err", err)
		http.Error(w, "Could not start a session.", http.StatusInternalServerError)
		return
	}
	audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.SignIn, Actor: p.UserID, Subject: p.UserID,
		Detail: map[string]string{"amr": strings.Join(twoFactorAMR, " "), "method": string(method)}})
	http.Redirect(w, r, SafeReturnTo(p.ReturnTo), http.StatusSeeOther)
}

// checkCode checks a code of the user, throttled like passwords and
// counted against the same limits. A refusal comes back as its status and
// message (and is recorded); status 0 is a code accepted.
func (h *Handler) checkCode(w http.ResponseWriter, r *http.Request, userID, username, code string) (Method, int, string) {
	ctx, now := r.Context(), h.Now()
	accountKey := h.accountKey(r, username)
	attempt, wait, err := h.Limiter.Reserve(ctx, now,
		Limit{Key: accountKey, Max: accountLimit, Window: limitWindow},
		Limit{Key: "addr:" + addressKey(h.clientAddress(r)), Max: addressLimit, Window: limitWindow})
	if err != nil {
		h.Logger.ErrorContext(ctx, "check code", "err", err)
		return "", http.StatusInternalServerError, "Something went wrong. Please try again."
	}
	if wait > 0 {
		// Counted, not audited, as for passwords.
		if h.ThrottledLogins != nil {
			h.ThrottledLogins.Inc()
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return "", http.StatusTooManyRequests, "Too many wrong codes. Please wait a few minutes and try again."
	}
	method, err := h.TwoStep.Check(ctx, userID, code)
	var message string
	switch {
	case err == nil:
		if err := h.Limiter.Succeeded(ctx, attempt, accountKey); err != nil {
			h.Logger.WarnContext(ctx, "release code attempt", "err", err)
		}
		return method, 0, ""
	case errors.Is(err, ErrWrongCode):
		message = "That code is not right. Check that your phone's clock is set automatically, then enter the code your app shows now."
	case errors.Is(err, ErrUsedCode):
		message = "That code was already used. Wait for your app to show the next one."
	case errors.Is(err, ErrUsedRecoveryCode):
		message = "That recovery code was already used. Each works once: use another."
	default:
		h.Logger.ErrorContext(ctx, "check code", "err", err)
		return "", http.StatusInternalServerError, "Something went wrong. Please try again."
	}
	if h.FailedLogins != nil {
		h.FailedLogins.Inc()
	}
	h.Logger.InfoContext(ctx, "code refused", "username", username)
	audit.Record(ctx, h.Audit, audit.Event{Type: audit.SignInFailed, Actor: audit.ActorAnonymous, Subject: userID,
		Detail: map[string]string{"reason": "wrong_code", "username": username}})
	return "", http.StatusUnauthorized, message
}

// totpSetupPage is GET /account/totp/setup: a new key, not yet stored.
func (h *Handler) totpSetupPage(w http.ResponseWriter, r *http.Request) {
	id, ok := h.Sessions.SignedInToAccount(w, r)
	if !ok {
		return
	}
	h.setupPage(w, r, id, "", http.StatusOK, "")
}

// setupPage shows the key of token again, or a new one when token is ""
// or expired.
func (h *Handler) setupPage(w http.ResponseWriter, r *http.Request, id Identity, token string, status int, message string) {
	on, err := h.TwoStep.Enabled(r.Context(), id.UserID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "totp setup", "err", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return
	}
	if on {
		http.Redirect(w, r, "/account/security", http.StatusSeeOther)
		return
	}
	setup, err := h.TwoStep.ReopenSetup(id.UserID, id.Username, token)
	if errors.Is(err, ErrSetupExpired) {
		setup, err = h.TwoStep.NewSetup(id.UserID, id.Username)
	}
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "totp setup", "err", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return
	}
	// The page holds the key; no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, templates.TOTPSetup(templates.TOTPSetupView{
		Page:   h.NewPage(r, "Set up an authenticator app"),
		QR:     setup.QR,
		Secret: groupKey(setup.Secret),
		Token:  setup.Token,
		Error:  message,
	}))
}

// totpConfirm is POST /account/totp/setup: a code of the new key turns the
// second step on, and the recovery codes are shown, once.
func (h *Handler) totpConfirm(w http.ResponseWriter, r *http.Request) {
	id, ok := h.Sessions.SignedInToAccount(w, r)
	if !ok || !parseForm(w, r) {
		return
	}
	ctx := r.Context()
	codes, err := h.TwoStep.Confirm(ctx, id.UserID, r.PostForm.Get("setup"), r.PostForm.Get("code"))
	switch {
	case errors.Is(err, ErrWrongCode):
		h.setupPage(w, r, id, r.PostForm.Get("setup"), http.StatusBadRequest, "That code is not right. Enter the code your app shows now, and check that your phone's clock is set automatically.")
		return
	case errors.Is(err, ErrSetupExpired):
		h.setupPage(w, r, id, "", http.StatusBadRequest, "That setup took too long. Scan this new QR code and enter the code your app shows for it.")
		return
	case errors.Is(err, ErrTOTPOn):
		http.Redirect(w, r, "/account/security", http.StatusSeeOther)
		return
	case err != nil:
		h.Logger.ErrorContext(ctx, "totp setup", "err", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return
	}
	audit.Record(ctx, h.Audit, audit.Event{Type: audit.MFAEnabled, Actor: id.UserID, Subject: id.UserID, Detail: map[string]string{"method": string(MethodTOTP)}})
	h.showRecoveryCodes(w, r, "Authenticator app on: save your recovery codes", codes)
}

func (h *Handler) showRecoveryCodes(w http.ResponseWriter, r *http.Request, heading string, codes []string) {
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, templates.RecoveryCodes(templates.RecoveryCodesView{
		Page:    h.NewPage(r, "Recovery codes"),
		Heading: heading,
		Codes:   codes,
	}))
}

// totpRegenerate is POST /account/totp/recovery-codes.
func (h *Handler) totpRegenerate(w http.ResponseWriter, r *http.Request) {
	id, ok := h.Sessions.SignedInToAccount(w, r)
	if !ok || !parseForm(w, r) || !h.securityCode(w, r, id) {
		return
	}
	codes, err := h.TwoStep.RegenerateRecoveryCodes(r.Context(), id.UserID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "regenerate recovery codes", "err", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return
	}
	audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.RecoveryCodesRegenerated, Actor: id.UserID, Subject: id.UserID})
	h.showRecoveryCodes(w, r, "Your new recovery codes", codes)
}

// totpDisable is POST /account/totp/disable.
func (h *Handler) totpDisable(w http.ResponseWriter, r *http.Request) {
	id, ok := h.Sessions.SignedInToAccount(w, r)
	if !ok || !parseForm(w, r) || !h.securityCode(w, r, id) {
		return
	}
	err := h.TwoStep.Disable(r.Context(), id.UserID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.Logger.ErrorContext(r.Context(), "turn off totp", "err", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return
	}
	audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.MFADisabled, Actor: id.UserID, Subject: id.UserID, Detail: map[string]string{"method": string(MethodTOTP)}})
	h.showSecurity(w, r, id, http.StatusOK, func(v *templates.SecurityView) {
		v.TOTP.Notice = "Authenticator app turned off. Signing in now asks for your password only."
	})
}

// securityCode checks the code a change of the second step needs; when it
// is refused, the security page says why.
func (h *Handler) securityCode(w http.ResponseWriter, r *http.Request, id Identity) bool {
	on, err := h.TwoStep.Enabled(r.Context(), id.UserID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "check code", "err", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return false
	}
	if !on {
		http.Redirect(w, r, "/account/security", http.StatusSeeOther)
		return false
	}
	_, status, message := h.checkCode(w, r, id.UserID, id.Username, r.PostForm.Get("code"))
	if status == 0 {
		return true
	}
	h.showSecurity(w, r, id, status, func(v *templates.SecurityView) { v.TOTP.Error = message })
	return false
}

// totpSection is the authenticator app's state for the security page.
func (h *Handler) totpSection(r *http.Request, id Identity) (*templates.TOTPSection, error) {
	on, err := h.TwoStep.Enabled(r.Context(), id.UserID)
	if err != nil || !on {
		return &templates.TOTPSection{}, err
	}
	left, err := h.TwoStep.RecoveryCodesLeft(r.Context(), id.UserID)
	if err != nil {
		return nil, err
	}
	return &templates.TOTPSection{Enabled: true, RecoveryCodesLeft: left}, nil
}

// groupKey writes a base32 key in groups of four, as apps that take a
// typed key accept it.
func groupKey(key string) string {
	var groups []string
	for len(key) > 4 {
		groups = append(groups, key[:4])
		key = key[4:]
	}
	return strings.Join(append(groups, key), " ")
}
