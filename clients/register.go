package clients

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/audit"
	"gatehouse/storage"
)

const maxMetadataBytes = 64 << 10

// Token endpoint authentication methods of RFC 7591 §2.
const (
	authSecretBasic = "client_secret_basic"
	authSecretPost  = "client_secret_post"
	authNone        = "none"
)

// RegistrationEndpoint is RFC 7591 dynamic client registration: a client
// posts its metadata and receives a client id, and a secret when it is
// confidential. Registered clients have no owner.
type RegistrationEndpoint struct {
	Store  Store
	Logger *slog.Logger
	Now    func() time.Time
	// InitialAccessToken, when not empty, is the bearer token every
	// registration must carry (RFC 7591 §3): the operator hands it to
	// the developers allowed to register.
	InitialAccessToken string
	// Limit, when set, throttles registration requests per client
	// address.
	Limit *RegistrationLimit
	// Audit, when set, records registered clients.
	Audit audit.Recorder
}

// RequestCounter counts requests per key in the database; storage.Store
// is one.
type RequestCounter interface {
	CountRequest(ctx context.Context, key string, now time.Time, window time.Duration) (n int, windowStart time.Time, err error)
}

// RegistrationLimit allows Max registration requests per client address in
// each fixed window of length Window, which starts with the address's first
// request. The requests are counted in the database, one atomic update
// each, so requests arriving at once on any instances get distinct numbers
// and exactly Max of them pass. Window must not exceed
// storage.LoginFailureRetention.
type RegistrationLimit struct {
	Store  RequestCounter
	Max    int
	Window time.Duration
	// Address names the client a request counts against: the sign-in
	// limit's address (an IPv6 /64), so both limits see one client alike.
	Address func(*http.Request) string
}

// wait counts the request of r and returns how long its address must wait,
// zero when the request may go on.
func (l *RegistrationLimit) wait(ctx context.Context, r *http.Request, now time.Time) (time.Duration, error) {
	n, start, err := l.Store.CountRequest(ctx, "oauth2/register "+l.Address(r), now, l.Window)
	if err != nil {
		return 0, fmt.Errorf("registration limit: %w", err)
	}
	if n <= l.Max {
		return 0, nil
	}
	// A racer that opened the window may have read a later clock than now.
	return min(max(start.Add(l.Window).Sub(now), time.Second), l.Window), nil
}

// authorized reports whether r carries the initial access token. Digests of
// equal length are compared in constant time, so neither the token's
// bytes nor its length leak through timing.
func (e *RegistrationEndpoint) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got, want := sha256.Sum256([]byte(strings.TrimSpace(token))), sha256.Sum256([]byte(e.InitialAccessToken))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1

}

// NewRegistrationEndpoint returns a RegistrationEndpoint that reads the clock
// with time.Now.
func NewRegistrationEndpoint(store Store, logger *slog.Logger) *RegistrationEndpoint {
	return &RegistrationEndpoint{Store: store, Logger: logger, Now: time.Now}
}

// clientMetadata is the part of RFC 7591 §2 that Gatehouse acts on. Other
// members are ignored, as §2 requires of unknown metadata.
type clientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	// private_key_jwt clients: their keys inline or by URL (RFC 7591 §2).
	JWKS                   json.RawMessage `json:"jwks"`
	JWKSURI                string          `json:"jwks_uri"`
	RequirePAR             bool            `json:"require_pushed_authorization_requests"`
	DPoPBound              bool            `json:"dpop_bound_access_tokens"`
	PostLogoutRedirectURIs []string        `json:"post_logout_redirect_uris"`
	// OpenID Connect Dynamic Client Registration 1.0 §2.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg"`
}

// registrationResponse is RFC 7591 §3.2.1: the credentials, then the
// metadata as registered.
type registrationResponse struct {
	ClientID                 string          `json:"client_id"`
	ClientSecret             string          `json:"client_secret,omitempty"`
	ClientIDIssuedAt         int64           `json:"client_id_issued_at"`
	ClientSecretExpiresAt    *int64          `json:"client_secret_expires_at,omitempty"`
	ClientName               string          `json:"client_name"`
	RedirectURIs             []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod  string          `json:"token_endpoint_auth_method"`
	GrantTypes               []string        `json:"grant_types"`
	ResponseTypes            []string        `json:"response_types"`
	Scope                    string          `json:"scope"`
	JWKS                     json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                  string          `json:"jwks_uri,omitempty"`
	RequirePAR               bool            `json:"require_pushed_authorization_requests,omitempty"`
	DPoPBound                bool            `json:"dpop_bound_access_tokens,omitempty"`
	PostLogoutRedirectURIs   []string        `json:"post_logout_redirect_uris,omitempty"`
	IDTokenSignedResponseAlg string          `json:"id_token_signed_response_alg"`
}

