package accounts

import (
	"context"
	"errors"
	"gatehouse/audit"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gatehouse/storage"
	"gatehouse/web/templates"
)

func (h *Email) forgotView(r *http.Request) templates.ForgotPasswordView {
	return templates.ForgotPasswordView{Page: h.NewPage(r, "Forgot password"), MailConfigured: h.Mailer != nil}
}

func (h *Email) forgotPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, templates.ForgotPassword(h.forgotView(r)))
}

// forgot answers every well-formed address with the same page, after the
// same work: a throttle check on the typed address and one lookup. What
// differs, making the link and sending it, happens after the answer, so
// neither the page nor its timing tells whether an account has the
// address.
func (h *Email) forgot(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	v := h.forgotView(r)
	if h.Mailer == nil {
		h.render(w, r, http.StatusServiceUnavailable, templates.ForgotPassword(v))
		return
	}
	ctx := r.Context()
	email, err := NormalizeEmail(r.PostForm.Get("email"))
	v.Email = email
	if err != nil || email == "" {
		v.Email = r.PostForm.Get("email")
		v.Error = "Enter one email address, like name@example.com."
		h.render(w, r, http.StatusBadRequest, templates.ForgotPassword(v))
		return
	}
	wait, err := h.allow(ctx, "reset-addr:"+strings.ToLower(email), resetsPerAddress)
	if err != nil {
		h.Logger.ErrorContext(ctx, "reset throttle", "err", err)
		v.Error = "Something went wrong. Please try again."
		h.render(w, r, http.StatusInternalServerError, templates.ForgotPassword(v))
		return
	}
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		v.Error = "Too many reset requests for this address. Please wait a while and try again."
		h.render(w, r, http.StatusTooManyRequests, templates.ForgotPassword(v))
		return
	}
	u, err := h.Store.GetUserByVerifiedEmail(ctx, email)
	switch {
	case err == nil:
		h.mailResetLater(ctx, u)
	case !errors.Is(err, storage.ErrNotFound):
		// The answer stays the same: an error page here would say
		// something about the address.
		h.Logger.ErrorContext(ctx, "find user for reset", "err", err)
	}
	v.Sent = true
	h.render(w, r, http.StatusOK, templates.ForgotPassword(v))
}

// resetDelay is the least time before a reset mail's work begins, and
// resetJitter the most added at random: the work then never overlaps the
// answer it must not be told apart from, and does not follow it at a
// fixed interval either.
const (
	resetDelay  = 100 * time.Millisecond
	resetJitter = 400 * time.Millisecond
)

// mailResetLater sends the reset link in the background. When too many
// sends are under way the request is dropped and logged rather than
// queued without bound.
func (h *Email) mailResetLater(ctx context.Context, u storage.User) {
	select {
	case h.mailSlots <- struct{}{}:
	default:
		h.Logger.WarnContext(ctx, "password reset mail dropped: too many being sent", "user_id", u.ID)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	go func() {
		defer func() { <-h.mailSlots }()
		defer cancel()
		wait := time.NewTimer(resetDelay + rand.N(resetJitter))
		defer wait.Stop()
		select {
		case <-wait.C:
		case <-ctx.Done():
			return
		}
		if err := h.mailReset(ctx, u); err != nil {
			h.Logger.ErrorContext(ctx, "could not send password reset mail", "user_id", u.ID, "err", err)
		}
	}()
}

func (h *Email) mailReset(ctx context.Context, u storage.User) error {
	wait, err := h.allow(ctx, "reset-user:"+u.ID, resetsPerAccount)
	if err != nil {
		return err
	}
	if wait > 0 {
		h.Logger.InfoContext(ctx, "password reset mail throttled", "user_id", u.ID)
		return nil
	}
	token, err := h.newLink(ctx, storage.PurposeReset, u, resetLinkTTL)
	if err != nil {
		return err
	}
	v := templates.MailView{ServerName: h.serverName(), Username: u.Username, Address: u.Email,
		Link: h.Issuer + "/password/reset?token=" + token, Lifetime: "30 minutes"}
	return h.send(ctx, u.Email, "Reset your password on "+v.ServerName,
		templates.ResetPasswordText(v), templates.ResetPasswordHTML(v))
}

// resetUser finds the account a reset link is for. The link is bound to
// the address it was sent to: once the account's verified address is
// another, it is void.
func (h *Email) resetUser(ctx context.Context, token string) (storage.User, error) {
	t, err := h.link(ctx, token, storage.PurposeReset)
	if err != nil {
		return storage.User{}, err
	}
	u, err := h.Store.GetUser(ctx, t.UserID)
	if err != nil {
		return storage.User{}, err
	}
	if !u.EmailVerified || !strings.EqualFold(u.Email, t.Email) {
		return storage.User{}, errLinkStale
	}
	return u, nil
}

// resetPage shows the form; only its POST uses the link, so a mail
// scanner opening the link leaves it working.
func (h *Email) resetPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token := r.URL.Query().Get("token")
	u, err := h.resetUser(r.Context(), token)
	if err != nil {
		h.linkFailed(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, templates.ResetPassword(templates.ResetPasswordView{
		Page: h.NewPage(r, "Choose a new password"), Token: token, Username: u.Username,
	}))
}

func (h *Email) reset(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !parseForm(w, r) {
		return
	}
	ctx := r.Context()
	token, password := r.PostForm.Get("token"), r.PostForm.Get("password")
	u, err := h.resetUser(ctx, token)
	if err != nil {
		h.linkFailed(w, r, err)
		return
	}
	if err := validatePassword(password); err != nil {
		h.render(w, r, http.StatusBadRequest, templates.ResetPassword(templates.ResetPasswordView{
			Page: h.NewPage(r, "Choose a new password"), Token: token, Username: u.Username, Error: err.Error(),
		}))
		return
	}
	// Hashing takes a while; the transaction is kept for the writes.
	hash, err := HashPassword(password)
	if err != nil {
		h.linkFailed(w, r, err)
		return
	}
	err = h.Store.InTx(ctx, func(ctx context.Context) error {
		if _, err := h.resetUser(ctx, token); err != nil {
			return err
		}
		if err := h.useLink(ctx, token); err != nil {
			return err
		}
		return h.Store.SetUserPassword(ctx, u.ID, hash)
	})
	if err != nil {
		h.linkFailed(w, r, err)
		return
	}
	h.Logger.InfoContext(ctx, "password reset", "user_id", u.ID)
	audit.Record(ctx, h.Audit, audit.Event{Type: audit.PasswordReset, Actor: u.ID, Subject: u.ID})
	// Whoever knew the old password may hold a session: all of them end,
	// this browser's too.
	if _, err := h.Sessions.EndOtherSessions(ctx, u.ID, ""); err != nil {
		h.Logger.ErrorContext(ctx, "end sessions after password reset", "user_id", u.ID, "err", err)
	}
	if err := h.Sessions.SignOut(w, r); err != nil {
		h.Logger.ErrorContext(ctx, "sign out after password reset", "user_id", u.ID, "err", err)
	}
	h.render(w, r, http.StatusOK, templates.Notice(templates.NoticeView{
		Page:     h.NewPage(r, "Password changed"),
		Heading:  "Password changed",
		Message:  "The password of " + u.Username + " is changed and the account is signed out everywhere. Sign in with the new password.",
		LinkText: "Sign in",
		LinkHref: "/login",
	}))
}
