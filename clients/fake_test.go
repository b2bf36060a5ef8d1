package clients

import (
	"context"
	"slices"
	"sync"
	"time"

	"gatehouse/storage"
)

// memStore keeps clients in memory, in creation order.
type memStore struct {
	mu      sync.Mutex
	clients []storage.Client
	// err, when set, is what every method returns.
	err error
}

var _ Store = (*memStore)(nil)

func (s *memStore) index(id string) int {
	return slices.IndexFunc(s.clients, func(c storage.Client) bool { return c.ID == id })
}

func (s *memStore) CreateClient(_ context.Context, c storage.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.index(c.ID) >= 0 {
		return storage.ErrConflict
	}
	s.clients = append(s.clients, c)
	return nil
}

func (s *memStore) GetClient(_ context.Context, id string) (storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return storage.Client{}, s.err
	}
	i := s.index(id)
	if i < 0 {
		return storage.Client{}, storage.ErrNotFound
	}
	return s.clients[i], nil
}

func (s *memStore) UpdateClient(_ context.Context, c storage.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	i := s.index(c.ID)
	if i < 0 {
		return storage.ErrNotFound
	}
	old := s.clients[i]
	// The columns sqlstore's UpdateClient writes.
	old.Name, old.RedirectURIs, old.Scopes, old.GrantTypes, old.UpdatedAt = c.Name, c.RedirectURIs, c.Scopes, c.GrantTypes, c.UpdatedAt
	old.PostLogoutRedirectURIs, old.IDTokenAlg = c.PostLogoutRedirectURIs, c.IDTokenAlg
	s.clients[i] = old
	return nil
}

func (s *memStore) SetClientSecret(_ context.Context, id string, hash []byte, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	i := s.index(id)
	if i < 0 {
		return storage.ErrNotFound
	}
	s.clients[i].SecretHash, s.clients[i].UpdatedAt = hash, now
	return nil
}

func (s *memStore) DeleteClient(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	i := s.index(id)
	if i < 0 {
		return storage.ErrNotFound
	}
	s.clients = slices.Delete(s.clients, i, i+1)
	return nil
}

func (s *memStore) ListClientsByOwner(_ context.Context, ownerID string) ([]storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	var out []storage.Client
	for _, c := range s.clients {
		if c.OwnerID == ownerID {
			out = append(out, c)
		}
	}
	return out, nil
}
