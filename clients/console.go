package clients

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/audit"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// maxFormBytes bounds the app forms: twenty redirect URIs of the longest
// allowed length still fit.
const maxFormBytes = 64 << 10

// Handler serves the /apps pages, where signed-in users register and manage
// their own apps.
type Handler struct {
	Store  Store
	Logger *slog.Logger
	// SignedIn reports who the request's session belongs to.
	SignedIn func(r *http.Request) (userID, username string, ok bool)
	// NewPage returns the shell every page shares.
	NewPage func(r *http.Request, title string) templates.Page
	Now     func() time.Time
	// Audit, when set, records apps created, changed and deleted.
	Audit audit.Recorder
}

// New returns a Handler that reads the clock with time.Now.
func New(store Store, logger *slog.Logger, signedIn func(r *http.Request) (userID, username string, ok bool), newPage func(r *http.Request, title string) templates.Page) *Handler {
	return &Handler{Store: store, Logger: logger, SignedIn: signedIn, NewPage: newPage, Now: time.Now}
}

// Mount registers the /apps routes on mux.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /apps", h.list)
	mux.HandleFunc("GET /apps/new", h.newForm)
	mux.HandleFunc("POST /apps", h.create)
	mux.HandleFunc("GET /apps/{client_id}", h.show)
	mux.HandleFunc("POST /apps/{client_id}", h.update)
	mux.HandleFunc("POST /apps/{client_id}/secret", h.rotate)
	mux.HandleFunc("POST /apps/{client_id}/delete", h.delete)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	userID, ok := h.user(w, r, "/apps")
	if !ok {
		return
	}
	cs, err := h.Store.ListClientsByOwner(r.Context(), userID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	v := templates.AppsView{Page: h.NewPage(r, "Your apps"), Apps: make([]templates.AppSummary, len(cs))}
	for i, c := range cs {
		v.Apps[i] = summary(c)
	}
	h.render(w, r, http.StatusOK, templates.Apps(v))
}

func (h *Handler) newForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.user(w, r, "/apps/new"); !ok {
		return
	}
	h.render(w, r, http.StatusOK, templates.AppForm(templates.AppFormView{Page: h.NewPage(r, "New app")}))
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	userID, ok := h.user(w, r, "/apps/new")
	if !ok || !h.parseForm(w, r) {
		return
	}
	form := templates.AppFormView{
		Page:         h.NewPage(r, "New app"),
		Name:         r.PostForm.Get("name"),
		RedirectURIs: r.PostForm.Get("redirect_uris"),
		Scope:        r.PostForm.Get("scope"),
		JWKS:         strings.TrimSpace(r.PostForm.Get("jwks")),
		IDTokenAlg:   r.PostForm.Get("id_token_signed_response_alg"),

		PostLogoutRedirectURIs: r.PostForm.Get("post_logout_redirect_uris"),
	}
	switch r.PostForm.Get("client_type") {
	case "", "confidential":
	case "public":
		form.Public = true
	default:
		form.Error = "Choose whether the app is confidential or public"
		h.render(w, r, http.StatusBadRequest, templates.AppForm(form))
		return
	}
	reg := Registration{
		OwnerID:      userID,
		Name:         form.Name,
		RedirectURIs: splitLines(form.RedirectURIs),
		Public:       form.Public,
		Scope:        form.Scope,
		IDTokenAlg:   form.IDTokenAlg,

		PostLogoutRedirectURIs: splitLines(form.PostLogoutRedirectURIs),
	}
	if form.JWKS != "" {
		reg.AuthMethod, reg.JWKS = AuthPrivateKeyJWT, form.JWKS
	}
	c, secret, err := Register(r.Context(), h.Store, reg, h.Now())
	var invalid *Error
	switch {
	case errors.As(err, &invalid):
		form.Error = invalid.Message
		h.render(w, r, http.StatusBadRequest, templates.AppForm(form))
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.ClientCreated, Actor: userID, Client: c.ID, Detail: map[string]string{"name": c.Name}})
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusCreated, templates.App(h.appView(r, c, secret)))
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	c, ok := h.app(w, r)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, templates.App(h.appView(r, c, "")))
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	c, ok := h.app(w, r)
	if !ok || !h.parseForm(w, r) {
		return
	}
	entered, enteredLogout, alg := r.PostForm.Get("redirect_uris"), r.PostForm.Get("post_logout_redirect_uris"), r.PostForm.Get("id_token_signed_response_alg")
	updated, err := UpdateWithLogout(r.Context(), h.Store, c.ID, r.PostForm.Get("name"), splitLines(entered), splitLines(enteredLogout), alg, h.Now())
	var invalid *Error
	switch {
	case errors.As(err, &invalid):
		v := h.appView(r, c, "")
		v.RedirectURIs = entered
		v.PostLogoutRedirectURIs = enteredLogout
		v.IDTokenAlg = alg
		v.Error = invalid.Message
		h.render(w, r, http.StatusBadRequest, templates.App(v))
		return
	case errors.Is(err, storage.ErrNotFound):
		h.notFound(w, r)
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.ClientUpdated, Actor: c.OwnerID, Client: c.ID})
	v := h.appView(r, updated, "")
	v.Flash = "Changes saved"
	h.render(w, r, http.StatusOK, templates.App(v))
}

