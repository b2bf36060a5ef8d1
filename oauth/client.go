package oauth

import (
	"sync"

	"github.com/ory/fosite"

	"gatehouse/storage"
)

// client presents a stored client to fosite. It deliberately does not
// implement fosite.OpenIDConnectClient: that interface pins one
// token_endpoint_auth_method per client, while the contract lets every
// confidential client use client_secret_basic or client_secret_post.
type client struct{ storage.Client }

var (
	_ fosite.Client             = client{}
	_ fosite.ResponseModeClient = client{}
)

func (c client) GetID() string                      { return c.ID }
func (c client) GetHashedSecret() []byte            { return c.SecretHash }
func (c client) GetRedirectURIs() []string          { return c.RedirectURIs }
func (c client) GetGrantTypes() fosite.Arguments    { return c.Client.GrantTypes }
func (c client) GetResponseTypes() fosite.Arguments { return fosite.Arguments{"code"} }
func (c client) GetScopes() fosite.Arguments        { return c.Client.Scopes }
func (c client) IsPublic() bool                     { return c.Public }
func (c client) GetAudience() fosite.Arguments      { return nil }

// GetResponseModes lists the response modes every client may use; without
// it fosite refuses even response_mode=query.
func (c client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeQuery, fosite.ResponseModeFormPost}
}

// storedClient is the client of a request read back from a token row. The
// row names it by id, and checking a token needs nothing more, so the
// client is read from the database only when a flow asks for more (PKCE
// asks whether it is public). It is then as current as the client the
// same request authenticated. A row cannot outlive its client: deleting a
// client deletes its tokens.
type storedClient struct {
	id   string
	load func() (storage.Client, error)
	once sync.Once
	c    client
}

var _ fosite.Client = (*storedClient)(nil)

// get reads the client once. A client that cannot be read fails closed:
// no redirect URIs, grant types or scopes, and public, so PKCE is still
// demanded.
func (s *storedClient) get() client {
	s.once.Do(func() {
		c, err := s.load()
		if err != nil {
			c = storage.Client{ID: s.id, Public: true}
		}
		s.c = client{c}
	})
	return s.c
}

func (s *storedClient) GetID() string                      { return s.id }
func (s *storedClient) GetHashedSecret() []byte            { return s.get().GetHashedSecret() }
func (s *storedClient) GetRedirectURIs() []string          { return s.get().GetRedirectURIs() }
func (s *storedClient) GetGrantTypes() fosite.Arguments    { return s.get().GetGrantTypes() }
func (s *storedClient) GetResponseTypes() fosite.Arguments { return s.get().GetResponseTypes() }
func (s *storedClient) GetScopes() fosite.Arguments        { return s.get().GetScopes() }
func (s *storedClient) IsPublic() bool                     { return s.get().IsPublic() }
func (s *storedClient) GetAudience() fosite.Arguments      { return s.get().GetAudience() }
