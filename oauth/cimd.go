package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse/clients"
	"gatehouse/fetch"
	"gatehouse/storage"
)

// Client ID Metadata Documents: a client_id that is a URL names a client
// described by the JSON document at that URL. The client is fetched,
// checked and cached here, and stored as a client row, so grants and
// tokens refer to it like to any other; whenever fosite asks for it
// through the store, the row is refreshed from the document once the
// cache says so.

// Bounds on how long a fetched document is trusted, whatever its
// Cache-Control says: long enough not to fetch on every request, short
// enough that a publisher's change (a removed redirect URI) takes hold.
const (
	minDocumentTTL = time.Minute
	maxDocumentTTL = 24 * time.Hour
)

// isDocumentClientID tells a client_id that names a metadata document
// from one this server issued, which never contains a colon.
func isDocumentClientID(id string) bool {
	return strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://")
}

// documents resolves and caches metadata document clients.
type documents struct {
	db            Store
	fetcher       *fetch.Fetcher
	allowLoopback bool
	now           func() time.Time

	mu    sync.Mutex
	cache map[string]cachedDocument
}

type cachedDocument struct {
	doc     clients.Document
	expires time.Time
}

func newDocuments(db Store, allowLoopback bool) *documents {
	return &documents{
		db:            db,
		fetcher:       fetch.New(fetch.Config{AllowLoopback: allowLoopback}),
		allowLoopback: allowLoopback,
		now:           time.Now,
		cache:         map[string]cachedDocument{},
	}
}

// documentError is a document that cannot be used; the reason is for the
// app's developer.
type documentError struct{ reason string }

func (e *documentError) Error() string { return e.reason }

// resolve returns the client id names, from the cache or freshly fetched.
// A document that cannot be used is a *documentError.
func (d *documents) resolve(ctx context.Context, id string) (clients.Document, error) {
	now := d.now()
	d.mu.Lock()
	c, ok := d.cache[id]
	d.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.doc, nil
	}
	if err := clients.CheckDocumentURL(id, d.allowLoopback); err != nil {
		return clients.Document{}, &documentError{err.Error()}
	}
	fetched, err := d.fetcher.JSON(ctx, id)
	if err != nil {
		if fe, ok := errors.AsType[*fetch.Error](err); ok {
			return clients.Document{}, &documentError{"the document could not be fetched: " + fe.Reason}
		}
		return clients.Document{}, err
	}
	doc, err := clients.ParseDocument(id, fetched.Body, now.UTC())
	if err != nil {
		return clients.Document{}, &documentError{err.Error()}
	}
	if err := d.store(ctx, doc.Client); err != nil {
		return clients.Document{}, err
	}
	d.mu.Lock()
	d.cache[id] = cachedDocument{doc: doc, expires: now.Add(documentTTL(fetched.Header.Get("Cache-Control")))}
	d.mu.Unlock()
	return doc, nil
}

