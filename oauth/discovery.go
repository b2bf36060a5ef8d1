package oauth

import (
	"net/http"
	"slices"

	"gatehouse/clients"
)

// metadata is both the OpenID Connect discovery document and the RFC 8414
// authorization server metadata: it lists exactly what this server does.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	ACRValuesSupported                []string `json:"acr_values_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	AuthorizationResponseIssParameter bool     `json:"authorization_response_iss_parameter_supported"`
	ClaimsParameterSupported          bool     `json:"claims_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported,omitempty"`

	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
	RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
}

func (h *Handler) metadata() metadata {
	iss := h.cfg.Issuer
	m := metadata{
		Issuer:                            iss,
		AuthorizationEndpoint:             iss + "/oauth2/authorize",
		TokenEndpoint:                     iss + "/oauth2/token",
		UserinfoEndpoint:                  iss + "/userinfo",
		JWKSURI:                           iss + "/.well-known/jwks.json",
		RevocationEndpoint:                iss + "/oauth2/revoke",
		IntrospectionEndpoint:             iss + "/oauth2/introspect",
		DeviceAuthorizationEndpoint:       iss + "/oauth2/device/authorize",
		EndSessionEndpoint:                iss + "/oauth2/logout",
		ScopesSupported:                   clients.ScopeNames(),
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query", "form_post"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", "client_credentials", clients.GrantDeviceCode},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  IDTokenAlgs,
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		RevocationAuthMethodsSupported:    []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		IntrospectionAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		ClaimsSupported:                   []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "acr", "amr", "preferred_username", "email", "email_verified"},
		ACRValuesSupported:                []string{ACRPassword, ACRMFA},
		PromptValuesSupported:             []string{"none", "login", "consent"},
		AuthorizationResponseIssParameter: true,
		ClientIDMetadataDocumentSupported: h.docs != nil,

		PushedAuthorizationRequestEndpoint:         iss + "/oauth2/par",
		RequirePushedAuthorizationRequests:         h.cfg.RequirePAR,
		DPoPSigningAlgValuesSupported:              algList(DPoPAlgs),
		TokenEndpointAuthSigningAlgValuesSupported: algList(AssertionAlgs),
	}
	if h.cfg.DynamicRegistration {
		m.RegistrationEndpoint = iss + "/oauth2/register"
	}
	return m
}

func (h *Handler) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeCacheableJSON(w, h.metadata())
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeCacheableJSON(w, h.keys.jwks(r.Context()))
}

// writeCacheableJSON is for public documents: a short cache keeps clients
// from hammering them while a key rotation still shows up within minutes.
func writeCacheableJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	_ = jsonEncode(w, v)
}

// userinfo is the OpenID Connect UserInfo endpoint.
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request) {
	p, ok := h.verifyBearer(w, r, "", true)
	if !ok {
		return
	}
	if p.UserID == "" || !slices.Contains(p.Scopes, "openid") {
		insufficientScope(w, r, "openid", "UserInfo needs a token granted the openid scope.", "")
		return
	}
	claims := map[string]any{"sub": p.UserID}
	if slices.Contains(p.Scopes, "profile") {
		claims["preferred_username"] = p.Username
	}
	if slices.Contains(p.Scopes, "email") {
		if err := h.addEmailClaims(r.Context(), claims, p.UserID); err != nil {
			h.Logger.ErrorContext(r.Context(), "userinfo", "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
			return
		}
	}
	writeJSON(w, http.StatusOK, claims)
}
