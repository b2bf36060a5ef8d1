package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"gatehouse/audit"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// PasskeyStore is what passkeys need from the database; storage.Store is
// one.
type PasskeyStore interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
	CreatePasskey(ctx context.Context, p storage.Passkey) error
	ListPasskeys(ctx context.Context, userID string) ([]storage.Passkey, error)
	GetPasskeyByCredentialID(ctx context.Context, credentialID []byte) (storage.Passkey, error)
	RenamePasskey(ctx context.Context, userID, id, name string) error
	DeletePasskey(ctx context.Context, userID, id string) error
	UsePasskey(ctx context.Context, credentialID []byte, signCount uint32, backupState bool, at time.Time) error
	CreateWebAuthnChallenge(ctx context.Context, c storage.WebAuthnChallenge) error
	ConsumeWebAuthnChallenge(ctx context.Context, hash, purpose, binding string, now time.Time) (storage.WebAuthnChallenge, error)
	CountRequest(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error)
}

// Passkeys serves WebAuthn: adding passkeys on the security page and
// signing in with one. The relying party is the issuer: its host is the RP
// ID and its origin the only origin accepted.
type Passkeys struct {
	Store    PasskeyStore
	Sessions *Sessions
	Logger   *slog.Logger
	// Limiter counts every refused passkey sign-in under the same
	// per-address limit as wrong passwords.
	Limiter        Limiter
	TrustedProxies []netip.Prefix
	Audit          audit.Recorder
	Now            func() time.Time
	NewPage        func(r *http.Request, title string) templates.Page
	// ScriptURL is the URL of web/static/passkey.js.
	ScriptURL string
	// Secure marks the pre-sign-in cookie Secure (https issuers).
	Secure bool

	rp *webauthn.WebAuthn
}

const (
	// ceremonyTTL is how long a begun registration or sign-in may take;
	// browsers are given the same as their timeout.
	ceremonyTTL = 5 * time.Minute
	// maxPasskeyBody bounds the JSON of a finish: an assertion or an
	// attestation without certificates is well under 4 KiB.
	maxPasskeyBody = 64 << 10
	// maxPasskeyName bounds a passkey's name, in characters.
	maxPasskeyName = 64
	// beginLimit bounds the ceremonies one client address may begin per
	// beginWindow: each stores a row until it expires.
	beginLimit  = 120
	beginWindow = 10 * time.Minute

	purposeRegister = "register"
	purposeLogin    = "login"
)

// ErrNoPasskeyHost is UseIssuer's answer for an issuer whose host is an IP
// address: WebAuthn needs a domain as the relying party ID.
var ErrNoPasskeyHost = errors.New("passkeys need an issuer with a host name, not an IP address")

// UseIssuer makes issuer the relying party. It returns ErrNoPasskeyHost
// for an issuer passkeys cannot work with; p then stays disabled.
func (p *Passkeys) UseIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return fmt.Errorf("passkeys: issuer %q is not an absolute URL", issuer)
	}
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err != nil && net.ParseIP(host) == nil {
		rp, err := webauthn.New(&webauthn.Config{
			RPID:                  host,
			RPDisplayName:         "Gatehouse",
			RPOrigins:             []string{u.Scheme + "://" + u.Host},
			AttestationPreference: protocol.PreferNoAttestation,
			AuthenticatorSelection: protocol.AuthenticatorSelection{
				RequireResidentKey: protocol.ResidentKeyRequired(),
				ResidentKey:        protocol.ResidentKeyRequirementRequired,
				UserVerification:   protocol.VerificationRequired,
			},
			Timeouts: webauthn.TimeoutsConfig{
				Login:        webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
				Registration: webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
			},
		})
		if err != nil {
			return fmt.Errorf("passkeys: %w", err)
		}
		p.rp = rp
		return nil
	}
	return ErrNoPasskeyHost
}