// ServeHTTP handles POST /oauth2/register.
func (e *RegistrationEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	// The limit comes first, so that it also bounds guesses at the
	// initial access token.
	if e.Limit != nil {
		wait, err := e.Limit.wait(r.Context(), r, e.Now())
		if err != nil {
			e.Logger.ErrorContext(r.Context(), "dynamic client registration failed", "error", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "The client could not be registered"})
			return
		}
		if wait > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(wait.Seconds())), 10))
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too_many_requests", "error_description": "Too many registrations from this address; try again later"})
			return
		}
	}
	if e.InitialAccessToken != "" && !e.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "Registration needs the initial access token this server's operator hands out, as a Bearer token"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeRegistrationError(w, http.StatusBadRequest, metadataError("", "The request body must be application/json"))
		return
	}
	md, status, invalid := decodeMetadata(w, r)
	if invalid != nil {
		writeRegistrationError(w, status, invalid)
		return
	}

	method := md.TokenEndpointAuthMethod
	switch method {
	case "":
		method = authSecretBasic
	case authSecretBasic, authSecretPost, authNone, AuthPrivateKeyJWT:
	default:
		writeRegistrationError(w, http.StatusBadRequest, metadataError("token_endpoint_auth_method",
			"Unsupported token_endpoint_auth_method %s; use client_secret_basic, client_secret_post, private_key_jwt or none", quote(method)))
		return
	}
	for _, rt := range md.ResponseTypes {
		if rt != "code" {
			writeRegistrationError(w, http.StatusBadRequest, metadataError("response_types", "Unsupported response type %s; only code is supported", quote(rt)))
			return
		}
	}
	// RFC 7591 §2.1: the code response type comes with the
	// authorization_code grant, which clients get when they name no grant.
	if len(md.ResponseTypes) > 0 && len(md.GrantTypes) > 0 && !slices.Contains(md.GrantTypes, GrantAuthorizationCode) {
		writeRegistrationError(w, http.StatusBadRequest, metadataError("response_types", "The code response type needs the authorization_code grant type"))
		return
	}

	reg := Registration{
		Origin:       storage.OriginDynamic,
		Name:         md.ClientName,
		RedirectURIs: md.RedirectURIs,
		Public:       method == authNone,
		Scope:        md.Scope,
		GrantTypes:   md.GrantTypes,
		JWKSURI:      md.JWKSURI,
		RequirePAR:   md.RequirePAR,
		DPoPBound:    md.DPoPBound,
		IDTokenAlg:   md.IDTokenSignedResponseAlg,

		PostLogoutRedirectURIs: md.PostLogoutRedirectURIs,
	}
	if len(md.JWKS) > 0 && string(md.JWKS) != "null" {
		reg.JWKS = string(md.JWKS)
	}
	if method == AuthPrivateKeyJWT {
		reg.AuthMethod = method
	}
	c, secret, err := Register(r.Context(), e.Store, reg, e.Now())
	if invalid, ok := errors.AsType[*Error](err); ok {
		writeRegistrationError(w, http.StatusBadRequest, invalid)
		return
	}
	if err != nil {
		e.Logger.ErrorContext(r.Context(), "dynamic client registration failed", "error", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "The client could not be registered"})
		return
	}
	audit.Record(r.Context(), e.Audit, audit.Event{Type: audit.ClientCreated, Actor: audit.ActorAnonymous, Client: c.ID, Detail: map[string]string{"name": c.Name, "via": "dynamic_registration"}})
	resp := registrationResponse{
		ClientID:                c.ID,
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
		ClientName:              c.Name,
		RedirectURIs:            c.RedirectURIs,
		TokenEndpointAuthMethod: method,
		GrantTypes:              c.GrantTypes,
		ResponseTypes:           []string{},
		Scope:                   strings.Join(c.Scopes, " "),
		JWKSURI:                 c.JWKSURI,
		RequirePAR:              c.RequirePAR,
		DPoPBound:               c.DPoPBound,
		PostLogoutRedirectURIs:  c.PostLogoutRedirectURIs,

		IDTokenSignedResponseAlg: c.IDTokenAlg,
	}
	if c.JWKS != "" {
		resp.JWKS = json.RawMessage(c.JWKS)
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		resp.ResponseTypes = []string{"code"}
	}
	if secret != "" {
		resp.ClientSecret = secret
		resp.ClientSecretExpiresAt = new(int64(0))
	}
	writeJSON(w, http.StatusCreated, resp)
}

// decodeMetadata reads the one JSON object of the request body. Its errors
// name the problem without echoing Go types.
func decodeMetadata(w http.ResponseWriter, r *http.Request) (clientMetadata, int, *Error) {
	var md clientMetadata
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMetadataBytes))
	err := dec.Decode(&md)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		return md, http.StatusBadRequest, metadataError("", "The request body must hold a single JSON object")
	}
	if err == nil {
		return md, 0, nil
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return md, http.StatusRequestEntityTooLarge, metadataError("", "The request body is larger than %d KiB", maxMetadataBytes>>10)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return md, http.StatusBadRequest, metadataError("", "The request body must be a JSON object")
		}
		return md, http.StatusBadRequest, metadataError(te.Field, "%s has the wrong type", te.Field)
	}
	return md, http.StatusBadRequest, metadataError("", "The request body is not valid JSON")
}

func writeRegistrationError(w http.ResponseWriter, status int, e *Error) {
	writeJSON(w, status, map[string]string{"error": e.Code, "error_description": e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent; a failed write means the client went away.
	_ = json.NewEncoder(w).Encode(v)
}
