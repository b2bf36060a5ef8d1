package oauth

import (
	"context"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// gatedHandler calls a token endpoint handler only for the requests it
// takes. fosite asks every handler to populate every response, and each
// that does not take the request answers fosite.ErrUnknownRequest wrapped
// with a stack trace, which fosite then ignores: capturing those traces
// was a twentieth of a refresh's CPU time. The gate answers the same
// error, plain, before the handler is called.
type gatedHandler struct {
	fosite.TokenEndpointHandler
	// takes narrows CanHandleTokenEndpointRequest to what the handler
	// checks first in both of its steps; nil when it checks nothing more.
	takes func(fosite.AccessRequester) bool
}

// gateHandlers wraps each of handlers in a gatedHandler.
func gateHandlers(handlers fosite.TokenEndpointHandlers) fosite.TokenEndpointHandlers {
	gated := make(fosite.TokenEndpointHandlers, len(handlers))
	for i, th := range handlers {
		g := gatedHandler{TokenEndpointHandler: th}
		if _, ok := th.(*openid.OpenIDConnectRefreshHandler); ok {
			// It issues an ID token on refresh only for a grant with openid.
			g.takes = func(ar fosite.AccessRequester) bool { return ar.GetGrantedScopes().Has("openid") }
		}
		gated[i] = g
	}
	return gated
}

func (g gatedHandler) handles(ctx context.Context, ar fosite.AccessRequester) bool {
	return g.CanHandleTokenEndpointRequest(ctx, ar) && (g.takes == nil || g.takes(ar))
}

func (g gatedHandler) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !g.handles(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	return g.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, ar)
}

func (g gatedHandler) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.handles(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	return g.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, ar, resp)
}
