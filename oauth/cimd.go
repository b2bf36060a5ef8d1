package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
// checked and cached here. It is stored as a client row, so grants and
// tokens refer to it like to any other, only when the first grant or
// token is written for it: a document anyone can publish must not fill
// the database before a person has allowed it anything.

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
	stored  bool // the client row matches doc
}

// maxCachedDocuments bounds the cache: every URL anyone sends as
// client_id could otherwise stay in memory for a day.
const maxCachedDocuments = 10000

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
	d.mu.Lock()
	if len(d.cache) >= maxCachedDocuments {
		d.evict(now)
	}
	d.cache[id] = cachedDocument{doc: doc, expires: now.Add(documentTTL(fetched.Header.Get("Cache-Control")))}
	d.mu.Unlock()
	return doc, nil
}

// evict drops the expired entries, or else an arbitrary tenth; d.mu is
// held.
func (d *documents) evict(now time.Time) {
	for id, c := range d.cache {
		if !now.Before(c.expires) {
			delete(d.cache, id)
		}
	}
	for id := range d.cache {
		if len(d.cache) < maxCachedDocuments*9/10 {
			break
		}
		delete(d.cache, id)
	}
}

// ensureStored writes the row of a document client before a grant or
// token refers to it, bringing it up to date with the document.
func (d *documents) ensureStored(ctx context.Context, id string) error {
	d.mu.Lock()
	c, ok := d.cache[id]
	d.mu.Unlock()
	if !ok || c.stored {
		// Not cached: it was resolved moments ago, so the row exists
		// unless the cache was evicted in between, which the foreign key
		// then reports.
		return nil
	}
	if err := d.store(ctx, c.doc.Client); err != nil {
		return err
	}
	d.mu.Lock()
	if cur, ok := d.cache[id]; ok && cur.expires == c.expires {
		cur.stored = true
		d.cache[id] = cur
	}
	d.mu.Unlock()
	return nil
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
	case old.Name == c.Name && slices.Equal(old.RedirectURIs, c.RedirectURIs) && slices.Equal(old.Scopes, c.Scopes) && slices.Equal(old.GrantTypes, c.GrantTypes):
		return nil
	}
	return d.db.UpdateClient(ctx, c)
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

// documentRows writes a document client's row before the first grant or
// token that refers to it.
type documentRows struct {
	Store
	docs *documents // nil when metadata documents are off
}

// documentStore is the store fosite reads clients through: a document
// client_id resolves its document (fetching it when the cache is stale),
// and with documents off it names no client at all, even if a row is left
// from when they were on. Pages that list what a person granted read the
// rows as they are, so a vanished document cannot hide a grant from its
// revocation.
type documentStore struct{ documentRows }

type redirectKey struct{ clientID string }

func (s documentRows) CreateToken(ctx context.Context, t storage.Token) error {
	if s.docs != nil && isDocumentClientID(t.ClientID) {
		if err := s.docs.ensureStored(ctx, t.ClientID); err != nil {
			return err
		}
	}
	return s.Store.CreateToken(ctx, t)
}

func (s documentRows) PutGrant(ctx context.Context, g storage.Grant) error {
	if s.docs != nil && isDocumentClientID(g.ClientID) {
		if err := s.docs.ensureStored(ctx, g.ClientID); err != nil {
			return err
		}
	}
	return s.Store.PutGrant(ctx, g)
}

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
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	// The authorization request's redirect URI, once checked against the
	// document with the loopback rule, is presented as registered, so
	// fosite's exact comparison takes it.
	if u, ok := ctx.Value(redirectKey{id}).(string); ok {
		c.RedirectURIs = append(c.RedirectURIs, u)
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
