package oauth

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// countingHandler takes refresh requests and counts its calls.
type countingHandler struct{ handled, populated int }

func (h *countingHandler) HandleTokenEndpointRequest(context.Context, fosite.AccessRequester) error {
	h.handled++
	return nil
}

func (h *countingHandler) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	h.populated++
	return nil
}

func (h *countingHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *countingHandler) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne("refresh_token")
}

// TestGatedHandler: a handler is called for the requests it takes, and
// the others get a plain ErrUnknownRequest without it being called.
func TestGatedHandler(t *testing.T) {
	ctx := context.Background()
	h := &countingHandler{}
	g := gateHandlers(fosite.TokenEndpointHandlers{h})[0]
	code := &fosite.AccessRequest{GrantTypes: fosite.Arguments{"authorization_code"}}
	if err := g.HandleTokenEndpointRequest(ctx, code); !errors.Is(err, fosite.ErrUnknownRequest) {
		t.Errorf("HandleTokenEndpointRequest(code) = %v", err)
	}
	if err := g.PopulateTokenEndpointResponse(ctx, code, fosite.NewAccessResponse()); !errors.Is(err, fosite.ErrUnknownRequest) {
		t.Errorf("PopulateTokenEndpointResponse(code) = %v", err)
	}
	if h.handled+h.populated != 0 {
		t.Errorf("the handler was called for a request it does not take: %+v", h)
	}
	refresh := &fosite.AccessRequest{GrantTypes: fosite.Arguments{"refresh_token"}}
	if err := g.HandleTokenEndpointRequest(ctx, refresh); err != nil {
		t.Error(err)
	}
	if err := g.PopulateTokenEndpointResponse(ctx, refresh, fosite.NewAccessResponse()); err != nil {
		t.Error(err)
	}
	if h.handled != 1 || h.populated != 1 {
		t.Errorf("calls for a request it takes: %+v", h)
	}
}

// TestGatedOpenIDRefresh: the ID token handler of the refresh grant is
// left out for a grant without openid only.
func TestGatedOpenIDRefresh(t *testing.T) {
	g := gateHandlers(fosite.TokenEndpointHandlers{&openid.OpenIDConnectRefreshHandler{}})[0].(gatedHandler)
	ar := &fosite.AccessRequest{GrantTypes: fosite.Arguments{"refresh_token"}}
	ar.GrantScope("offline_access")
	if g.handles(context.Background(), ar) {
		t.Error("taken without openid")
	}
	ar.GrantScope("openid")
	if !g.handles(context.Background(), ar) {
		t.Error("not taken with openid")
	}
}
