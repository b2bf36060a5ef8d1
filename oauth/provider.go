package oauth

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"gatehouse/accounts"
	"gatehouse/audit"
	"gatehouse/web/templates"
)

// Config is the protocol configuration, read from the server's flags.
type Config struct {
	Issuer string
	// TokenSecret and OldTokenSecrets are the HMAC keys for tokens and codes,
	// already derived from the system secret; old ones still verify.
	TokenSecret     []byte
	OldTokenSecrets [][]byte
	// SigningKeySealKeys are AES-256 keys derived from the system secret
	// (the current one first, then the old ones): the first seals the ID
	// token signing keys in the database, every one opens them.
	SigningKeySealKeys [][]byte
	AccessTokenTTL     time.Duration
	RefreshTokenTTL    time.Duration
	CodeTTL            time.Duration
	IDTokenTTL         time.Duration
	// RequirePKCE extends PKCE to confidential clients; public clients
	// always need it.
	RequirePKCE bool
	// AllowQueryToken lets resource requests carry ?access_token=.
	AllowQueryToken bool
	// DynamicRegistration advertises POST /oauth2/register in discovery.
	DynamicRegistration bool
	// SecretHasher compares client secrets.
	SecretHasher fosite.Hasher
	// RequirePAR makes pushed authorization requests mandatory for every
	// client.
	RequirePAR bool
	// DPoPNonce makes DPoP proofs carry a server nonce (RFC 9449 §8).
	DPoPNonce bool
	// Audit, when set, records consents and refresh token reuse.
	Audit audit.Recorder
	// RefreshGrace is how long a rotated refresh token, presented again by
	// its client, still gets the answer its rotation got; zero is off.
	RefreshGrace time.Duration
	// ClientMetadataDocuments accepts https URLs naming client metadata
	// documents as client_id; ClientMetadataAllowLoopback also accepts
	// http and loopback addresses for them (development and tests only).
	ClientMetadataDocuments     bool
	ClientMetadataAllowLoopback bool
}

// Handler serves the OAuth and OpenID Connect endpoints.
type Handler struct {
	Store    Store
	Logger   *slog.Logger
	Sessions *accounts.Sessions
	// NewPage fills the shell of an HTML page for this request.
	NewPage func(r *http.Request, title string) templates.Page
	// Metrics, when set, is told of issued tokens and failed client
	// authentications.
	Metrics Metrics
	// JWKS fetches the key sets of clients registered with a jwks_uri;
	// without it such clients cannot authenticate.
	JWKS JWKSFetcher
	// DeviceLimiter throttles wrong user codes at /device per address, as
	// ClientAddress names it; the device pages need both.
	DeviceLimiter accounts.Limiter
	ClientAddress func(*http.Request) string
	// SecondFactor, when set, reports whether a user has a second factor
	// to show: a request whose acr_values ask for ACRMFA then sends a user
	// signed in with a password alone through the code step.
	SecondFactor func(ctx context.Context, userID string) (bool, error)

	jwksCache jwksCache

	cfg      Config
	docs     *documents // nil when metadata documents are off
	provider fosite.OAuth2Provider
	strategy tokenStrategy
	// accessMAC checks access tokens' HMACs, as strategy's Enigma does.
	accessMAC *tokenMAC
	keys      *keyring
	// nonces hands out DPoP server nonces; nil when they are off.
	nonces      *dpopNonces
	fs          *fositeStore
	userCodeKey []byte
}

