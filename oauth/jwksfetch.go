package oauth

import (
	"context"

	"gatehouse/fetch"
)

// FetchedJWKS fetches client key sets (jwks_uri) through the same fetcher
// as client metadata documents: public unicast addresses only, checked on
// the address dialled, https only, no redirects, 5 s and 64 KiB.
type FetchedJWKS struct{ *fetch.Fetcher }

// FetchJWKS returns the key set document at uri.
func (f FetchedJWKS) FetchJWKS(ctx context.Context, uri string) ([]byte, error) {
	doc, err := f.JSON(ctx, uri)
	if err != nil {
		return nil, err
	}
	return doc.Body, nil
}
