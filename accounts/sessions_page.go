package accounts

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"gatehouse/audit"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// sessionsSection lists the user's live sessions: this browser's first,
// marked, then the others newest first.
func (h *Handler) sessionsSection(r *http.Request, id Identity) (templates.SessionsSection, error) {
	sessions, err := h.Sessions.ListSessions(r.Context(), id.UserID)
	if err != nil {
		return templates.SessionsSection{}, err
	}
	if i := slices.IndexFunc(sessions, func(s storage.Session) bool { return s.IDHash == id.SessionID }); i > 0 {
		current := sessions[i]
		copy(sessions[1:i+1], sessions[:i])
		sessions[0] = current
	}
	var s templates.SessionsSection
	for _, sess := range sessions {
		s.Sessions = append(s.Sessions, templates.SessionEntry{
			ID:       sess.IDHash,
			Device:   DescribeDevice(sess.UserAgent),
			Address:  sess.Address,
			Created:  sess.CreatedAt,
			LastSeen: sess.LastSeenAt,
			Current:  sess.IDHash == id.SessionID,
		})
	}
	return s, nil
}

// endSession is POST /account/sessions/end: field session names one of
// the user's sessions (Identity.SessionID). This browser's own ends as a
// sign-out does.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !parseForm(w, r) {
		return
	}
	id, ok := h.Sessions.SignedInToAccount(w, r)
	if !ok {
		return
	}
	ctx, target := r.Context(), r.PostForm.Get("session")
	answer := func(status int, notice, problem string) {
		h.showSecurity(w, r, id, status, func(v *templates.SecurityView) {
			v.Sessions.Notice, v.Sessions.Error = notice, problem
		})
	}
	switch target {
	case "":
		answer(http.StatusBadRequest, "", "Choose the session to sign out.")
		return
	case id.SessionID:
		h.logout(w, r)
		return
	}
	err := h.Sessions.EndSession(ctx, id.UserID, target)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Ended already, from another page or by its own sign-out; or
		// never the user's, which must look the same.
		answer(http.StatusOK, "That session had already ended.", "")
		return
	case err != nil:
		h.Logger.ErrorContext(ctx, "end session", "err", err)
		answer(http.StatusInternalServerError, "", "The session could not be signed out. Please try again.")
		return
	}
	audit.Record(ctx, h.Audit, audit.Event{Type: audit.SessionsEnded, Actor: id.UserID, Subject: id.UserID, Detail: map[string]string{"count": "1"}})
	answer(http.StatusOK, "The session is signed out. Its next request will find no one signed in.", "")
}

// endOtherSessions is POST /account/sessions/end-others: "Sign out
// everywhere else".
func (h *Handler) endOtherSessions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !parseForm(w, r) {
		return
	}
	id, ok := h.Sessions.SignedInToAccount(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	n, err := h.Sessions.EndOtherSessions(ctx, id.UserID, id.SessionID)
	if err != nil {
		h.Logger.ErrorContext(ctx, "end other sessions", "err", err)
		h.showSecurity(w, r, id, http.StatusInternalServerError, func(v *templates.SecurityView) {
			v.Sessions.Error = "The other sessions could not be signed out. Please try again."
		})
		return
	}
	if n > 0 {
		audit.Record(ctx, h.Audit, audit.Event{Type: audit.SessionsEnded, Actor: id.UserID, Subject: id.UserID, Detail: map[string]string{"count": strconv.FormatInt(n, 10)}})
	}
	h.showSecurity(w, r, id, http.StatusOK, func(v *templates.SecurityView) {
		v.Sessions.Notice = endedWords(n)
	})
}