// Enabled says whether the issuer allows passkeys.
func (p *Passkeys) Enabled() bool { return p != nil && p.rp != nil }

// Mount routes the passkey endpoints. When the issuer allows no
// passkeys they answer 404, saying why.
func (p *Passkeys) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST /account/passkeys/register/begin", p.enabledJSON(p.registerBegin))
	mux.HandleFunc("POST /account/passkeys/register/finish", p.enabledJSON(p.registerFinish))
	mux.HandleFunc("POST /account/passkeys/{id}/rename", p.enabledForm(p.rename))
	mux.HandleFunc("POST /account/passkeys/{id}/remove", p.enabledForm(p.remove))
	mux.HandleFunc("POST /login/passkey/begin", p.enabledJSON(p.loginBegin))
	mux.HandleFunc("POST /login/passkey/finish", p.enabledJSON(p.loginFinish))
}

const passkeysOff = "Passkeys are off on this server: it is reached at an IP address, and browsers accept passkeys only for a host name."

func (p *Passkeys) enabledJSON(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !p.Enabled() {
			p.fail(w, r, http.StatusNotFound, "not_found", passkeysOff)
			return
		}
		h(w, r)
	}
}

func (p *Passkeys) enabledForm(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !p.Enabled() {
			p.message(w, r, http.StatusNotFound, "Passkeys are off", passkeysOff)
			return
		}
		h(w, r)
	}
}

// passkeyUser is a user as the WebAuthn library sees it. The user handle
// is Gatehouse's user id, so a discoverable sign-in names the account.
type passkeyUser struct {
	user  storage.User
	creds []webauthn.Credential
}

func (u passkeyUser) WebAuthnID() []byte                         { return []byte(u.user.ID) }
func (u passkeyUser) WebAuthnName() string                       { return u.user.Username }
func (u passkeyUser) WebAuthnDisplayName() string                { return u.user.Username }
func (u passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func credential(k storage.Passkey) webauthn.Credential {
	transports := make([]protocol.AuthenticatorTransport, len(k.Transports))
	for i, t := range k.Transports {
		transports[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID:        k.CredentialID,
		PublicKey: k.PublicKey,
		Transport: transports,
		Flags: webauthn.CredentialFlags{
			UserPresent: true, UserVerified: true,
			BackupEligible: k.BackupEligible, BackupState: k.BackupState,
		},
		Authenticator: webauthn.Authenticator{AAGUID: k.AAGUID, SignCount: k.SignCount},
	}
}

// PasskeyAMR are the authentication methods (RFC 8176) of a passkey
// sign-in. User verification is required, so the passkey is two factors
// at once, something held and a PIN or biometric: "mfa". A credential
// that may be synced to other devices is a software key ("swk"); one
// bound to its authenticator a hardware key ("hwk").
func PasskeyAMR(backupEligible bool) []string {
	if backupEligible {
		return []string{"swk", "mfa"}
	}
	return []string{"hwk", "mfa"}
}

// passkeyError is the JSON body of every refused passkey request, in the
// shape of the server's other JSON errors (RFC 6749 §5.2).
type passkeyError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	// SignIn, on a registration that needs a fresh sign-in, is where to
	// get one.
	SignIn string `json:"sign_in,omitempty"`
}

func (p *Passkeys) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		p.Logger.DebugContext(r.Context(), "write passkey answer", "err", err)
	}
}

func (p *Passkeys) fail(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	p.writeJSON(w, r, status, passkeyError{Error: code, Description: message})
}

func (p *Passkeys) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.Logger.ErrorContext(r.Context(), what, "err", err)
	p.fail(w, r, http.StatusInternalServerError, "server_error", "Something went wrong. Please try again.")
}

