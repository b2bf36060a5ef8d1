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
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/a-h/templ"

	"gatehouse/storage"
	"gatehouse/web/templates"
)

// Store is what accounts needs from the database.
type Store interface {
	CreateUser(ctx context.Context, u storage.User) error
	GetUserByUsername(ctx context.Context, username string) (storage.User, error)
}

// Handler serves the home, login, register and logout pages.
type Handler struct {
	Store    Store
	Sessions *Sessions
	Logger   *slog.Logger
	NewPage  func(r *http.Request, title string) templates.Page
	// RegistrationOpen lets anyone create an account at /register.
	RegistrationOpen bool
	// Accounts and Addresses throttle failed sign-ins per username and per
	// client address.
	Accounts  Limiter
	Addresses Limiter
	// TrustedProxies are the load balancers whose X-Forwarded-For header
	// names the client for the per-address limit.
	TrustedProxies []netip.Prefix
	Now            func() time.Time
	// FailedLogins, when set, counts sign-ins refused for a wrong username
	// or password.
	FailedLogins interface{ Inc() }
	// Email, when set, mails a confirmation link to an address given at
	// registration.
	Email *Email
}

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
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, templates.Home(templates.HomeView{
		Page:             h.NewPage(r, "Gatehouse"),
		RegistrationOpen: h.RegistrationOpen,
	}))
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, templates.Login(templates.LoginView{
		Page:             h.NewPage(r, "Sign in"),
		ReturnTo:         SafeReturnTo(r.URL.Query().Get("return_to")),
		RegistrationOpen: h.RegistrationOpen,
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
		RegistrationOpen: h.RegistrationOpen,
	}
	ctx, now := r.Context(), h.Now()
	accountKey, addressKey := "user:"+username, "addr:"+h.clientAddress(r)
	// An unanswered throttle check fails closed: the password check needs
	// the same database, so refusing costs little availability, while
	// letting the attempt through would lift the limit whenever the check
	// can be made to fail.
	wait, err := h.wait(ctx, now, accountKey, addressKey)
	if err != nil {
		h.Logger.ErrorContext(ctx, "sign in", "err", err)
		view.Error = "Something went wrong. Please try again."
		h.render(w, r, http.StatusInternalServerError, templates.Login(view))
		return
	}
	if wait > 0 {
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
		// The password has been checked by now and any answer but a
		// redirect tells a guesser it was wrong, so an error page would
		// protect nothing: a failure that cannot be recorded is logged.
		if err := errors.Join(h.Accounts.Fail(ctx, accountKey, now), h.Addresses.Fail(ctx, addressKey, now)); err != nil {
			h.Logger.ErrorContext(ctx, "record failed sign in", "err", err)
		}
		if h.FailedLogins != nil {
			h.FailedLogins.Inc()
		}
		h.Logger.InfoContext(ctx, "sign in failed", "username", username)
		view.Error = "Invalid username or password."
		h.render(w, r, http.StatusUnauthorized, templates.Login(view))
		return
	}
	if err := h.Accounts.Reset(ctx, accountKey); err != nil {
		// The user proved the password; stale failures can only shorten
		// their next allowance.
		h.Logger.WarnContext(ctx, "clear failed sign ins", "err", err)
	}
	h.signIn(w, r, user, returnTo)
}

// wait is the longer lockout of the account and the client address.
func (h *Handler) wait(ctx context.Context, now time.Time, accountKey, addressKey string) (time.Duration, error) {
	account, err := h.Accounts.Wait(ctx, accountKey, now)
	if err != nil {
		return 0, err
	}
	address, err := h.Addresses.Wait(ctx, addressKey, now)
	if err != nil {
		return 0, err
	}
	return max(account, address), nil
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
	return user, ok && user.ID != "", nil
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, user storage.User, returnTo string) {
	err := h.Sessions.SignIn(w, r, Identity{UserID: user.ID, Username: user.Username, AuthTime: h.Now()})
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
	h.Sessions.SignOut(w)
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

// SafeReturnTo keeps return_to only when it is a path on this server;
// anything that could leave it (a scheme, a host, "//host", "/\host") becomes "/".
func SafeReturnTo(s string) string {
	if s == "" || s[0] != '/' || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") || !utf8.ValidString(s) {
		return "/"
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	return s
}

// clientAddress is the address the per-address sign-in limit counts. It is
// the TCP peer, unless the peer is one of the operator's TrustedProxies:
// then it is the last X-Forwarded-For entry that is not itself a trusted
// proxy. Entries further left were written by the client and could be
// anything, so they are never used.
func (h *Handler) clientAddress(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := peer.Addr().Unmap()
	if !h.trusted(addr) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = hop.Unmap()
		if !h.trusted(addr) {
			break
		}
	}
	return addr.String()
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
