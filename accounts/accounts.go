package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"

	"gatehouse/audit"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// Store is what accounts needs from the database.
type Store interface {
	CreateUser(ctx context.Context, u storage.User) error
	GetUser(ctx context.Context, id string) (storage.User, error)
	GetUserByUsername(ctx context.Context, username string) (storage.User, error)
	SetUserPassword(ctx context.Context, userID, hash string) error
	ReplacePasswordHash(ctx context.Context, userID, old, hash string) error
}

// Handler serves the home, login, register and logout pages.
type Handler struct {
	Store    Store
	Sessions *Sessions
	Logger   *slog.Logger
	NewPage  func(r *http.Request, title string) templates.Page
	// RegistrationOpen lets anyone create an account at /register.
	RegistrationOpen bool
	// Limiter throttles failed sign-ins per account and per client
	// address.
	Limiter Limiter
	// TrustedProxies are the load balancers whose X-Forwarded-For header
	// names the client for the per-address limit.
	TrustedProxies []netip.Prefix
	Now            func() time.Time
	// FailedLogins, when set, counts sign-ins refused for a wrong username
	// or password; ThrottledLogins those refused by the limits before the
	// password was looked at. Throttled attempts are counted, not audited:
	// past the limit they cost no write, and an audit row each would let
	// anyone fill the table at the rate they can send requests.
	FailedLogins    interface{ Inc() }
	ThrottledLogins interface{ Inc() }
	// Email, when set, mails a confirmation link to an address given at
	// registration.
	Email *Email
	// Audit, when set, records sign-ins and refused ones.
	Audit audit.Recorder
	// Activity, when set, lists the user's events on /account/security.
	Activity ActivityStore
	// Passkeys, when set, lists the user's passkeys on /account/security
	// and offers them on /login when the issuer allows them.
	Passkeys *Passkeys
	// TwoStep, when set, offers an authenticator app on
	// /account/security and asks its users for a code after the password.
	TwoStep *TwoStep
}

// The sign-in limits: within limitWindow, at most accountLimit failures per
// account (counted per known device for a browser that signed in to the
// account before, see Sessions.KnownDevice) and addressLimit per client
// address (an IPv6 /64, see addressKey).
const (
	accountLimit = 5
	addressLimit = 50
	limitWindow  = 15 * time.Minute
)

// maxFormBytes caps every page form; the largest legitimate one is a few
// hundred bytes.
const maxFormBytes = 16 << 10