// readJSON decodes a request body of at most maxPasskeyBody bytes into v;
// it writes the error itself and returns false when it cannot.
func (p *Passkeys) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt := r.Header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		p.fail(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the request as application/json.")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPasskeyBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		p.fail(w, r, http.StatusRequestEntityTooLarge, "request_too_large", "The request is too large.")
		return false
	case err != nil:
		p.fail(w, r, http.StatusBadRequest, "invalid_request", "The request could not be read.")
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		p.fail(w, r, http.StatusBadRequest, "invalid_request", "The request is not valid JSON.")
		return false
	}
	return true
}

// allowBegin bounds the ceremonies a client address begins; a refusal is
// written here.
func (p *Passkeys) allowBegin(w http.ResponseWriter, r *http.Request) bool {
	n, start, err := p.Store.CountRequest(r.Context(), "webauthn "+LimitAddress(r, p.TrustedProxies), p.Now(), beginWindow)
	if err != nil {
		p.internal(w, r, "count passkey ceremonies", err)
		return false
	}
	if n > beginLimit {
		wait := start.Add(beginWindow).Sub(p.Now())
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		p.fail(w, r, http.StatusTooManyRequests, "too_many_requests", "Too many passkey requests. Please wait a few minutes and try again.")
		return false
	}
	return true
}

// saveCeremony stores what Finish needs, bound to binding.
func (p *Passkeys) saveCeremony(ctx context.Context, purpose, binding, userID string, s *webauthn.SessionData) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode ceremony: %w", err)
	}
	now := p.Now()
	return p.Store.CreateWebAuthnChallenge(ctx, storage.WebAuthnChallenge{
		Hash: digest(s.Challenge), Purpose: purpose, Binding: binding, UserID: userID,
		Data: data, CreatedAt: now, ExpiresAt: now.Add(ceremonyTTL),
	})
}

// errCeremony is a challenge that is unknown, used, expired or another
// browser's: all look alike from here, and all are refused alike.
var errCeremony = errors.New("no such ceremony")

// takeCeremony consumes the ceremony whose challenge the browser's answer
// signed.
func (p *Passkeys) takeCeremony(ctx context.Context, challenge, purpose, binding string) (storage.WebAuthnChallenge, webauthn.SessionData, error) {
	var s webauthn.SessionData
	if challenge == "" || binding == "" {
		return storage.WebAuthnChallenge{}, s, errCeremony
	}
	c, err := p.Store.ConsumeWebAuthnChallenge(ctx, digest(challenge), purpose, binding, p.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return c, s, errCeremony
	}
	if err != nil {
		return c, s, err
	}
	if err := json.Unmarshal(c.Data, &s); err != nil {
		return c, s, fmt.Errorf("decode ceremony: %w", err)
	}
	return c, s, nil
}

const ceremonyMessage = "This passkey request has expired or was already used. Please try again."

// registerBegin is POST /account/passkeys/register/begin: the options for
// navigator.credentials.create.
func (p *Passkeys) registerBegin(w http.ResponseWriter, r *http.Request) {
	id, ok := p.Sessions.Identity(r)
	if !ok {
		p.fail(w, r, http.StatusUnauthorized, "login_required", "Sign in to add a passkey.")
		return
	}
	if p.Now().Sub(id.AuthTime) > freshSignIn {
		p.writeJSON(w, r, http.StatusForbidden, passkeyError{
			Error: "login_required", Description: "For your safety, sign in again to add a passkey.",
			SignIn: "/login?" + url.Values{"fresh": {"1"}, "return_to": {"/account/security"}}.Encode(),
		})
		return
	}
	if !p.allowBegin(w, r) {
		return
	}
	ctx := r.Context()
	user, err := p.loadUser(ctx, id.UserID)
	if err != nil {
		p.internal(w, r, "load passkey user", err)
		return
	}
	exclude := make([]protocol.CredentialDescriptor, len(user.creds))
	for i, c := range user.creds {
		exclude[i] = c.Descriptor()
	}
	creation, session, err := p.rp.BeginRegistration(user, webauthn.WithExclusions(exclude))
	if err != nil {
		p.internal(w, r, "begin passkey registration", err)
		return
	}
	if err := p.saveCeremony(ctx, purposeRegister, id.SessionID, id.UserID, session); err != nil {
		p.internal(w, r, "save passkey registration", err)
		return
	}
	p.writeJSON(w, r, http.StatusOK, creation)
}

