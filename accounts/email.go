package accounts

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"gatehouse/audit"
	"gatehouse/mail"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// EmailStore is what the address and password reset pages need.
type EmailStore interface {
	Store
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	GetUser(ctx context.Context, id string) (storage.User, error)
	GetUserByVerifiedEmail(ctx context.Context, email string) (storage.User, error)
	SetUserEmail(ctx context.Context, userID, email string, verified bool) error
	VerifyUserEmail(ctx context.Context, userID, email string) error
	SetUserPassword(ctx context.Context, userID, hash string) error
	CreateEmailToken(ctx context.Context, t storage.EmailToken) error
	GetEmailToken(ctx context.Context, hash string) (storage.EmailToken, error)
	UseEmailToken(ctx context.Context, hash string, at time.Time) error
}

// Mailer delivers one message; *mail.Sender is one.
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

// Email serves the address settings, the verification links and the
// password reset by email.
type Email struct {
	Store    EmailStore
	Sessions *Sessions
	Logger   *slog.Logger
	NewPage  func(r *http.Request, title string) templates.Page
	// Mailer is nil when no SMTP relay is configured: the pages say so and
	// addresses are verified only by the operator's CLI.
	Mailer Mailer
	// Issuer is the public base URL the mailed links start with.
	Issuer string
	Now    func() time.Time
	// Limiter keeps the sign-in's attempt rows: wrong current passwords on
	// the address form count under the sign-in's own per-account limit, so
	// the form is no side door for guessing; mail is throttled in the same
	// table, reset requests per typed address (a 429 answer, the same for
	// every address), then reset and verification mails per account
	// (silent, so that they reveal nothing). Each send counts one attempt.
	Limiter Limiter
	// Audit, when set, records address changes and confirmations and
	// password resets.
	Audit audit.Recorder

	// mailSlots bounds the reset mails being sent in the background.
	mailSlots chan struct{}
}

const (
	verifyLinkTTL = 24 * time.Hour
	resetLinkTTL  = 30 * time.Minute
	// freshSignIn is how recent a sign-in lets the address change without
	// the current password.
	freshSignIn = 5 * time.Minute

	resetsPerAddress        = 5
	resetsPerAccount        = 3
	verificationsPerAccount = 5
	mailWindow              = time.Hour
)

func (h *Email) Mount(mux *http.ServeMux) {
	h.mailSlots = make(chan struct{}, 64)
	mux.HandleFunc("GET /account/email", h.settingsPage)
	mux.HandleFunc("POST /account/email", h.change)
	mux.HandleFunc("POST /account/email/resend", h.resend)
	mux.HandleFunc("GET /email/verify", h.verifyPage)
	mux.HandleFunc("POST /email/verify", h.verify)
	mux.HandleFunc("GET /password/forgot", h.forgotPage)
	mux.HandleFunc("POST /password/forgot", h.forgot)
	mux.HandleFunc("GET /password/reset", h.resetPage)
	mux.HandleFunc("POST /password/reset", h.reset)
}

// NormalizeEmail checks an address typed into a form: "" (none) or one
// plain address-spec, with nothing that could become a second header or
// recipient in a mail.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || len(s) > 254 {
		return "", &ValidationError{"Enter one email address, like name@example.com."}
	}
	return s, nil
}

