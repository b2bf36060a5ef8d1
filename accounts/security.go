package accounts

import (
	"context"
	"net/http"
	"strings"

	"gatehouse/audit"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// ActivityStore is what the security page reads: the user's events and
// the names of the apps they mention.
type ActivityStore interface {
	ListAuditEvents(ctx context.Context, f audit.Filter) ([]audit.Event, error)
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// recentActivity is how many events the security page shows.
const recentActivity = 50

// activityWords say what an event was, for the person it concerns.
var activityWords = map[audit.Type]string{
	audit.SignIn:              "Signed in",
	audit.SignInFailed:        "Sign-in refused: wrong password",
	audit.ConsentGranted:      "Allowed an app",
	audit.ConsentRevoked:      "Revoked an app's access",
	audit.ClientCreated:       "Registered an app",
	audit.ClientUpdated:       "Changed an app",
	audit.ClientSecretRotated: "Created a new app secret",
	audit.ClientDeleted:       "Deleted an app",
	audit.RefreshTokenReused:  "An app's old token was used again; its access was revoked",
	audit.UserCreated:         "Created the account",
	audit.UserDisabled:        "Account disabled",
	audit.EmailChanged:        "Changed the email address",
	audit.EmailVerified:       "Confirmed the email address",
	audit.PasswordReset:       "Reset the password by email; signed out everywhere",
	audit.PasswordChanged:     "Changed the password; signed out everywhere else",
	audit.SessionsEnded:       "Signed out other sessions",
	audit.UserEnabled:         "Account enabled again",
	audit.PasskeyAdded:        "Added a passkey",
	audit.PasskeyRemoved:      "Removed a passkey",

	audit.MFAEnabled:               "Turned on the authenticator app",
	audit.MFADisabled:              "Turned off the authenticator app",
	audit.MFAReset:                 "The server's operator removed the second sign-in step",
	audit.RecoveryCodesRegenerated: "Made new recovery codes",
}

// failureWords say why a sign-in was refused, by the event's reason.
var failureWords = map[string]string{
	"wrong_code":      "Sign-in refused: wrong code",
	reasonDisabled:    "Sign-in refused: the account is disabled",
	"passkey_invalid": "Sign-in refused: a passkey did not check out",
	"passkey_cloned":  "Sign-in refused: a passkey's counter went back, as a copied one's would",
}

// signInWords replace activityWords for sign-ins by a method other than
// the password, by the event's "method".
var signInWords = map[string]string{
	"passkey": "Signed in with a passkey",
}

// security is GET /account/security.
func (h *Handler) security(w http.ResponseWriter, r *http.Request) {
	id, ok := h.Sessions.SignedInToAccount(w, r)
	if !ok {
		return
	}
	h.showSecurity(w, r, id, http.StatusOK, nil)
}

// showSecurity renders the page with every section and status; the forms
// posted from it show their outcome on it through edit, when set.
func (h *Handler) showSecurity(w http.ResponseWriter, r *http.Request, user Identity, status int, edit func(*templates.SecurityView)) {
	view := templates.SecurityView{Page: h.NewPage(r, "Security")}
	if h.TwoStep != nil {
		s, err := h.totpSection(r, user)
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "load authenticator app", "err", err)
			http.Error(w, "Your account could not be loaded. Please try again.", http.StatusInternalServerError)
			return
		}
		view.TOTP = s
	}
	if h.Passkeys != nil {
		s, err := h.Passkeys.section(r.Context(), user.UserID)
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "list passkeys", "err", err)
			http.Error(w, "Your passkeys could not be loaded. Please try again.", http.StatusInternalServerError)
			return
		}
		view.Passkeys = &s
	}
	if h.Email != nil {
		u, err := h.Email.Store.GetUser(r.Context(), user.UserID)
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "load user", "err", err)
			http.Error(w, "Your account could not be loaded. Please try again.", http.StatusInternalServerError)
			return
		}
		s := h.Email.section(user, u)
		view.Email = &s
	}
	sessions, err := h.sessionsSection(r, user)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "list sessions", "err", err)
		http.Error(w, "Your sessions could not be loaded. Please try again.", http.StatusInternalServerError)
		return
	}
	view.Sessions = sessions
	if h.Activity != nil {
		events, err := h.Activity.ListAuditEvents(r.Context(), audit.Filter{User: user.UserID, Limit: recentActivity})
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "list audit events", "err", err)
			http.Error(w, "Your recent activity could not be loaded. Please try again.", http.StatusInternalServerError)
			return
		}
		view.Activity = h.activity(r.Context(), events)
	}
	if edit != nil {
		edit(&view)
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, templates.Security(view))
}

func (h *Handler) activity(ctx context.Context, events []audit.Event) []templates.ActivityEntry {
	names := map[string]string{}
	var entries []templates.ActivityEntry
	for _, e := range events {
		what, ok := activityWords[e.Type]
		if !ok {
			what = string(e.Type)
		}
		if how, ok := signInWords[e.Detail["method"]]; ok && e.Type == audit.SignIn {
			what = how
		}
		if why, ok := failureWords[e.Detail["reason"]]; ok && e.Type == audit.SignInFailed {
			what = why
		}
		if e.Type == audit.SignIn && strings.Contains(e.Detail["amr"], AMRMFA) {
			what = "Signed in with a password and a code"
		}
		app := e.Detail["name"]
		if e.Client != "" && app == "" {
			if _, seen := names[e.Client]; !seen {
				// A deleted app keeps its events; its id stands in.
				names[e.Client] = e.Client
				if c, err := h.Activity.GetClient(ctx, e.Client); err == nil {
					names[e.Client] = c.Name
				}
			}
			app = names[e.Client]
		}
		entries = append(entries, templates.ActivityEntry{Time: e.Time, What: what, App: app, Address: e.Address})
	}
	return entries
}