func (p *Passkeys) loadUser(ctx context.Context, userID string) (passkeyUser, error) {
	u, err := p.Store.GetUser(ctx, userID)
	if err != nil {
		return passkeyUser{}, err
	}
	keys, err := p.Store.ListPasskeys(ctx, userID)
	if err != nil {
		return passkeyUser{}, err
	}
	pu := passkeyUser{user: u}
	for _, k := range keys {
		pu.creds = append(pu.creds, credential(k))
	}
	return pu, nil
}

// finishRequest is the body of both finish endpoints: the browser's
// PublicKeyCredential as JSON, and around it what the page adds.
type finishRequest struct {
	Credential json.RawMessage `json:"credential"`
	Name       string          `json:"name"`
	ReturnTo   string          `json:"return_to"`
}

// registerFinish is POST /account/passkeys/register/finish.
func (p *Passkeys) registerFinish(w http.ResponseWriter, r *http.Request) {
	id, ok := p.Sessions.Identity(r)
	if !ok {
		p.fail(w, r, http.StatusUnauthorized, "login_required", "Sign in to add a passkey.")
		return
	}
	var req finishRequest
	if !p.readJSON(w, r, &req) {
		return
	}
	name, err := passkeyName(req.Name)
	if err != nil {
		p.fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(req.Credential)
	if err != nil {
		p.fail(w, r, http.StatusBadRequest, "invalid_request", "The passkey's answer could not be read. Please try again.")
		return
	}
	ctx := r.Context()
	c, session, err := p.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, purposeRegister, id.SessionID)
	switch {
	case errors.Is(err, errCeremony) || err == nil && c.UserID != id.UserID:
		p.fail(w, r, http.StatusBadRequest, "invalid_request", ceremonyMessage)
		return
	case err != nil:
		p.internal(w, r, "finish passkey registration", err)
		return
	}
	user, err := p.loadUser(ctx, id.UserID)
	if err != nil {
		p.internal(w, r, "load passkey user", err)
		return
	}
	cred, err := p.rp.CreateCredential(user, session, parsed)
	if err != nil {
		p.Logger.InfoContext(ctx, "passkey registration refused", "user_id", id.UserID, "err", describeWebAuthnError(err))
		p.fail(w, r, http.StatusBadRequest, "invalid_request", "The passkey could not be checked, so it was not added. Please try again.")
		return
	}
	transports := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		transports[i] = string(t)
	}
	key := storage.Passkey{
		ID: storage.NewID(), UserID: id.UserID, Name: name,
		CredentialID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, Transports: transports,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		CreatedAt: p.Now(),
	}
	if key.Name == "" {
		key.Name = fmt.Sprintf("Passkey %d", len(user.creds)+1)
	}
	switch err := p.Store.CreatePasskey(ctx, key); {
	case errors.Is(err, storage.ErrConflict):
		p.fail(w, r, http.StatusConflict, "invalid_request", "This passkey is already registered.")
		return
	case err != nil:
		p.internal(w, r, "save passkey", err)
		return
	}
	audit.Record(ctx, p.Audit, audit.Event{Type: audit.PasskeyAdded, Actor: id.UserID, Subject: id.UserID,
		Detail: map[string]string{"passkey": key.Name}})
	p.writeJSON(w, r, http.StatusOK, map[string]string{"id": key.ID, "name": key.Name})
}