func (h *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", h.home)
	mux.HandleFunc("GET /login", h.loginPage)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("GET /register", h.registerPage)
	mux.HandleFunc("POST /register", h.register)
	mux.HandleFunc("POST /logout", h.logout)
	mux.HandleFunc("GET /account/security", h.security)
	mux.HandleFunc("POST /account/password", h.changePassword)
	mux.HandleFunc("POST /account/sessions/end", h.endSession)
	mux.HandleFunc("POST /account/sessions/end-others", h.endOtherSessions)
	if h.TwoStep != nil {
		h.mountTwoStep(mux)
	}
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, templates.Home(templates.HomeView{
		Page:             h.NewPage(r, "Gatehouse"),
		RegistrationOpen: h.RegistrationOpen,
	}))
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h.render(w, r, http.StatusOK, templates.Login(templates.LoginView{
		Page:             h.NewPage(r, "Sign in"),
		ReturnTo:         SafeReturnTo(q.Get("return_to")),
		Fresh:            q.Get("fresh") == "1",
		RegistrationOpen: h.RegistrationOpen,
		PasskeyScript:    h.passkeyScript(),
	}))
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	username := strings.ToLower(strings.TrimSpace(r.PostForm.Get("username")))
	password := r.PostForm.Get("password")
	returnTo := SafeReturnTo(r.PostForm.Get("return_to"))
	view := templates.LoginView{
		Page:             h.NewPage(r, "Sign in"),
		Username:         username,
		ReturnTo:         returnTo,
		Fresh:            r.PostForm.Get("fresh") == "1",
		RegistrationOpen: h.RegistrationOpen,
		PasskeyScript:    h.passkeyScript(),
	}
	ctx, now := r.Context(), h.Now()
	accountKey := h.accountKey(r, username)
	// The attempt is reserved, and so counts as failed, before the
	// password is checked. An unanswered reservation fails closed: the
	// password check needs the same database, so refusing costs little
	// availability, while letting the attempt through would lift the limit
	// whenever the reservation can be made to fail.
	attempt, wait, err := h.Limiter.Reserve(ctx, now,
		Limit{Key: accountKey, Max: accountLimit, Window: limitWindow},
		Limit{Key: "addr:" + addressKey(h.clientAddress(r)), Max: addressLimit, Window: limitWindow})
	if err != nil {
		h.Logger.ErrorContext(ctx, "sign in", "err", err)
		view.Error = "Something went wrong. Please try again."
		h.render(w, r, http.StatusInternalServerError, templates.Login(view))
		return
	}
	if wait > 0 {
		if h.ThrottledLogins != nil {
			h.ThrottledLogins.Inc()
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		view.Error = "Too many failed sign-in attempts. Please wait a few minutes and try again."
		h.render(w, r, http.StatusTooManyRequests, templates.Login(view))
		return
	}
	user, ok, err := h.authenticate(ctx, username, password)
	if err != nil {
		h.Logger.ErrorContext(ctx, "sign in", "err", err)
		view.Error = "Something went wrong. Please try again."
		h.render(w, r, http.StatusInternalServerError, templates.Login(view))
		return
	}
	if !ok {
		if h.FailedLogins != nil {
			h.FailedLogins.Inc()
		}
		h.Logger.InfoContext(ctx, "sign in failed", "username", username)
		audit.Record(ctx, h.Audit, signInFailed(user))
		view.Error = "Invalid username or password."
		h.render(w, r, http.StatusUnauthorized, templates.Login(view))
		return
	}
	if user.DisabledAt != nil {
		// Said only now that the password is right, so it tells a
		// guesser nothing; SignIn refuses too, for every other way in.
		audit.Record(ctx, h.Audit, audit.Event{Type: audit.SignInFailed, Actor: user.ID, Subject: user.ID, Detail: map[string]string{"reason": reasonDisabled}})
		view.Error = DisabledMessage
		h.render(w, r, http.StatusForbidden, templates.Login(view))
		return
	}
	// Only the failures counted where this attempt was are forgotten: a
	// user signing in on their own browser leaves the count of guessers
	// elsewhere as it is.
	if err := h.Limiter.Succeeded(ctx, attempt, accountKey); err != nil {
		// The user proved the password; a reservation left behind only
		// shortens their next allowance.
		h.Logger.WarnContext(ctx, "release sign-in attempt", "err", err)
	}
	if h.TwoStep != nil {
		on, err := h.TwoStep.Enabled(ctx, user.ID)
		if err != nil {
			h.Logger.ErrorContext(ctx, "sign in", "err", err)
			view.Error = "Something went wrong. Please try again."
			h.render(w, r, http.StatusInternalServerError, templates.Login(view))
			return
		}
		if on {
			h.askForCode(w, r, Pending{UserID: user.ID, Username: user.Username, ReturnTo: returnTo, AuthTime: now.Unix()})
			return
		}
	}
	audit.Record(ctx, h.Audit, audit.Event{Type: audit.SignIn, Actor: user.ID, Subject: user.ID, Detail: map[string]string{"amr": AMRPassword}})
	h.signIn(w, r, user, returnTo)
}

// passkeyScript is the login page's passkey script, "" when the issuer
// allows no passkeys.
func (h *Handler) passkeyScript() string {
	if !h.Passkeys.Enabled() {
		return ""
	}
	return h.Passkeys.ScriptURL
}

// authenticate checks a password. An unknown username is checked against a
// dummy hash so both failures cost the same time.
func (h *Handler) authenticate(ctx context.Context, username, password string) (storage.User, bool, error) {
	user, err := h.Store.GetUserByUsername(ctx, username)
	hash := user.PasswordHash
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if hash, err = dummyHash(); err != nil {
			return storage.User{}, false, err
		}
	case err != nil:
		return storage.User{}, false, fmt.Errorf("get user: %w", err)
	}
	ok, err := CheckPassword(hash, password)
	if err != nil {
		return storage.User{}, false, fmt.Errorf("check password of %q: %w", username, err)
	}
	ok = ok && user.ID != ""
	if ok && hashOutdated(hash) {
		h.upgradeHash(ctx, user, password)
	}
	return user, ok, nil
}

