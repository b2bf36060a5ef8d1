package oauth

import (
	"github.com/ory/fosite"

	"gatehouse/storage"
)

// client presents a stored client to fosite. It deliberately does not
// implement fosite.OpenIDConnectClient: that interface pins one
// token_endpoint_auth_method per client, while the contract lets every
// confidential client use client_secret_basic or client_secret_post.
type client struct{ storage.Client }

var _ fosite.Client = client{}

func (c client) GetID() string                      { return c.ID }
func (c client) GetHashedSecret() []byte            { return c.SecretHash }
func (c client) GetRedirectURIs() []string          { return c.RedirectURIs }
func (c client) GetGrantTypes() fosite.Arguments    { return c.Client.GrantTypes }
func (c client) GetResponseTypes() fosite.Arguments { return fosite.Arguments{"code"} }
func (c client) GetScopes() fosite.Arguments        { return c.Client.Scopes }
func (c client) IsPublic() bool                     { return c.Public }
func (c client) GetAudience() fosite.Arguments      { return nil }
