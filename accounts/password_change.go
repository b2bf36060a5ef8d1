package accounts

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"gatehouse/audit"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// checkPassword checks password against u's under limits, reserved before
// the check as at sign-in so a burst of guesses cannot all slip under
// them. It answers the status and the words for the page, 200 and "" when
// the password is right, and with 429 how long to wait.
func checkPassword(ctx context.Context, logger *slog.Logger, limiter Limiter, now time.Time, u storage.User, password string, limits ...Limit) (int, string, time.Duration) {
	attempt, wait, err := limiter.Reserve(ctx, now, limits...)
	if err != nil {
		logger.ErrorContext(ctx, "password throttle", "err", err)
		return http.StatusInternalServerError, "Something went wrong. Please try again.", 0
	}
	if wait > 0 {
		return http.StatusTooManyRequests, "Too many wrong passwords. Please wait " + strconv.Itoa(int(math.Ceil(wait.Minutes()))) + " minutes and try again.", wait
	}
	ok, err := CheckPassword(u.PasswordHash, password)
	if err != nil {
		logger.ErrorContext(ctx, "check password", "err", err)
		return http.StatusInternalServerError, "Something went wrong. Please try again.", 0
	}
	if !ok {
		return http.StatusUnauthorized, "Your current password is not right.", 0
	}
	if err := limiter.Succeeded(ctx, attempt); err != nil {
		logger.WarnContext(ctx, "release password attempt", "err", err)
	}
	return http.StatusOK, "", 0
}

// changePassword is POST /account/password: the current password, under
// the sign-in's limits, then a new one by the rules of registration.
// Every other session ends, since whoever knew the old password may hold
// one; this browser's stays.
func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !parseForm(w, r) {
		return
	}
	id, ok := h.Sessions.SignedInToAccount(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	fail := func(status int, field, message string) {
		h.showSecurity(w, r, id, status, func(v *templates.SecurityView) {
			v.Password = templates.PasswordSection{Error: message, Invalid: field}
		})
	}
	u, err := h.Store.GetUser(ctx, id.UserID)
	if err != nil {
		h.Logger.ErrorContext(ctx, "load user", "err", err)
		fail(http.StatusInternalServerError, "", "Something went wrong. Please try again.")
		return
	}
	current, next := r.PostForm.Get("current_password"), r.PostForm.Get("new_password")
	// The new password is checked first: a weak one costs no attempt.
	if err := validatePassword(next); err != nil {
		fail(http.StatusBadRequest, templates.FieldNewPassword, "The new password is not allowed: "+err.Error())
		return
	}
	if status, msg, wait := checkPassword(ctx, h.Logger, h.Limiter, h.Now(), u, current,
		Limit{Key: "user:" + u.Username, Max: accountLimit, Window: limitWindow},
		Limit{Key: "addr:" + addressKey(h.clientAddress(r)), Max: addressLimit, Window: limitWindow}); status != http.StatusOK {
		if wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		}
		fail(status, templates.FieldCurrentPassword, msg)
		return
	}
	if current == next {
		fail(http.StatusBadRequest, templates.FieldNewPassword, "The new password is the same as the current one. Choose another.")
		return
	}
	hash, err := HashPassword(next)
	if err != nil {
		h.Logger.ErrorContext(ctx, "hash password", "err", err)
		fail(http.StatusInternalServerError, "", "Something went wrong. Please try again.")
		return
	}
	if err := h.Store.SetUserPassword(ctx, u.ID, hash); err != nil {
		h.Logger.ErrorContext(ctx, "change password", "err", err)
		fail(http.StatusInternalServerError, "", "Something went wrong. Your password is unchanged. Please try again.")
		return
	}
	ended, err := h.Sessions.EndOtherSessions(ctx, u.ID, id.SessionID)
	if err != nil {
		// The password is changed all the same; the page says what did
		// not happen so the user can end the others below.
		h.Logger.ErrorContext(ctx, "end sessions after password change", "user_id", u.ID, "err", err)
	}
	h.Logger.InfoContext(ctx, "password changed", "user_id", u.ID, "sessions_ended", ended)
	audit.Record(ctx, h.Audit, audit.Event{Type: audit.PasswordChanged, Actor: u.ID, Subject: u.ID,
		Detail: map[string]string{"sessions_ended": strconv.FormatInt(ended, 10)}})
	notice := "Your password is changed. " + endedWords(ended)
	if err != nil {
		notice = "Your password is changed, but the other sessions could not be signed out. Use “Sign out everywhere else” below."
	}
	h.showSecurity(w, r, id, http.StatusOK, func(v *templates.SecurityView) {
		v.Password.Notice = notice
	})
}

// endedWords says how many other sessions were signed out.
func endedWords(n int64) string {
	switch n {
	case 0:
		return "You had no other sessions."
	case 1:
		return "Your one other session was signed out."
	}
	return "Your " + strconv.FormatInt(n, 10) + " other sessions were signed out."
}