// upgradeHash replaces a hash made with older parameters once the password
// is known to be right, so that lowering argon2's memory, or raising its
// cost, reaches every account that signs in. A failure only leaves the old
// hash, which still verifies.
func (h *Handler) upgradeHash(ctx context.Context, user storage.User, password string) {
	hash, err := HashPassword(password)
	if err == nil {
		err = h.Store.ReplacePasswordHash(ctx, user.ID, user.PasswordHash, hash)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.Logger.WarnContext(ctx, "upgrade password hash", "user", user.ID, "err", err)
	}
}

// signInFailed is the event of a refused password. The name typed is kept
// only when it names a user: a name that matches nobody is often a
// password typed into the wrong field.
func signInFailed(user storage.User) audit.Event {
	if user.ID == "" {
		return audit.Event{Type: audit.SignInFailed, Actor: audit.ActorAnonymous, Detail: map[string]string{"reason": "unknown_user"}}
	}
	return audit.Event{Type: audit.SignInFailed, Actor: audit.ActorAnonymous, Subject: user.ID, Detail: map[string]string{"reason": "wrong_password", "username": user.Username}}
}

// reasonDisabled is the sign_in_failed reason of a disabled account.
const reasonDisabled = "account_disabled"

// signIn starts the session of a password alone.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, user storage.User, returnTo string) {
	err := h.Sessions.SignIn(w, r, Identity{UserID: user.ID, Username: user.Username, AuthTime: h.Now(), AMR: []string{AMRPassword}})
	if errors.Is(err, ErrAccountDisabled) {
		h.render(w, r, http.StatusForbidden, templates.Login(templates.LoginView{
			Page: h.NewPage(r, "Sign in"), Username: user.Username, ReturnTo: returnTo, Error: DisabledMessage, RegistrationOpen: h.RegistrationOpen,
		}))
		return
	}
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "save session", "err", err)
		http.Error(w, "Could not start a session.", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

func (h *Handler) registerPage(w http.ResponseWriter, r *http.Request) {
	if !h.RegistrationOpen {
		h.closed(w, r)
		return
	}
	h.render(w, r, http.StatusOK, templates.Register(templates.RegisterView{
		Page:     h.NewPage(r, "Create an account"),
		ReturnTo: SafeReturnTo(r.URL.Query().Get("return_to")),
	}))
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	if !h.RegistrationOpen {
		h.closed(w, r)
		return
	}
	if !parseForm(w, r) {
		return
	}
	view := templates.RegisterView{
		Page:     h.NewPage(r, "Create an account"),
		Username: r.PostForm.Get("username"),
		Email:    r.PostForm.Get("email"),
		ReturnTo: SafeReturnTo(r.PostForm.Get("return_to")),
	}
	user, err := RegisterWithEmail(r.Context(), h.Store, view.Username, r.PostForm.Get("password"), view.Email, h.Now())
	var invalid *ValidationError
	switch {
	case errors.As(err, &invalid):
		view.Error = invalid.Message
		h.render(w, r, http.StatusBadRequest, templates.Register(view))
		return
	case errors.Is(err, storage.ErrConflict):
		view.Error = "That username is taken. Please choose another."
		h.render(w, r, http.StatusConflict, templates.Register(view))
		return
	case err != nil:
		h.Logger.ErrorContext(r.Context(), "register", "err", err)
		view.Error = "Something went wrong. Please try again."
		h.render(w, r, http.StatusInternalServerError, templates.Register(view))
		return
	}
	audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.UserCreated, Actor: user.ID, Subject: user.ID, Detail: map[string]string{"username": user.Username}})
	h.welcome(w, r, user, view.ReturnTo)
}

func (h *Handler) closed(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusForbidden, templates.Error(templates.ErrorView{
		Page:    h.NewPage(r, "Registration is closed"),
		Heading: "Registration is closed",
		Message: "This server does not accept new accounts. Ask its operator for one.",
	}))
}