// New composes fosite over store and loads (or, on first start, creates)
// the ID token signing key.
func New(ctx context.Context, store Store, sessions *accounts.Sessions, cfg Config, logger *slog.Logger, newPage func(*http.Request, string) templates.Page) (*Handler, error) {
	if cfg.IDTokenTTL == 0 {
		cfg.IDTokenTTL = time.Hour
	}
	keys, err := newKeyring(ctx, store, cfg.SigningKeySealKeys, cfg.IDTokenTTL)
	if err != nil {
		return nil, err
	}
	fc := &fosite.Config{
		AccessTokenLifespan:   cfg.AccessTokenTTL,
		RefreshTokenLifespan:  cfg.RefreshTokenTTL,
		AuthorizeCodeLifespan: cfg.CodeTTL,
		IDTokenLifespan:       cfg.IDTokenTTL,
		IDTokenIssuer:         cfg.Issuer,
		AccessTokenIssuer:     cfg.Issuer,
		TokenURL:              cfg.Issuer + "/oauth2/token",
		GlobalSecret:          cfg.TokenSecret,
		RotatedGlobalSecrets:  cfg.OldTokenSecrets,
		HMACHasher:            sha512.New512_256,
		// Exact matching: books:write must never be read as a prefix of
		// anything, and the wildcard default would accept "books.*" forms.
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:        audienceStrategy(cfg.Issuer),
		EnforcePKCE:                     cfg.RequirePKCE,
		EnforcePKCEForPublicClients:     true,
		EnablePKCEPlainChallengeMethod:  false,
		RefreshTokenScopes:              []string{"offline_access"},
		ClientSecretsHasher:             cfg.SecretHasher,
		SendDebugMessagesToClients:      false,
		MinParameterEntropy:             fosite.MinParameterEntropy,
		PushedAuthorizeRequestURIPrefix: parPrefix,
		PushedAuthorizeContextLifespan:  parLifetime,
		IsPushedAuthorizeEnforced:       cfg.RequirePAR,
	}
	strategy := newTokenStrategy(fc)
	var docs *documents
	if cfg.ClientMetadataDocuments {
		docs = newDocuments(store, cfg.ClientMetadataAllowLoopback)
	}
	rows := documentRows{Store: store, docs: docs}
	store = rows
	fs := &fositeStore{db: documentStore{rows}, codeSignature: strategy.AuthorizeCodeSignature, grace: cfg.RefreshGrace, audit: cfg.Audit}
	signer := &idTokenSigner{keys: keys}
	idTokens := &idTokenStrategy{openid.DefaultStrategy{Signer: signer, Config: fc}}
	provider := compose.Compose(fc, checkedClients{audienceStore{fs}},
		&compose.CommonStrategy{
			CoreStrategy:               strategy,
			OpenIDConnectTokenStrategy: idTokens,
			// fosite's OpenID request validator decodes id_token_hint
			// with this one.
			Signer: signer,
		},
		// Order matters: fosite runs the token handlers in this order, and
		// the code grant must see a replayed code before PKCE looks at it.
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	var nonces *dpopNonces
	if cfg.DPoPNonce {
		m := hmac.New(sha256.New, cfg.TokenSecret)
		m.Write([]byte("gatehouse dpop nonce"))
		nonces = &dpopNonces{key: m.Sum(nil), period: 5 * time.Minute}
	}
	userCodeKey, err := hkdf.Key(sha256.New, cfg.TokenSecret, nil, "gatehouse/device-user-code", 32)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		nonces:      nonces,
		Store:       store,
		Logger:      logger,
		Sessions:    sessions,
		NewPage:     newPage,
		cfg:         cfg,
		docs:        docs,
		provider:    provider,
		strategy:    strategy,
		accessMAC:   newTokenMAC(cfg.TokenSecret, cfg.OldTokenSecrets),
		keys:        keys,
		fs:          fs,
		userCodeKey: userCodeKey,
	}
	// Client authentication, fosite's and that of Gatehouse's own endpoints,
	// goes through h.authenticateClient, which adds private_key_jwt.
	fc.ClientAuthenticationStrategy = h.authenticateClient
	// fosite has no device grant; Gatehouse's runs after fosite's own.
	fc.TokenEndpointHandlers = append(fc.TokenEndpointHandlers, &deviceGrant{
		h:        h,
		enigma:   strategy.Enigma,
		tokens:   &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: fs, Config: fc},
		refresh:  strategy,
		store:    fs,
		idTokens: &openid.IDTokenHandleHelper{IDTokenStrategy: idTokens},
		cfg:      fc,
	})
	// Last: fosite's TokenEndpointHandlers.Append skips a handler of a
	// type already listed, and every gated one is a gatedHandler.
	fc.TokenEndpointHandlers = gateHandlers(fc.TokenEndpointHandlers)
	return h, nil
}