// passkeyName checks a name typed for a passkey; "" stays "" (a default
// is chosen).
func passkeyName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return "", &ValidationError{"A passkey's name cannot contain control characters."}
	}
	if utf8.RuneCountInString(s) > maxPasskeyName {
		return "", &ValidationError{fmt.Sprintf("A passkey's name can be at most %d characters.", maxPasskeyName)}
	}
	return s, nil
}

// loginBegin is POST /login/passkey/begin: the options for
// navigator.credentials.get, for a discoverable credential (the passkey
// names the account). {"conditional": true} asks for the autofill form.
func (p *Passkeys) loginBegin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Conditional bool `json:"conditional"`
	}
	if !p.readJSON(w, r, &req) || !p.allowBegin(w, r) {
		return
	}
	binding := p.preLoginBinding(w, r)
	opts := []webauthn.LoginOption{webauthn.WithUserVerification(protocol.VerificationRequired)}
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		err       error
	)
	if req.Conditional {
		assertion, session, err = p.rp.BeginDiscoverableMediatedLogin(protocol.MediationConditional, opts...)
	} else {
		assertion, session, err = p.rp.BeginDiscoverableLogin(opts...)
	}
	if err != nil {
		p.internal(w, r, "begin passkey sign-in", err)
		return
	}
	if err := p.saveCeremony(r.Context(), purposeLogin, binding, "", session); err != nil {
		p.internal(w, r, "save passkey sign-in", err)
		return
	}
	p.writeJSON(w, r, http.StatusOK, assertion)
}

// preLoginName is the cookie that binds a sign-in ceremony to the browser
// that began it, before anyone is signed in.
func (p *Passkeys) preLoginName() string {
	if p.Secure {
		return "__Host-gatehouse_webauthn"
	}
	return "gatehouse_webauthn"
}

// preLoginBinding returns the binding of r's browser, giving it a cookie
// when it has none.
func (p *Passkeys) preLoginBinding(w http.ResponseWriter, r *http.Request) string {
	if b, ok := p.existingBinding(r); ok {
		return b
	}
	v := randomID()
	http.SetCookie(w, &http.Cookie{Name: p.preLoginName(), Value: v, Path: "/", MaxAge: int(ceremonyTTL / time.Second),
		HttpOnly: true, Secure: p.Secure, SameSite: http.SameSiteLaxMode})
	return digest(v)
}

func (p *Passkeys) existingBinding(r *http.Request) (string, bool) {
	c, err := r.Cookie(p.preLoginName())
	if err != nil || len(c.Value) < 32 {
		return "", false
	}
	return digest(c.Value), true
}

// loginFinish is POST /login/passkey/finish. Every refusal counts as a
// failed sign-in of the client address, like a wrong password.
func (p *Passkeys) loginFinish(w http.ResponseWriter, r *http.Request) {
	var req finishRequest
	if !p.readJSON(w, r, &req) {
		return
	}
	ctx, now := r.Context(), p.Now()
	attempt, wait, err := p.Limiter.Reserve(ctx, now,
		Limit{Key: "addr:" + LimitAddress(r, p.TrustedProxies), Max: addressLimit, Window: limitWindow})
	if err != nil {
		p.internal(w, r, "passkey sign-in", err)
		return
	}
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		p.fail(w, r, http.StatusTooManyRequests, "too_many_requests", "Too many failed sign-in attempts. Please wait a few minutes and try again.")
		return
	}
	user, key, status, msg, err := p.verifyAssertion(ctx, r, req.Credential)
	if err != nil {
		p.internal(w, r, "passkey sign-in", err)
		return
	}
	if status != http.StatusOK {
		p.fail(w, r, status, "access_denied", msg)
		return
	}
	if err := p.Limiter.Succeeded(ctx, attempt); err != nil {
		p.Logger.WarnContext(ctx, "release sign-in attempt", "err", err)
	}
	err = p.Sessions.SignIn(w, r, Identity{UserID: user.ID, Username: user.Username, AuthTime: now, AMR: PasskeyAMR(key.BackupEligible)})
	if errors.Is(err, ErrAccountDisabled) {
		// Said only once the passkey checked out, as for a password.
		audit.Record(ctx, p.Audit, audit.Event{Type: audit.SignInFailed, Actor: user.ID, Subject: user.ID,
			Detail: map[string]string{"method": "passkey", "reason": reasonDisabled}})
		p.fail(w, r, http.StatusForbidden, "access_denied", DisabledMessage)
		return
	}
	if err != nil {
		p.internal(w, r, "save session", err)
		return
	}
	audit.Record(ctx, p.Audit, audit.Event{Type: audit.SignIn, Actor: user.ID, Subject: user.ID,
		Detail: map[string]string{"method": "passkey", "passkey": key.Name}})
	p.writeJSON(w, r, http.StatusOK, map[string]string{"redirect": SafeReturnTo(req.ReturnTo)})
}