// store keeps the client's row current, so grants and tokens can refer to
// it and deleting it (server clients delete URL) revokes them.
func (d *documents) store(ctx context.Context, c storage.Client) error {
	old, err := d.db.GetClient(ctx, c.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		err = d.db.CreateClient(ctx, c)
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
		// Another request stored it first; bring it up to date as below.
	case err != nil:
		return err
	case old.Name == c.Name && slicesEqual(old.RedirectURIs, c.RedirectURIs) && slicesEqual(old.Scopes, c.Scopes) && slicesEqual(old.GrantTypes, c.GrantTypes):
		return nil
	}
	return d.db.UpdateClient(ctx, c)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// documentTTL reads max-age from Cache-Control, within the bounds;
// no-store and no-cache get the lower bound.
func documentTTL(cacheControl string) time.Duration {
	ttl := minDocumentTTL
	for _, d := range strings.Split(cacheControl, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(k) {
		case "no-store", "no-cache":
			return minDocumentTTL
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && n > 0 {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(ttl, minDocumentTTL), maxDocumentTTL)
}

// documentStore is the store fosite reads clients through: a document
// client_id resolves its document (fetching it when the cache is stale),
// and with documents off it names no client at all, even if a row is left
// from when they were on.
type documentStore struct {
	Store
	docs *documents // nil when metadata documents are off
}

type redirectKey struct{ clientID string }

func (s documentStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if !isDocumentClientID(id) {
		return s.Store.GetClient(ctx, id)
	}
	if s.docs == nil {
		return storage.Client{}, storage.ErrNotFound
	}
	doc, err := s.docs.resolve(ctx, id)
	if err != nil {
		return storage.Client{}, fmt.Errorf("client metadata document %s: %w", id, err)
	}
	c := doc.Client
	// The authorization request's redirect URI, once checked against the
	// document with the loopback rule, is presented as registered, so
	// fosite's exact comparison takes it.
	if u, ok := ctx.Value(redirectKey{id}).(string); ok {
		c.RedirectURIs = append(c.RedirectURIs[:len(c.RedirectURIs):len(c.RedirectURIs)], u)
	}
	return c, nil
}

// documentRequest checks an authorization request whose client_id names a
// metadata document before fosite sees it, so every failure gets a page
// naming its cause (never a redirect: nothing about the client is
// trusted yet). It returns the context the request continues with.
func (h *Handler) documentRequest(w http.ResponseWriter, r *http.Request) (context.Context, bool) {
	ctx := r.Context()
	q := r.URL.Query()
	ids := q["client_id"]
	if len(ids) != 1 || !isDocumentClientID(ids[0]) {
		return ctx, true
	}
	id := ids[0]
	fail := func(detail string) (context.Context, bool) {
		h.errorPage(w, r, http.StatusBadRequest, "This app's description can't be used",
			"This app identifies itself by a client metadata document that this server cannot use, so you have not been sent back to it.", detail)
		return nil, false
	}
	if h.docs == nil {
		return fail("invalid_client: this server does not accept client metadata documents as client_id.")
	}
	doc, err := h.docs.resolve(ctx, id)
	if de, ok := errors.AsType[*documentError](err); ok {
		return fail("invalid_client: the client metadata document at " + id + " cannot be used: " + de.reason + ".")
	}
	if err != nil {
		h.Logger.ErrorContext(ctx, "resolve client metadata document", "err", err)
		h.errorPage(w, r, http.StatusInternalServerError, "This sign-in request can't continue", "Something went wrong on our side. Please try again.", "")
		return nil, false
	}
	redirects := q["redirect_uri"]
	if len(redirects) != 1 {
		return fail("invalid_request: a client with a metadata document must send exactly one redirect_uri.")
	}
	for _, registered := range doc.Client.RedirectURIs {
		if redirectMatches(registered, redirects[0]) {
			return context.WithValue(ctx, redirectKey{id}, redirects[0]), true
		}
	}
	return fail("invalid_request: the redirect_uri " + redirects[0] + " is not one of the redirect_uris in the client metadata document.")
}

// redirectMatches compares a requested redirect URI with a registered
// one: exactly, as sent, except that a registered http loopback URI
// without a port (http://127.0.0.1/cb, http://[::1]/cb,
// http://localhost/cb) takes any port (RFC 8252 §7.3). An https loopback
// URI gets no such freedom.
func redirectMatches(registered, requested string) bool {
	if registered == requested {
		return true
	}
	reg, err := url.Parse(registered)
	if err != nil || reg.Scheme != "http" || reg.Port() != "" || strings.HasSuffix(reg.Host, ":") {
		return false
	}
	switch reg.Host {
	case "127.0.0.1", "[::1]", "localhost":
	default:
		return false
	}
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || req.Port() == "" {
		return false
	}
	if n, err := strconv.Atoi(req.Port()); err != nil || n < 1 || n > 65535 {
		return false
	}
	rest := strings.TrimPrefix(registered, "http://"+reg.Host)
	return requested == "http://"+reg.Host+":"+req.Port()+rest
}

// documentHost is the host the consent page shows for a metadata document
// client, "" for a registered one.
func (h *Handler) documentHost(clientID string) string {
	if h.docs == nil || !isDocumentClientID(clientID) {
		return ""
	}
	u, err := url.Parse(clientID)
	if err != nil {
		return ""
	}
	return u.Host
}