// logout signs out and goes home, or to return_to: the consent page's
// "not you?" button signs out and comes back to the login for the same
// authorization.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	if err := h.Sessions.SignOut(w, r); err != nil {
		h.Logger.ErrorContext(r.Context(), "sign out", "err", err)
		http.Error(w, "Could not end the session on the server. Please try again.", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, SafeReturnTo(r.PostForm.Get("return_to")), http.StatusSeeOther)
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	if err := templates.Write(r.Context(), w, status, c); err != nil {
		h.Logger.ErrorContext(r.Context(), "render page", "err", err)
	}
}

func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "The form could not be read.", status)
		return false
	}
	return true
}

// SafeReturnTo keeps return_to only when it is a path on this server, and
// returns it as http.Redirect will send it: Redirect cleans the path ("/./"
// and "/a/.." go), so a check of the raw string would pass "/./\host",
// which it turns into "/\host", a link to another host for browsers.
// Anything that could leave the server becomes "/": a scheme or host, "//",
// a backslash or control character anywhere (browsers read "\" as "/" and
// drop tabs and newlines, so "/\t/host" is "//host"), and "/" or "\"
// percent-encoded in the path, which a later decoding could turn into one.
func SafeReturnTo(s string) string {
	if s == "" || s[0] != '/' || strings.HasPrefix(s, "//") || !utf8.ValidString(s) || strings.ContainsFunc(s, unsafeInReturnTo) {
		return "/"
	}
	// What http.Redirect does to a path without a scheme or host.
	p, query, _ := strings.Cut(s, "?")
	cleaned := path.Clean(p)
	if strings.HasSuffix(p, "/") && !strings.HasSuffix(cleaned, "/") {
		cleaned += "/"
	}
	if strings.Contains(s, "?") {
		cleaned += "?" + query
	}
	cleaned = escapeNonASCII(cleaned)
	pathPart, _, _ := strings.Cut(cleaned, "?")
	pathPart, _, _ = strings.Cut(pathPart, "#")
	lower := strings.ToLower(pathPart)
	if strings.HasPrefix(cleaned, "//") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return "/"
	}
	u, err := url.Parse(cleaned)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return cleaned
}

// escapeNonASCII percent-encodes every byte outside ASCII, as http.Redirect
// does to a Location.
func escapeNonASCII(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf {
			b.WriteByte(s[i])
			continue
		}
		b.WriteByte('%')
		b.WriteString(strconv.FormatUint(uint64(s[i]), 16))
	}
	return b.String()
}

// unsafeInReturnTo: backslashes and C0, DEL and C1 controls.
func unsafeInReturnTo(c rune) bool {
	return c == '\\' || c < 0x20 || c >= 0x7f && c <= 0x9f
}

// clientAddress is the address the per-address sign-in limit counts and a
// session records.
func (h *Handler) clientAddress(r *http.Request) string {
	return ClientAddress(r, h.TrustedProxies)
}

// ClientAddress is the address a request came from. It is the TCP peer,
// unless the peer is one of the operator's trusted proxies: then it is the
// last X-Forwarded-For entry that is not itself a trusted proxy. Entries
// further left were written by the client and could be anything, so they
// are never used.
func ClientAddress(r *http.Request, trustedProxies []netip.Prefix) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	trusted := func(a netip.Addr) bool {
		for _, p := range trustedProxies {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	addr := peer.Addr().Unmap()
	if !trusted(addr) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = hop.Unmap()
		if !trusted(addr) {
			break
		}
	}
	return addr.String()
}

// addressKey is what the per-address limit counts for an address: an IPv6
// address by its /64, the smallest block a site is given, since anyone
// holding one can use any of its 2^64 addresses; an IPv4 address as is.
// LimitAddress is the client address the per-address limits count: the
// address a request came from (see ClientAddress), an IPv6 one as its /64.
func LimitAddress(r *http.Request, trustedProxies []netip.Prefix) string {
	return addressKey(ClientAddress(r, trustedProxies))
}

func addressKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() {
		return addr
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
}
