package accounts

import (
	"context"
	"net/http"

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
	audit.UserDisabled:        "Account disabled",
	audit.EmailChanged:        "Changed the email address",
	audit.EmailVerified:       "Confirmed the email address",
	audit.PasswordReset:       "Reset the password by email; signed out everywhere",
	audit.PasskeyAdded:        "Added a passkey",
	audit.PasskeyRemoved:      "Removed a passkey",
}

// methodWords replace activityWords for events of a sign-in method other
// than the password, keyed by type and the event's "method".
var methodWords = map[audit.Type]map[string]string{
	audit.SignIn:       {"passkey": "Signed in with a passkey"},
	audit.SignInFailed: {"passkey": "Sign-in refused: a passkey did not check out"},
}

// security is GET /account/security.
func (h *Handler) security(w http.ResponseWriter, r *http.Request) {
	user, ok := h.Sessions.Identity(r)
	if !ok {
		http.Redirect(w, r, "/login?return_to=%2Faccount%2Fsecurity", http.StatusSeeOther)
		return
	}
	view := templates.SecurityView{Page: h.NewPage(r, "Security")}
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
	if h.Activity != nil {
		events, err := h.Activity.ListAuditEvents(r.Context(), audit.Filter{User: user.UserID, Limit: recentActivity})
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "list audit events", "err", err)
			http.Error(w, "Your recent activity could not be loaded. Please try again.", http.StatusInternalServerError)
			return
		}
		view.Activity = h.activity(r.Context(), events)
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, templates.Security(view))
}

func (h *Handler) activity(ctx context.Context, events []audit.Event) []templates.ActivityEntry {
	names := map[string]string{}
	var entries []templates.ActivityEntry
	for _, e := range events {
		what, ok := methodWords[e.Type][e.Detail["method"]]
		if !ok {
			what, ok = activityWords[e.Type]
		}
		if !ok {
			what = string(e.Type)
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