func (h *Handler) rotate(w http.ResponseWriter, r *http.Request) {
	c, ok := h.app(w, r)
	if !ok {
		return
	}
	secret, err := RotateSecret(r.Context(), h.Store, c.ID, h.Now())
	switch {
	case errors.Is(err, ErrPublicClient):
		v := h.appView(r, c, "")
		v.Error = "A public app has no secret"
		h.render(w, r, http.StatusBadRequest, templates.App(v))
		return
	case errors.Is(err, ErrKeyClient):
		v := h.appView(r, c, "")
		v.Error = "This app signs in with its keys (private_key_jwt) and has no secret"
		h.render(w, r, http.StatusBadRequest, templates.App(v))
		return
	case errors.Is(err, storage.ErrNotFound):
		h.notFound(w, r)
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.ClientSecretRotated, Actor: c.OwnerID, Client: c.ID})
	v := h.appView(r, c, secret)
	v.Flash = "New secret created; the old one no longer works"
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, templates.App(v))
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	c, ok := h.app(w, r)
	if !ok {
		return
	}
	// Already gone is what the user asked for.
	if err := h.Store.DeleteClient(r.Context(), c.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.serverError(w, r, err)
		return
	}
	audit.Record(r.Context(), h.Audit, audit.Event{Type: audit.ClientDeleted, Actor: c.OwnerID, Client: c.ID})
	http.Redirect(w, r, "/apps", http.StatusSeeOther)
}

// user returns the signed-in user's id, or sends the browser to sign in and
// come back to returnTo, a page that can be fetched with GET.
func (h *Handler) user(w http.ResponseWriter, r *http.Request, returnTo string) (string, bool) {
	id, _, ok := h.SignedIn(r)
	if !ok || id == "" {
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(returnTo), http.StatusSeeOther)
		return "", false
	}
	return id, true
}

// app loads the app named in the path for its owner. Anyone else gets the
// same 404 as for an unknown id, so other users' app ids cannot be probed.
func (h *Handler) app(w http.ResponseWriter, r *http.Request) (storage.Client, bool) {
	id := r.PathValue("client_id")
	userID, ok := h.user(w, r, "/apps/"+url.PathEscape(id))
	if !ok {
		return storage.Client{}, false
	}
	c, err := h.Store.GetClient(r.Context(), id)
	switch {
	case errors.Is(err, storage.ErrNotFound), err == nil && c.OwnerID != userID:
		h.notFound(w, r)
		return storage.Client{}, false
	case err != nil:
		h.serverError(w, r, err)
		return storage.Client{}, false
	}
	return c, true
}

func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	err := r.ParseForm()
	if err == nil {
		return true
	}
	status := http.StatusBadRequest
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		status = http.StatusRequestEntityTooLarge
	}
	h.errorPage(w, r, status, "Form not accepted", "The form could not be read.")
	return false
}

func (h *Handler) appView(r *http.Request, c storage.Client, secret string) templates.AppView {
	return templates.AppView{
		Page:         h.NewPage(r, c.Name),
		App:          summary(c),
		Scopes:       DescribeScopes(c.Scopes),
		GrantTypes:   c.GrantTypes,
		Secret:       secret,
		RedirectURIs: strings.Join(c.RedirectURIs, "\n"),
		IDTokenAlg:   c.IDTokenAlg,

		PostLogoutRedirectURIs: strings.Join(c.PostLogoutRedirectURIs, "\n"),
	}
}

func summary(c storage.Client) templates.AppSummary {
	return templates.AppSummary{ClientID: c.ID, Name: c.Name, Public: c.Public, UsesKeys: c.AuthMethod == AuthPrivateKeyJWT, RedirectURIs: c.RedirectURIs, CreatedAt: c.CreatedAt}
}

func splitLines(s string) []string {
	var out []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusNotFound, "App not found", "You have no app with this ID.")
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.Logger.ErrorContext(r.Context(), "apps page failed", "path", r.URL.Path, "error", err)
	h.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The request could not be completed. Please try again.")
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	v := templates.ErrorView{Page: h.NewPage(r, heading), Heading: heading, Message: message}
	h.render(w, r, status, templates.Error(v))
}

// component is the method templ components have; naming it here keeps templ
// out of this package's imports.
type component interface {
	Render(ctx context.Context, w io.Writer) error
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, c component) {
	if err := templates.Write(r.Context(), w, status, c); err != nil {
		h.Logger.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "error", err)
	}
}
