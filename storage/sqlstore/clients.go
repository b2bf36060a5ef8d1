package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"time"

	"gatehouse/storage"
)

const clientColumns = `id, owner_id, name, secret_hash, public, redirect_uris, scopes, grant_types, origin, created_at, updated_at, post_logout_redirect_uris,
	token_endpoint_auth_method, jwks, jwks_uri, require_par, dpop_bound, id_token_signed_response_alg`

var (
	qCreateClient = newQuery(`INSERT INTO clients (` + clientColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	qGetClient    = newQuery(`SELECT ` + clientColumns + ` FROM clients WHERE id = ?`)
	qUpdateClient = newQuery(`UPDATE clients SET name = ?, redirect_uris = ?, scopes = ?, grant_types = ?, updated_at = ?, post_logout_redirect_uris = ?, id_token_signed_response_alg = ? WHERE id = ?`)
	qSetSecret    = newQuery(`UPDATE clients SET secret_hash = ?, updated_at = ? WHERE id = ?`)
	// Grants and tokens go with the client: their foreign keys cascade.
	qDeleteClient   = newQuery(`DELETE FROM clients WHERE id = ?`)
	qListClients    = newQuery(`SELECT ` + clientColumns + ` FROM clients ORDER BY created_at, id`)
	qClientsByOwner = newQuery(`SELECT ` + clientColumns + ` FROM clients WHERE owner_id = ? ORDER BY created_at, id`)
	qClientChanges  = newQuery(`SELECT n FROM client_changes WHERE id = 1`)
)

func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	_, err := s.exec(ctx, qCreateClient, c.ID, nullString(c.OwnerID), c.Name, c.SecretHash, c.Public,
		encodeList(c.RedirectURIs), encodeList(c.Scopes), encodeList(c.GrantTypes), string(c.Origin),
		s.time(c.CreatedAt), s.time(c.UpdatedAt), encodeList(c.PostLogoutRedirectURIs),
		c.AuthMethod, c.JWKS, c.JWKSURI, c.RequirePAR, c.DPoPBound, c.IDTokenAlg)
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, s.d.translate(err))
	}
	return nil
}

// GetClient answers from the client cache while client_changes shows no
// write to clients since the client was read, so a rotated secret, a new
// redirect URI or a deletion counts from the next lookup on, on every
// instance and whichever process wrote it.
//
// Inside a transaction the row is read as it is: the transaction may hold
// its own uncommitted write to clients, which must not reach the cache.
//
// Under a storage.ClientCheck a cached client is returned without reading
// client_changes: the request's next statement that reads it confirms the
// count the cache was filled at (see storage.ClientCheck).
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if txFrom(ctx) != nil {
		return s.getClient(ctx, id)
	}
	if check := storage.ClientCheckFrom(ctx); check.CanDefer() {
		if c, n, ok := s.clients.current(id); ok {
			check.Defer(n)
			return c, nil
		}
	}
	var n int64
	if err := s.stmt(ctx, qClientChanges).QueryRowContext(ctx).Scan(&n); err != nil {
		return storage.Client{}, fmt.Errorf("get client %q: %w", id, err)
	}
	if c, ok := s.clients.get(id, n); ok {
		return c, nil
	}
	// The row read now is at least as new as count n: a write between the
	// two reads makes the next lookup see a higher count and read again.
	c, err := s.getClient(ctx, id)
	if err != nil {
		return storage.Client{}, err
	}
	s.clients.put(c, n)
	return c, nil
}

func (s *Store) getClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := scanClient(s.stmt(ctx, qGetClient).QueryRowContext(ctx, id))
	if err != nil {
		return storage.Client{}, fmt.Errorf("get client %q: %w", id, s.d.translate(err))
	}
	return c, nil
}

// clientCache holds the clients read since client_changes last moved.
type clientCache struct {
	mu sync.RWMutex
	// n is the client_changes count every entry was read at or after.
	n       int64
	clients map[string]storage.Client
}

// maxCachedClients bounds the cache's memory when clients are many
// (dynamic registration, metadata documents): past it the cache starts
// over, which costs only reads.
const maxCachedClients = 10_000

