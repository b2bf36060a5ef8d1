package oauth

import (
	"errors"
	"net/http"

	"gatehouse/audit"
	"gatehouse/clients"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// connections is GET /account/connections: the apps the signed-in user
// allowed, with what they may do.
func (h *Handler) connections(w http.ResponseWriter, r *http.Request) {
	user, ok := h.Sessions.Identity(r)
	if !ok {
		h.toLogin(w, r, r.URL.RequestURI())
		return
	}
	grants, err := h.Store.ListGrants(r.Context(), user.UserID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "list grants", "err", err)
		h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Your connected apps could not be loaded. Please try again.", "")
		return
	}
	view := templates.ConnectionsView{Page: h.NewPage(r, "Connected apps")}
	if r.URL.Query().Get("revoked") == "1" {
		view.Flash = "Access revoked. That app's tokens have stopped working."
	}
	for _, g := range grants {
		c, err := h.Store.GetClient(r.Context(), g.ClientID)
		if err != nil {
			// The grant's client was deleted in the meantime; its grant
			// went with it.
			continue
		}
		view.Connections = append(view.Connections, templates.Connection{
			ClientID:   c.ID,
			ClientName: c.Name,
			Scopes:     clients.DescribeScopes(g.Scopes),
			GrantedAt:  g.UpdatedAt,
		})
	}
	h.render(w, r, http.StatusOK, templates.Connections(view))
}

// revokeConnection forgets the grant and deletes every token the app holds
// for this user, so they stop working on the next request.
func (h *Handler) revokeConnection(w http.ResponseWriter, r *http.Request) {
	user, ok := h.Sessions.Identity(r)
	if !ok {
		h.toLogin(w, r, "/account/connections")
		return
	}
	err := h.Store.RevokeGrant(r.Context(), user.UserID, r.PathValue("client_id"))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.Logger.ErrorContext(r.Context(), "revoke grant", "err", err)
		h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The app's access could not be revoked. Please try again.", "")
		return
	}
	if err == nil {
		audit.Record(r.Context(), h.cfg.Audit, audit.Event{Type: audit.ConsentRevoked, Actor: user.UserID, Subject: user.UserID, Client: r.PathValue("client_id")})
	}
	http.Redirect(w, r, "/account/connections?revoked=1", http.StatusSeeOther)
}