// newLink stores a mailed link by the hash of its token and returns the
// token.
func (h *Email) newLink(ctx context.Context, purpose storage.EmailPurpose, u storage.User, ttl time.Duration) (string, error) {
	var b [32]byte
	rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := h.Now().UTC()
	err := h.Store.CreateEmailToken(ctx, storage.EmailToken{Hash: tokenHash(token), Purpose: purpose, UserID: u.ID,
		Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		return "", fmt.Errorf("store %s link: %w", purpose, err)
	}
	return token, nil
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func (h *Email) serverName() string {
	if u, err := url.Parse(h.Issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "Gatehouse"
}

// send renders both alternatives and delivers them.
func (h *Email) send(ctx context.Context, to, subject string, text, html templ.Component) error {
	var t, m bytes.Buffer
	if err := text.Render(ctx, &t); err != nil {
		return err
	}
	if err := html.Render(ctx, &m); err != nil {
		return err
	}
	return h.Mailer.Send(ctx, mail.Message{To: to, Subject: subject, Text: t.String(), HTML: m.String()})
}

// sendVerification mails a link confirming u's current address.
func (h *Email) sendVerification(ctx context.Context, u storage.User) error {
	token, err := h.newLink(ctx, storage.PurposeVerify, u, verifyLinkTTL)
	if err != nil {
		return err
	}
	v := templates.MailView{ServerName: h.serverName(), Username: u.Username, Address: u.Email,
		Link: h.Issuer + "/email/verify?token=" + token, Lifetime: "24 hours"}
	return h.send(ctx, u.Email, "Confirm your email address for "+v.ServerName,
		templates.VerifyEmailText(v), templates.VerifyEmailHTML(v))
}

// allow records one send under key, at most max within mailWindow, and
// says how long to wait when the limit is full.
func (h *Email) allow(ctx context.Context, key string, max int) (time.Duration, error) {
	_, wait, err := h.Limiter.Reserve(ctx, h.Now(), Limit{Key: key, Max: max, Window: mailWindow})
	return wait, err
}

// signedInUser loads the signed-in user, or sends the browser to sign in.
func (h *Email) signedInUser(w http.ResponseWriter, r *http.Request) (Identity, storage.User, bool) {
	id, ok := h.Sessions.Identity(r)
	if !ok {
		http.Redirect(w, r, "/login?"+url.Values{"return_to": {"/account/email"}}.Encode(), http.StatusSeeOther)
		return Identity{}, storage.User{}, false
	}
	u, err := h.Store.GetUser(r.Context(), id.UserID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "load user", "err", err)
		h.message(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again.")
		return Identity{}, storage.User{}, false
	}
	return id, u, true
}

func (h *Email) section(id Identity, u storage.User) templates.EmailSection {
	return templates.EmailSection{
		Email:          u.Email,
		Verified:       u.EmailVerified,
		MailConfigured: h.Mailer != nil,
		NeedPassword:   h.Now().Sub(id.AuthTime) > freshSignIn,
	}
}

func (h *Email) settings(w http.ResponseWriter, r *http.Request, status int, s templates.EmailSection) {
	h.render(w, r, status, templates.EmailSettings(templates.EmailSettingsView{Page: h.NewPage(r, "Email address"), EmailSection: s}))
}

func (h *Email) settingsPage(w http.ResponseWriter, r *http.Request) {
	id, u, ok := h.signedInUser(w, r)
	if !ok {
		return
	}
	h.settings(w, r, http.StatusOK, h.section(id, u))
}

// change replaces the address with a new, unverified one and mails a link
// to confirm it. Whether another account verified the address is not
// said here, where any account holder could ask about any address; the
// link's page says it, to whoever reads that mailbox.
func (h *Email) change(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	id, u, ok := h.signedInUser(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	s := h.section(id, u)
	s.Typed = r.PostForm.Get("email")
	email, err := NormalizeEmail(s.Typed)
	if err != nil {
		s.Error = err.Error()
		h.settings(w, r, http.StatusBadRequest, s)
		return
	}
	if s.NeedPassword {
		status, msg := h.checkCurrentPassword(r, u)
		if status != http.StatusOK {
			s.Error = msg
			h.settings(w, r, status, s)
			return
		}
	}
	if strings.EqualFold(email, u.Email) && u.EmailVerified {
		s.Notice = "That is already your verified address."
		h.settings(w, r, http.StatusOK, s)
		return
	}
	if err := h.Store.SetUserEmail(ctx, u.ID, email, false); err != nil {
		h.Logger.ErrorContext(ctx, "change email", "err", err)
		s.Error = "Something went wrong. Please try again."
		h.settings(w, r, http.StatusInternalServerError, s)
		return
	}
	u.Email, u.EmailVerified = email, false
	audit.Record(ctx, h.Audit, audit.Event{Type: audit.EmailChanged, Actor: u.ID, Subject: u.ID, Detail: map[string]string{"verified": "false"}})
	s = h.section(id, u)
	switch {
	case email == "":
		s.Notice = "Your email address was removed."
	case h.Mailer == nil:
		s.Notice = "Address saved. It stays unverified: this server cannot send mail."
	default:
		s.Notice, s.Error = h.mailVerification(ctx, u)
	}
	h.settings(w, r, http.StatusOK, s)
}

// mailVerification sends the link and words the outcome for the page. A
// failed send keeps the address already saved.
func (h *Email) mailVerification(ctx context.Context, u storage.User) (notice, failure string) {
	if wait, err := h.allow(ctx, "verify-user:"+u.ID, verificationsPerAccount); err != nil || wait > 0 {
		if err != nil {
			h.Logger.ErrorContext(ctx, "verification throttle", "err", err)
		}
		return "", "Address saved, but we could not send the confirmation link: too many were sent lately. Try again in an hour."
	}
	if err := h.sendVerification(ctx, u); err != nil {
		h.Logger.ErrorContext(ctx, "could not send verification mail", "user_id", u.ID, "err", err)
		return "", "Address saved, but we could not send the confirmation link. Please try again later."
	}
	return "We sent a link to " + u.Email + ". Open it to confirm the address.", ""
}

// checkCurrentPassword checks the form's password under the sign-in's
// per-account limit.
func (h *Email) checkCurrentPassword(r *http.Request, u storage.User) (int, string) {
	ctx, key := r.Context(), "user:"+u.Username
	// Reserved before the check, as at sign-in, so a burst of guesses
	// cannot all slip under the limit.
	attempt, wait, err := h.Limiter.Reserve(ctx, h.Now(), Limit{Key: key, Max: accountLimit, Window: limitWindow})
	if err != nil {
		h.Logger.ErrorContext(ctx, "password throttle", "err", err)
		return http.StatusInternalServerError, "Something went wrong. Please try again."
	}
	if wait > 0 {
		return http.StatusTooManyRequests, "Too many wrong passwords. Please wait " + strconv.Itoa(int(math.Ceil(wait.Minutes()))) + " minutes and try again."
	}
	ok, err := CheckPassword(u.PasswordHash, r.PostForm.Get("password"))
	if err != nil {
		h.Logger.ErrorContext(ctx, "check password", "err", err)
		return http.StatusInternalServerError, "Something went wrong. Please try again."
	}
	if !ok {
		return http.StatusUnauthorized, "Your current password is not right."
	}
	if err := h.Limiter.Succeeded(ctx, attempt); err != nil {
		h.Logger.WarnContext(ctx, "release password attempt", "err", err)
	}
	return http.StatusOK, ""
}

func (h *Email) resend(w http.ResponseWriter, r *http.Request) {
	id, u, ok := h.signedInUser(w, r)
	if !ok {
		return
	}
	s := h.section(id, u)
	switch {
	case h.Mailer == nil:
		s.Error = "This server cannot send mail."
		h.settings(w, r, http.StatusServiceUnavailable, s)
		return
	case u.Email == "" || u.EmailVerified:
		s.Error = "There is no unverified address to confirm."
		h.settings(w, r, http.StatusBadRequest, s)
		return
	}
	s.Notice, s.Error = h.mailVerification(r.Context(), u)
	h.settings(w, r, http.StatusOK, s)
}

// linkError is why a mailed link does not work.
type linkError struct {
	status           int
	heading, message string
}

func (e *linkError) Error() string { return e.heading }

var (
	errLinkInvalid = &linkError{http.StatusBadRequest, "This link is not valid",
		"The link is incomplete or was changed. Open it again from the message, or ask for a new one."}
	errLinkUsed = &linkError{http.StatusGone, "This link was already used",
		"Each link works once. Ask for a new one if you still need it."}
	errLinkExpired = &linkError{http.StatusGone, "This link has expired",
		"Links stop working after a while. Ask for a new one."}
	errLinkStale = &linkError{http.StatusGone, "This link is out of date",
		"The account's email address changed after the link was sent."}
)

// link finds a mailed link that may still be used.
func (h *Email) link(ctx context.Context, token string, purpose storage.EmailPurpose) (storage.EmailToken, error) {
	if len(token) != 43 {
		return storage.EmailToken{}, errLinkInvalid
	}
	t, err := h.Store.GetEmailToken(ctx, tokenHash(token))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return t, errLinkInvalid
	case err != nil:
		return t, err
	case t.Purpose != purpose:
		return t, errLinkInvalid
	case t.UsedAt != nil:
		return t, errLinkUsed
	case !h.Now().Before(t.ExpiresAt):
		return t, errLinkExpired
	}
	return t, nil
}

// useLink marks the link used inside the caller's transaction; a racing
// second use gets errLinkUsed.
func (h *Email) useLink(ctx context.Context, token string) error {
	err := h.Store.UseEmailToken(ctx, tokenHash(token), h.Now())
	if errors.Is(err, storage.ErrInactive) {
		return errLinkUsed
	}
	return err
}

func (h *Email) linkFailed(w http.ResponseWriter, r *http.Request, err error) {
	var le *linkError
	if !errors.As(err, &le) {
		h.Logger.ErrorContext(r.Context(), "mailed link", "err", err)
		h.message(w, r, http.StatusInternalServerError, "Something went wrong", "Please open the link again.")
		return
	}
	h.message(w, r, le.status, le.heading, le.message)
}

// verifyPage asks to confirm: only the form's POST uses the link. A mail
// scanner that opens every link must not verify an address someone else
// typed into their own account.
func (h *Email) verifyPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx, token := r.Context(), r.URL.Query().Get("token")
	t, err := h.link(ctx, token, storage.PurposeVerify)
	if err != nil {
		h.linkFailed(w, r, err)
		return
	}
	u, err := h.Store.GetUser(ctx, t.UserID)
	if err != nil {
		h.linkFailed(w, r, err)
		return
	}
	if !strings.EqualFold(u.Email, t.Email) {
		h.linkFailed(w, r, errLinkStale)
		return
	}
	h.render(w, r, http.StatusOK, templates.ConfirmEmail(templates.ConfirmEmailView{
		Page: h.NewPage(r, "Confirm your email address"), Token: token, Email: t.Email, Username: u.Username,
	}))
}

// verify uses the link and verifies the address it was sent to, if the
// account still has it. It needs no sign-in: holding the link is the proof.
func (h *Email) verify(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !parseForm(w, r) {
		return
	}
	ctx, token := r.Context(), r.PostForm.Get("token")
	var t storage.EmailToken
	err := h.Store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if t, err = h.link(ctx, token, storage.PurposeVerify); err != nil {
			return err
		}
		if err := h.useLink(ctx, token); err != nil {
			return err
		}
		err = h.Store.VerifyUserEmail(ctx, t.UserID, t.Email)
		if errors.Is(err, storage.ErrNotFound) {
			return errLinkStale
		}
		return err
	})
	if errors.Is(err, storage.ErrConflict) {
		h.message(w, r, http.StatusConflict, "This address is taken",
			t.Email+" is already verified on another account. An address can be verified on one account only.")
		return
	}
	if err != nil {
		h.linkFailed(w, r, err)
		return
	}
	h.Logger.InfoContext(ctx, "email verified", "user_id", t.UserID)
	audit.Record(ctx, h.Audit, audit.Event{Type: audit.EmailVerified, Actor: t.UserID, Subject: t.UserID})
	h.render(w, r, http.StatusOK, templates.Notice(templates.NoticeView{
		Page:     h.NewPage(r, "Address confirmed"),
		Heading:  "Address confirmed",
		Message:  t.Email + " is now the verified address of your account.",
		LinkText: "Continue",
		LinkHref: "/",
	}))
}