// get returns a copy of the cached client when the count is still n. The
// cache keeps its own copy too: a caller changing a list it was given
// must not change the client for others.
func (cc *clientCache) get(id string, n int64) (storage.Client, bool) {
	c, at, ok := cc.current(id)
	if !ok || at != n {
		return storage.Client{}, false
	}
	return c, true
}

// current returns a copy of the cached client and the count the cache was
// filled at, for a caller that checks that count later.
func (cc *clientCache) current(id string) (storage.Client, int64, bool) {
	cc.mu.RLock()
	c, ok := cc.clients[id]
	n := cc.n
	cc.mu.RUnlock()
	if !ok {
		return storage.Client{}, 0, false
	}
	return cloneClient(c), n, true
}

func cloneClient(c storage.Client) storage.Client {
	c.SecretHash = bytes.Clone(c.SecretHash)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.Scopes = slices.Clone(c.Scopes)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	return c
}

// put caches c, read at count n or later. A higher count than the cache's
// empties it: every entry may be stale. A lower one, from a lookup that
// raced a write, is not kept.
func (cc *clientCache) put(c storage.Client, n int64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if n < cc.n {
		return
	}
	if n > cc.n || cc.clients == nil || len(cc.clients) >= maxCachedClients {
		cc.n = n
		cc.clients = make(map[string]storage.Client)
	}
	cc.clients[c.ID] = cloneClient(c)
}

// UpdateClient changes c's name, redirect URIs, scopes, grant types,
// post-logout redirect URIs, ID token algorithm and updated_at. The owner, the kind, the origin and the secret stay.
func (s *Store) UpdateClient(ctx context.Context, c storage.Client) error {
	err := s.execOne(ctx, qUpdateClient, c.Name, encodeList(c.RedirectURIs), encodeList(c.Scopes),
		encodeList(c.GrantTypes), s.time(c.UpdatedAt), encodeList(c.PostLogoutRedirectURIs), c.IDTokenAlg, c.ID)
	if err != nil {
		return fmt.Errorf("update client %q: %w", c.ID, err)
	}
	return nil
}

func (s *Store) SetClientSecret(ctx context.Context, id string, hash []byte, now time.Time) error {
	if err := s.execOne(ctx, qSetSecret, hash, s.time(now), id); err != nil {
		return fmt.Errorf("set secret of client %q: %w", id, err)
	}
	return nil
}

// DeleteClient deletes the client with its grants and tokens.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := s.execOne(ctx, qDeleteClient, id); err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	return nil
}

// ListClients returns every client, oldest first.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	cs, err := s.listClients(ctx, qListClients)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return cs, nil
}

// ListClientsByOwner returns the clients ownerID registered, oldest first.
func (s *Store) ListClientsByOwner(ctx context.Context, ownerID string) ([]storage.Client, error) {
	cs, err := s.listClients(ctx, qClientsByOwner, ownerID)
	if err != nil {
		return nil, fmt.Errorf("list clients of %q: %w", ownerID, err)
	}
	return cs, nil
}

func (s *Store) listClients(ctx context.Context, q query, args ...any) ([]storage.Client, error) {
	rows, err := s.stmt(ctx, q).QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cs := []storage.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, rows.Err()
}

func scanClient(row scanner) (storage.Client, error) {
	var (
		c     storage.Client
		owner sql.NullString
	)
	err := row.Scan(&c.ID, &owner, &c.Name, &c.SecretHash, &c.Public,
		listDest{&c.RedirectURIs}, listDest{&c.Scopes}, listDest{&c.GrantTypes}, &c.Origin,
		timeDest{&c.CreatedAt}, timeDest{&c.UpdatedAt}, listDest{&c.PostLogoutRedirectURIs},
		&c.AuthMethod, &c.JWKS, &c.JWKSURI, &c.RequirePAR, &c.DPoPBound, &c.IDTokenAlg)
	c.OwnerID = owner.String
	if len(c.PostLogoutRedirectURIs) == 0 {
		// Clients from before migration 0006 hold "[]"; none is nil, as
		// for every other optional list.
		c.PostLogoutRedirectURIs = nil
	}
	return c, err
}