// Mount registers the OAuth, OpenID Connect and connected-apps routes.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /oauth2/authorize", h.authorize)
	mux.HandleFunc("POST /oauth2/authorize", h.decide)
	mux.HandleFunc("POST /oauth2/token", h.token)
	mux.HandleFunc("POST /oauth2/par", h.par)
	mux.HandleFunc("POST /oauth2/revoke", h.revoke)
	mux.HandleFunc("POST /oauth2/introspect", h.introspect)
	mux.HandleFunc("GET /userinfo", h.userinfo)
	mux.HandleFunc("POST /userinfo", h.userinfo)
	mux.HandleFunc("GET /.well-known/openid-configuration", h.discovery)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", h.discovery)
	mux.HandleFunc("GET /.well-known/jwks.json", h.jwks)
	mux.HandleFunc("POST /oauth2/device/authorize", h.deviceAuthorize)
	mux.HandleFunc("GET /device", h.devicePage)
	mux.HandleFunc("POST /device", h.deviceSubmit)
	mux.HandleFunc("GET /oauth2/logout", h.endSession)
	mux.HandleFunc("POST /oauth2/logout", h.endSession)
	h.mountResources(mux)
	mux.HandleFunc("GET /account/connections", h.connections)
	mux.HandleFunc("POST /account/connections/{client_id}/revoke", h.revokeConnection)
}

// RotateSigningKey makes a new ID token signing key current for each of
// algs, or for every algorithm of IDTokenAlgs when algs is empty.
func (h *Handler) RotateSigningKey(ctx context.Context, algs ...string) error {
	return h.keys.Rotate(ctx, algs...)
}

// session is the one session type every grant stores: OpenID Connect's,
// which carries the subject, the username and the ID token claims, and the
// DPoP key the tokens are bound to.
type session struct {
	*openid.DefaultSession
	// JKT is the JWK SHA-256 thumbprint of the DPoP key the tokens are
	// bound to (RFC 9449 §6); on a code, its request's dpop_jkt (§10).
	JKT string `json:"jkt,omitempty"`
}

func newSession() *session {
	return &session{DefaultSession: &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Extra: map[string]any{}},
		Headers: &jwt.Headers{Extra: map[string]any{}},
	}}
}

// Clone keeps the binding: fosite clones the session of a refresh token
// for the tokens it issues in exchange. It copies field by field what
// openid.DefaultSession.Clone copies by reflection, at a fraction of the
// cost of every refresh.
func (s *session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return &session{DefaultSession: cloneDefaultSession(s.DefaultSession), JKT: s.JKT}
}

func cloneDefaultSession(d *openid.DefaultSession) *openid.DefaultSession {
	if d == nil {
		return nil
	}
	c := *d
	if d.Claims != nil {
		claims := *d.Claims
		claims.Audience = slices.Clone(claims.Audience)
		claims.AuthenticationMethodsReferences = slices.Clone(claims.AuthenticationMethodsReferences)
		claims.Extra = cloneExtra(claims.Extra)
		c.Claims = &claims
	}
	if d.Headers != nil {
		c.Headers = &jwt.Headers{Extra: cloneExtra(d.Headers.Extra)}
	}
	c.ExpiresAt = maps.Clone(d.ExpiresAt)
	return &c
}

// cloneExtra deep-copies the extra claims or headers: the values that
// nest are JSON's, as decoding a stored session makes them.
func cloneExtra(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneValue(v)
	}
	return c
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneExtra(v)
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneValue(e)
		}
		return c
	case []string:
		return slices.Clone(v)
	}
	return v
}