func (h *Email) message(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	h.render(w, r, status, templates.Notice(templates.NoticeView{
		Page: h.NewPage(r, heading), Heading: heading, Message: message, LinkText: "Go to the home page", LinkHref: "/",
	}))
}

func (h *Email) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	if err := templates.Write(r.Context(), w, status, c); err != nil {
		h.Logger.ErrorContext(r.Context(), "render page", "err", err)
	}
}

// SetEmail is the operator's way to set an address, verified or not, when
// the server cannot send mail. A verified address another account has
// verified is storage.ErrConflict.
func SetEmail(ctx context.Context, store EmailStore, username, email string, verified bool) (storage.User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return storage.User{}, err
	}
	if email == "" && verified {
		return storage.User{}, &ValidationError{"An empty address cannot be verified."}
	}
	u, err := store.GetUserByUsername(ctx, username)
	if err != nil {
		return storage.User{}, err
	}
	if err := store.SetUserEmail(ctx, u.ID, email, verified); err != nil {
		return storage.User{}, err
	}
	u.Email, u.EmailVerified = email, verified
	return u, nil
}

// welcome signs a new user in and mails the confirmation link for the
// address they gave. When the mail cannot be sent the account stays, and
// a page says so before going on.
func (h *Handler) welcome(w http.ResponseWriter, r *http.Request, u storage.User, returnTo string) {
	if u.Email == "" || h.Email == nil || h.Email.Mailer == nil {
		h.signIn(w, r, u, returnTo)
		return
	}
	_, failure := h.Email.mailVerification(r.Context(), u)
	if failure == "" {
		h.signIn(w, r, u, returnTo)
		return
	}
	if err := h.Sessions.SignIn(w, r, Identity{UserID: u.ID, Username: u.Username, AuthTime: h.Now(), AMR: []string{AMRPassword}}); err != nil {
		h.Logger.ErrorContext(r.Context(), "save session", "err", err)
		http.Error(w, "Could not start a session.", http.StatusInternalServerError)
		return
	}
	h.render(w, r, http.StatusOK, templates.Notice(templates.NoticeView{
		Page:     h.NewPage(r, "Account created"),
		Heading:  "Account created",
		Message:  "Your account " + u.Username + " is ready. " + failure + " You can send it again from your email settings.",
		LinkText: "Continue",
		LinkHref: returnTo,
	}))
}