// verifyAssertion checks a sign-in's answer. A refusal is a status and a
// message for the user; err is for failures of the server.
func (p *Passkeys) verifyAssertion(ctx context.Context, r *http.Request, raw json.RawMessage) (storage.User, storage.Passkey, int, string, error) {
	var user storage.User
	var key storage.Passkey
	parsed, err := protocol.ParseCredentialRequestResponseBytes(raw)
	if err != nil {
		return user, key, http.StatusBadRequest, "The passkey's answer could not be read. Please try again.", nil
	}
	binding, _ := p.existingBinding(r)
	_, session, err := p.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, purposeLogin, binding)
	switch {
	case errors.Is(err, errCeremony):
		p.refused(ctx, "", "expired_or_replayed")
		return user, key, http.StatusBadRequest, ceremonyMessage, nil
	case err != nil:
		return user, key, 0, "", err
	}
	var lookupErr error
	find := func(rawID, userHandle []byte) (webauthn.User, error) {
		k, err := p.Store.GetPasskeyByCredentialID(ctx, rawID)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		if k.UserID != string(userHandle) {
			lookupErr = storage.ErrNotFound
			return nil, lookupErr
		}
		u, err := p.Store.GetUser(ctx, k.UserID)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		user, key = u, k
		return passkeyUser{user: u, creds: []webauthn.Credential{credential(k)}}, nil
	}
	_, cred, err := p.rp.ValidatePasskeyLogin(find, session, parsed)
	switch {
	case lookupErr != nil && !errors.Is(lookupErr, storage.ErrNotFound):
		return user, key, 0, "", lookupErr
	case lookupErr != nil:
		p.refused(ctx, "", "unknown_passkey")
		return user, key, http.StatusUnauthorized, "This passkey is not registered here. Sign in with your password, then add it on the Security page.", nil
	case err != nil:
		p.Logger.InfoContext(ctx, "passkey sign-in refused", "user_id", user.ID, "err", describeWebAuthnError(err))
		p.refused(ctx, user.ID, "passkey_invalid")
		return user, key, http.StatusUnauthorized, "The passkey's answer did not check out for this site. Please try again.", nil
	case cred.Authenticator.CloneWarning:
		p.Logger.WarnContext(ctx, "passkey counter went back", "user_id", user.ID, "passkey", key.ID)
		p.refused(ctx, user.ID, "passkey_cloned")
		return user, key, http.StatusUnauthorized, clonedMessage, nil
	}
	err = p.Store.UsePasskey(ctx, cred.ID, cred.Authenticator.SignCount, cred.Flags.BackupState, p.Now())
	switch {
	case errors.Is(err, storage.ErrInactive):
		p.refused(ctx, user.ID, "passkey_cloned")
		return user, key, http.StatusUnauthorized, clonedMessage, nil
	case errors.Is(err, storage.ErrNotFound):
		p.refused(ctx, "", "unknown_passkey")
		return user, key, http.StatusUnauthorized, "This passkey was removed. Sign in with your password.", nil
	case err != nil:
		return user, key, 0, "", err
	}
	return user, key, http.StatusOK, "", nil
}

