package oauth

import (
	"context"
	"net/http"
	"slices"

	"github.com/ory/fosite"
)

// Resource is one of the protected resources this server issues tokens
// for (RFC 8707), named by the issuer and Path.
type Resource struct {
	Path string
	// AcceptNoAudience lets through tokens issued without any resource,
	// which is all the first wave's clients know how to ask for.
	AcceptNoAudience bool
	// Scopes are the scopes that mean something to the resource, for its
	// RFC 9728 metadata.
	Scopes []string
	// QueryToken says the resource takes ?access_token= when the operator
	// allows it; the MCP authorization spec forbids it for MCP.
	QueryToken bool
}

// The resources Gatehouse serves.
var (
	BooksAPI = Resource{Path: "/api/books", AcceptNoAudience: true, Scopes: []string{"books:read", "books:write"}, QueryToken: true}
	MCP      = Resource{Path: "/mcp", Scopes: []string{"books:read", "books:write"}}
)

var resources = []Resource{BooksAPI, MCP}

// uri is the resource's identifier: the URI clients send as resource and
// tokens carry as audience.
func (h *Handler) uri(res Resource) string { return h.cfg.Issuer + res.Path }

// MetadataURL is where the resource's RFC 9728 metadata lives (§3.1: the
// well-known segment goes between host and path).
func (h *Handler) MetadataURL(res Resource) string {
	return h.cfg.Issuer + "/.well-known/oauth-protected-resource" + res.Path
}

// resourceURIs are the identifiers every resource value is checked against.
func resourceURIs(issuer string) []string {
	out := make([]string, len(resources))
	for i, res := range resources {
		out[i] = issuer + res.Path
	}
	return out
}

// errInvalidTarget is RFC 8707 §2's error, which fosite does not define.
var errInvalidTarget = &fosite.RFC6749Error{
	ErrorField:       "invalid_target",
	DescriptionField: "The requested resource is invalid, unknown, or malformed.",
	CodeField:        http.StatusBadRequest,
}

// checkResources returns the request's resource values when each names a
// resource of this server.
func (h *Handler) checkResources(values []string) ([]string, error) {
	known := resourceURIs(h.cfg.Issuer)
	var out []string
	for _, v := range values {
		if !slices.Contains(known, v) {
			return nil, errInvalidTarget.WithHintf("The resource %q is not one this server protects; use one of %q.", v, known)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// grantResources takes the authorization request's resource values
// (RFC 8707 §2.1) as the audience of what it will issue. They are also set
// as the requested audience, which fosite carries from the code to the
// token request, so the token endpoint can tell what was authorized.
func (h *Handler) grantResources(ar fosite.AuthorizeRequester) error {
	res, err := h.checkResources(ar.GetRequestForm()["resource"])
	if err != nil {
		return err
	}
	ar.SetRequestedAudience(res)
	for _, r := range res {
		ar.GrantAudience(r)
	}
	return nil
}

// audienceStrategy replaces fosite's, which wants every client to list its
// audiences: here every client may be issued tokens for any resource of
// this server and for nothing else.
func audienceStrategy(issuer string) fosite.AudienceMatchingStrategy {
	known := resourceURIs(issuer)
	return func(_ []string, needle []string) error {
		for _, n := range needle {
			if !slices.Contains(known, n) {
				return errInvalidTarget.WithHintf("The resource %q is not one this server protects.", n)
			}
		}
		return nil
	}
}

// tokenAudience decides the audience of the access token a token request
// gets (RFC 8707 §2.2): the resources it names, which must be among those
// authorized, or else all that were authorized. ok is false when the
// request names none and the audience stays as fosite sets it.
func (h *Handler) tokenAudience(ar fosite.AccessRequester) (aud []string, ok bool, err error) {
	asked, err := h.checkResources(ar.GetRequestForm()["resource"])
	if err != nil || len(asked) == 0 {
		return nil, false, err
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		return asked, true, nil
	}
	// The code grant copies the authorization's requested audience, the
	// refresh grant its granted one.
	authorized := append(slices.Clone(ar.GetRequestedAudience()), ar.GetGrantedAudience()...)
	for _, a := range asked {
		if !slices.Contains(authorized, a) {
			return nil, false, errInvalidTarget.WithHintf("The resource %q was not part of the authorization; a token request may narrow the resources, never add to them.", a)
		}
	}
	return asked, true, nil
}

type audienceKey struct{}

// audienceStore sets the audience of new access tokens to the one the
// token request chose. fosite's code and refresh handlers grant the whole
// authorization's audience right before they store the token, so the
// narrowing has to happen here; refresh tokens keep the whole audience, so
// a client can later ask for each resource it was authorized for.
type audienceStore struct{ *fositeStore }

func (s audienceStore) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	if aud, ok := ctx.Value(audienceKey{}).([]string); ok {
		if r, ok := req.(*fosite.Request); ok {
			r.GrantedAudience = aud
		}
	}
	return s.fositeStore.CreateAccessTokenSession(ctx, signature, req)
}

// protectedResourceMetadata is RFC 9728 §2.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

func (h *Handler) resourceMetadata(res Resource, name string) http.HandlerFunc {
	methods := []string{"header"}
	if h.cfg.AllowQueryToken && res.QueryToken {
		methods = append(methods, "query")
	}
	doc := protectedResourceMetadata{
		Resource:               h.uri(res),
		AuthorizationServers:   []string{h.cfg.Issuer},
		ScopesSupported:        res.Scopes,
		BearerMethodsSupported: methods,
		ResourceName:           name,
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		writeCacheableJSON(w, doc)
	}
}

// mountResources registers the RFC 9728 documents.
func (h *Handler) mountResources(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/api/books", h.resourceMetadata(BooksAPI, "Gatehouse books API"))
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", h.resourceMetadata(MCP, "Gatehouse books over MCP"))
}