const clonedMessage = "This passkey's counter went backwards, a sign it may have been copied, so it was refused. Sign in with your password and check your passkeys on the Security page."

// refused records a refused passkey sign-in. userID is "" when the passkey
// named no account.
func (p *Passkeys) refused(ctx context.Context, userID, reason string) {
	audit.Record(ctx, p.Audit, audit.Event{Type: audit.SignInFailed, Actor: audit.ActorAnonymous, Subject: userID,
		Detail: map[string]string{"method": "passkey", "reason": reason}})
}

// describeWebAuthnError is the library's reason for a refusal, for the log.
func describeWebAuthnError(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return strings.TrimSpace(pe.Type + ": " + pe.Details + " " + pe.DevInfo)
	}
	return err.Error()
}

// rename is POST /account/passkeys/{id}/rename, a plain form.
func (p *Passkeys) rename(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	id, ok := p.Sessions.SignedInToAccount(w, r)
	if !ok {
		return
	}
	name, err := passkeyName(r.PostForm.Get("name"))
	if err == nil && name == "" {
		err = &ValidationError{"Give the passkey a name."}
	}
	if err != nil {
		p.message(w, r, http.StatusBadRequest, "The passkey was not renamed", err.Error())
		return
	}
	switch err := p.Store.RenamePasskey(r.Context(), id.UserID, r.PathValue("id"), name); {
	case errors.Is(err, storage.ErrNotFound):
		p.message(w, r, http.StatusNotFound, "No such passkey", "That passkey is not one of yours, or it was removed.")
		return
	case err != nil:
		p.Logger.ErrorContext(r.Context(), "rename passkey", "err", err)
		p.message(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again.")
		return
	}
	http.Redirect(w, r, "/account/security#passkeys", http.StatusSeeOther)
}

// remove is POST /account/passkeys/{id}/remove, a plain form.
func (p *Passkeys) remove(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	id, ok := p.Sessions.SignedInToAccount(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	switch err := p.Store.DeletePasskey(ctx, id.UserID, r.PathValue("id")); {
	case errors.Is(err, storage.ErrNotFound):
		p.message(w, r, http.StatusNotFound, "No such passkey", "That passkey is not one of yours, or it was removed.")
		return
	case errors.Is(err, storage.ErrLastPasskey):
		p.message(w, r, http.StatusConflict, "This passkey was kept", "It is the only way left to sign in to your account, which has no password.")
		return
	case err != nil:
		p.Logger.ErrorContext(ctx, "remove passkey", "err", err)
		p.message(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again.")
		return
	}
	audit.Record(ctx, p.Audit, audit.Event{Type: audit.PasskeyRemoved, Actor: id.UserID, Subject: id.UserID})
	http.Redirect(w, r, "/account/security#passkeys", http.StatusSeeOther)
}

func (p *Passkeys) message(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	err := templates.Write(r.Context(), w, status, templates.Error(templates.ErrorView{
		Page: p.NewPage(r, heading), Heading: heading, Message: msg,
	}))
	if err != nil {
		p.Logger.ErrorContext(r.Context(), "render page", "err", err)
	}
}

// section is the security page's list of the user's passkeys.
func (p *Passkeys) section(ctx context.Context, userID string) (templates.PasskeysSection, error) {
	s := templates.PasskeysSection{Available: p.Enabled(), ScriptURL: p.ScriptURL}
	if !s.Available {
		return s, nil
	}
	keys, err := p.Store.ListPasskeys(ctx, userID)
	if err != nil {
		return s, err
	}
	for _, k := range keys {
		s.Keys = append(s.Keys, templates.PasskeyEntry{ID: k.ID, Name: k.Name, Created: k.CreatedAt, LastUsed: k.LastUsedAt, Synced: k.BackupEligible})
	}
	return s, nil
}
