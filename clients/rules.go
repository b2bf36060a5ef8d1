package clients

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/storage"
	"gatehouse/web/templates"
)

// Store is the part of storage.Store that manages clients.
type Store interface {
	CreateClient(ctx context.Context, c storage.Client) error                         // storage.ErrConflict
	GetClient(ctx context.Context, id string) (storage.Client, error)                 // storage.ErrNotFound
	UpdateClient(ctx context.Context, c storage.Client) error                         // storage.ErrNotFound
	SetClientSecret(ctx context.Context, id string, hash []byte, now time.Time) error // storage.ErrNotFound
	DeleteClient(ctx context.Context, id string) error                                // storage.ErrNotFound
	ListClientsByOwner(ctx context.Context, ownerID string) ([]storage.Client, error)
}

// Error codes of RFC 7591 §3.2.2. Every rule below reports one of them, so
// dynamic registration passes validation errors on unchanged.
const (
	CodeInvalidRedirectURI    = "invalid_redirect_uri"
	CodeInvalidClientMetadata = "invalid_client_metadata"
)

// Error is a registration rule that a client's metadata breaks.
type Error struct {
	Code string // CodeInvalidRedirectURI or CodeInvalidClientMetadata
	// Field is the offending form field or metadata member: "name",
	// "redirect_uris", "scope", "grant_types", "token_endpoint_auth_method",
	// "response_types" or "post_logout_redirect_uris"; "" when a registration request as a whole is
	// unreadable.
	Field   string
	Message string // a sentence for whoever entered the value
}

func (e *Error) Error() string { return e.Message }

func metadataError(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidClientMetadata, Field: field, Message: fmt.Sprintf(format, args...)}
}

func redirectError(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRedirectURI, Field: "redirect_uris", Message: fmt.Sprintf(format, args...)}
}

// quote quotes a value for an error message, shortened so that a 64 KiB
// registration body cannot come back as a 64 KiB message.
func quote(s string) string {
	const limit = 60
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit]) + "…"
	}
	return strconv.Quote(s)
}

// ErrPublicClient is returned when asking for the secret of a public client,
// which has none.
var ErrPublicClient = errors.New("clients: a public client has no secret")

// ErrKeyClient: a private_key_jwt client proves itself with its keys and
// has no secret to rotate; a secret given to it would authenticate nothing.
var ErrKeyClient = errors.New("clients: a private_key_jwt client has no secret; it authenticates with its keys")

var scopes = []templates.Scope{
	{Name: "openid", Description: "Confirm who you are"},
	{Name: "profile", Description: "See your username"},
	{Name: "email", Description: "See your email address"},
	{Name: "offline_access", Description: "Keep access when you're not using the app"},
	{Name: "books:read", Description: "See your books"},
	{Name: "books:write", Description: "Add, change and delete your books"},
}

// Scopes returns every scope a client can be registered for, in canonical
// order, with its plain-language description.
func Scopes() []templates.Scope { return slices.Clone(scopes) }

// ScopeNames returns the names of Scopes, for discovery's scopes_supported.
func ScopeNames() []string {
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = s.Name
	}
	return names
}

// DescribeScopes pairs each scope name with its description, for the consent
// and app pages.
func DescribeScopes(names []string) []templates.Scope {
	out := make([]templates.Scope, len(names))
	for i, name := range names {
		out[i] = templates.Scope{Name: name, Description: name}
		if j := slices.IndexFunc(scopes, func(s templates.Scope) bool { return s.Name == name }); j >= 0 {
			out[i].Description = scopes[j].Description
		}
	}
	return out
}

// ParseScope turns a space-separated scope list into known scope names in
// canonical order, without duplicates. An empty list means every scope.
// An unknown scope is an *Error.
func ParseScope(s string) ([]string, error) {
	known := ScopeNames()
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return known, nil
	}
	out, unknown := canonical(known, fields)
	if unknown != "" {
		return nil, metadataError("scope", "Unknown scope %s; the scopes are %s", quote(unknown), strings.Join(known, " "))
	}
	return out, nil
}

// Grant types a client can be registered for.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	// GrantDeviceCode is the device authorization grant (RFC 8628).
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// parseGrantTypes returns the grant types in canonical order; none means
// authorization_code and refresh_token.
func parseGrantTypes(names []string, public bool) ([]string, error) {
	if len(names) == 0 {
		return []string{GrantAuthorizationCode, GrantRefreshToken}, nil
	}
	out, unknown := canonical([]string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode}, names)
	switch {
	case unknown != "":
		return nil, metadataError("grant_types", "Unknown grant type %s; use authorization_code, refresh_token, client_credentials or %s", quote(unknown), GrantDeviceCode)
	case public && slices.Contains(out, GrantClientCredentials):
		return nil, metadataError("grant_types", "A public client cannot use client_credentials: that grant authenticates with a secret")
	case slices.Contains(out, GrantRefreshToken) && !slices.Contains(out, GrantAuthorizationCode) && !slices.Contains(out, GrantDeviceCode):
		return nil, metadataError("grant_types", "refresh_token needs authorization_code or the device grant: refresh tokens are issued only with those")
	}
	return out, nil
}

// canonical returns the members of items in the order of known, each once,
// or the first item that is not known.
func canonical(known, items []string) (out []string, unknown string) {
	for _, it := range items {
		if !slices.Contains(known, it) {
			return nil, it
		}
	}
	for _, k := range known {
		if slices.Contains(items, k) {
			out = append(out, k)
		}
	}
	return out, ""
}

const (
	maxNameLen        = 100
	maxRedirectURIs   = 20
	maxRedirectURILen = 2000
)

func validateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", metadataError("name", "A name is required")
	case !utf8.ValidString(name):
		return "", metadataError("name", "The name is not valid UTF-8")
	case utf8.RuneCountInString(name) > maxNameLen:
		return "", metadataError("name", "The name is longer than %d characters", maxNameLen)
	}
	// The name is shown on the consent page; bidirectional overrides could
	// make it read as another app's name.
	if strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) {
		return "", metadataError("name", "The name contains control characters")
	}
	return name, nil
}

// forbiddenSchemes run code or read local data when navigated to. They fail
// the reverse-domain rule anyway; naming them gives a plain refusal instead
// of advice to rename the scheme.
var forbiddenSchemes = []string{"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"}

// ValidateRedirectURI reports, as an *Error with CodeInvalidRedirectURI, why
// s cannot be registered as a redirect URI. Allowed are https URIs with a
// host, http URIs whose host is 127.0.0.1, [::1] or localhost (RFC 8252 §7.3),
// and private-use schemes in reverse-domain form such as
// com.example.app:/callback (RFC 8252 §7.1). Redirect URIs are matched
// exactly, so fragments, wildcards, user information and dot segments are
// refused rather than interpreted.
func ValidateRedirectURI(s string) error {
	switch {
	case s == "":
		return redirectError("A redirect URI is empty")
	case len(s) > maxRedirectURILen:
		return redirectError("A redirect URI is longer than %d characters", maxRedirectURILen)
	}
	bad := func(why string, args ...any) error {
		return redirectError("Redirect URI %s %s", quote(s), fmt.Sprintf(why, args...))
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			return bad("contains whitespace")
		case unicode.IsControl(r):
			return bad("contains a control character")
		case r > unicode.MaxASCII:
			return bad("contains non-ASCII characters; percent-encode them")
		}
	}
	switch {
	case strings.Contains(s, "#"):
		return bad("has a fragment (#), which is not allowed")
	case strings.Contains(s, "*"):
		return bad("contains a wildcard (*); register each redirect URI exactly")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("is not a valid URI")
	}
	if u.Scheme == "" {
		return bad("is relative; use an absolute URI such as https://app.example/callback")
	}
	if slices.Contains(forbiddenSchemes, u.Scheme) {
		return bad("uses the scheme %q, which is not allowed", u.Scheme)
	}
	if i := strings.IndexAny(s, `<>"{}|^`+"`"); i >= 0 {
		// RFC 3986 allows none of these unencoded; they only ever appear
		// in a URI to break out of the markup around it.
		return bad("contains %q; percent-encode it", s[i])
	}
	if u.Opaque != "" {
		return bad("must continue with / after the scheme, as in %s:/callback", u.Scheme)
	}
	if u.User != nil {
		return bad("contains user information (user@), which is not allowed")
	}
	if slices.ContainsFunc(strings.Split(u.Path, "/"), func(seg string) bool { return seg == "." || seg == ".." }) {
		return bad("contains a . or .. path segment")
	}
	if u.Host != "" {
		if err := checkPort(u); err != nil {
			return bad("%s", err)
		}
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return bad("has no host")
		}
		if !validHost(u) {
			return bad("has an invalid host %s", quote(u.Hostname()))
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return bad("uses http with a host that is not loopback; use https, or http with 127.0.0.1, [::1] or localhost")
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return bad("uses the scheme %q; an app's own scheme must be a reverse domain name such as com.example.app", u.Scheme)
		}
		if u.Host == "" && u.Path == "" {
			return bad("has nothing after the scheme")
		}
	}
	return nil
}

func checkPort(u *url.URL) error {
	if strings.HasSuffix(u.Host, ":") {
		return errors.New("has an empty port")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("has an invalid port %s", quote(p))
		}
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "127.0.0.1" || host == "::1" || strings.EqualFold(host, "localhost")
}

// validHost accepts an IP address or a DNS name of letters, digits and
// hyphens. Anything else (percent-encoding, zones, empty labels) would only
// make two spellings of one host.
func validHost(u *url.URL) bool {
	h := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(h)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validateRedirectURIs drops repeats: matching is exact, so a second copy
// would change nothing.
func validateRedirectURIs(uris, grantTypes []string) ([]string, error) {
	if len(uris) > maxRedirectURIs {
		return nil, redirectError("At most %d redirect URIs can be registered", maxRedirectURIs)
	}
	if len(uris) == 0 && slices.Contains(grantTypes, GrantAuthorizationCode) {
		return nil, redirectError("At least one redirect URI is required")
	}
	out := make([]string, 0, len(uris))
	for _, u := range uris {
		if err := ValidateRedirectURI(u); err != nil {
			return nil, err
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// validatePostLogoutRedirectURIs applies the redirect URI rules: logout
// redirects are matched exactly too, and the same schemes are safe.
func validatePostLogoutRedirectURIs(uris []string) ([]string, error) {
	if len(uris) > maxRedirectURIs {
		return nil, metadataError("post_logout_redirect_uris", "At most %d post-logout redirect URIs can be registered", maxRedirectURIs)
	}
	var out []string
	for _, u := range uris {
		if err := ValidateRedirectURI(u); err != nil {
			e := *err.(*Error)
			e.Code, e.Field = CodeInvalidClientMetadata, "post_logout_redirect_uris"
			e.Message = "Post-logout r" + strings.TrimPrefix(e.Message, "R")
			return nil, &e
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// Registration is what a new client asks for.
type Registration struct {
	OwnerID string // "" for clients created from the command line or registered dynamically
	// Origin says who registered the client; when empty, OriginConsole
	// with an owner and OriginUnknown without one.
	Origin       storage.ClientOrigin
	Name         string
	RedirectURIs []string
	Public       bool
	Scope        string   // space-separated; "" for every scope
	GrantTypes   []string // nil for authorization_code and refresh_token
	// AuthMethod is AuthPrivateKeyJWT for a confidential client that
	// authenticates with assertions signed by the keys in JWKS (a JSON Web
	// Key Set) or at JWKSURI instead of a secret; "" otherwise.
	AuthMethod string
	JWKS       string
	JWKSURI    string
	RequirePAR bool // require_pushed_authorization_requests
	DPoPBound  bool // dpop_bound_access_tokens
	// IDTokenAlg is id_token_signed_response_alg, one of IDTokenAlgs; ""
	// is RS256.
	IDTokenAlg string
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser; the same rules as redirect URIs apply.
	PostLogoutRedirectURIs []string
}

// Register validates r and stores the new client. It returns the client and,
// for a confidential client, its secret: the only time the secret exists in
// clear. Validation failures are *Error.
func Register(ctx context.Context, store Store, r Registration, now time.Time) (storage.Client, string, error) {
	name, err := validateName(r.Name)
	if err != nil {
		return storage.Client{}, "", err
	}
	grants, err := parseGrantTypes(r.GrantTypes, r.Public)
	if err != nil {
		return storage.Client{}, "", err
	}
	uris, err := validateRedirectURIs(r.RedirectURIs, grants)
	if err != nil {
		return storage.Client{}, "", err
	}
	scope, err := ParseScope(r.Scope)
	if err != nil {
		return storage.Client{}, "", err
	}
	switch r.AuthMethod {
	case "":
		if r.JWKS != "" || r.JWKSURI != "" {
			return storage.Client{}, "", metadataError("jwks", "Keys are for private_key_jwt clients only")
		}
	case AuthPrivateKeyJWT:
		if r.Public {
			return storage.Client{}, "", metadataError("token_endpoint_auth_method", "A public client cannot use private_key_jwt")
		}
		if err := validateKeys(r.JWKS, r.JWKSURI); err != nil {
			return storage.Client{}, "", err
		}
	default:
		return storage.Client{}, "", metadataError("token_endpoint_auth_method", "Unsupported token_endpoint_auth_method %s", quote(r.AuthMethod))
	}
	origin := r.Origin
	switch {
	case origin != "":
	case r.OwnerID != "":
		origin = storage.OriginConsole
	default:
		origin = storage.OriginUnknown
	}
	logout, err := validatePostLogoutRedirectURIs(r.PostLogoutRedirectURIs)
	if err != nil {
		return storage.Client{}, "", err
	}
	alg, err := ValidateIDTokenAlg(r.IDTokenAlg)
	if err != nil {
		return storage.Client{}, "", err
	}
	c := storage.Client{
		ID:           newClientID(),
		OwnerID:      r.OwnerID,
		Origin:       origin,
		Name:         name,
		Public:       r.Public,
		RedirectURIs: uris,
		Scopes:       scope,
		GrantTypes:   grants,
		AuthMethod:   r.AuthMethod,
		JWKS:         r.JWKS,
		JWKSURI:      r.JWKSURI,
		RequirePAR:   r.RequirePAR,
		DPoPBound:    r.DPoPBound,
		IDTokenAlg:   alg,
		CreatedAt:    now,
		UpdatedAt:    now,

		PostLogoutRedirectURIs: logout,
	}
	var secret string
	if !r.Public && r.AuthMethod == "" {
		secret = newSecret()
		c.SecretHash = hashSecret([]byte(secret))
	}
	if err := store.CreateClient(ctx, c); err != nil {
		return storage.Client{}, "", fmt.Errorf("create client: %w", err)
	}
	return c, secret, nil
}

// newClientID returns 128 random bits. storage.NewID would reveal when the
// client was created and leaves fewer bits to guess. Lower-case letters and
// digits only: client ids go into URLs, basic-auth headers and command lines,
// where a leading '-' would read as a flag.
func newClientID() string {
	return strings.ToLower(rand.Text())
}

// Update renames a client and replaces its redirect URIs. Validation failures
// are *Error; an unknown client is storage.ErrNotFound.
func Update(ctx context.Context, store Store, clientID, name string, redirectURIs []string, now time.Time) (storage.Client, error) {
	return update(ctx, store, clientID, name, redirectURIs, nil, "", now)
}

// UpdateWithLogout is Update that also replaces the post-logout redirect
// URIs and, unless idTokenAlg is "", the ID token algorithm: the console's
// edit form.
func UpdateWithLogout(ctx context.Context, store Store, clientID, name string, redirectURIs, postLogoutRedirectURIs []string, idTokenAlg string, now time.Time) (storage.Client, error) {
	return update(ctx, store, clientID, name, redirectURIs, &postLogoutRedirectURIs, idTokenAlg, now)
}

// update leaves the post-logout redirect URIs as they are when logout is
// nil, and the ID token algorithm when alg is "".
func update(ctx context.Context, store Store, clientID, name string, redirectURIs []string, logout *[]string, alg string, now time.Time) (storage.Client, error) {
	c, err := store.GetClient(ctx, clientID)
	if err != nil {
		return storage.Client{}, fmt.Errorf("get client %q: %w", clientID, err)
	}
	if c.Name, err = validateName(name); err != nil {
		return storage.Client{}, err
	}
	if c.RedirectURIs, err = validateRedirectURIs(redirectURIs, c.GrantTypes); err != nil {
		return storage.Client{}, err
	}
	if logout != nil {
		if c.PostLogoutRedirectURIs, err = validatePostLogoutRedirectURIs(*logout); err != nil {
			return storage.Client{}, err
		}
	}
	if alg != "" {
		if c.IDTokenAlg, err = ValidateIDTokenAlg(alg); err != nil {
			return storage.Client{}, err
		}
	}
	c.UpdatedAt = now
	if err := store.UpdateClient(ctx, c); err != nil {
		return storage.Client{}, fmt.Errorf("update client %q: %w", clientID, err)
	}
	return c, nil
}

// IDTokenAlgs are the id_token_signed_response_alg values Gatehouse
// signs with, the default first: RS256, which every relying party
// verifies, then ES256 (P-256) and EdDSA (Ed25519), far cheaper to sign.
var IDTokenAlgs = []string{"RS256", "ES256", "EdDSA"}

// ValidateIDTokenAlg returns alg, or RS256 for "", when Gatehouse signs
// ID tokens with it; otherwise an invalid_client_metadata *Error.
func ValidateIDTokenAlg(alg string) (string, error) {
	if alg == "" {
		return IDTokenAlgs[0], nil
	}
	if !slices.Contains(IDTokenAlgs, alg) {
		return "", metadataError("id_token_signed_response_alg", "Unsupported id_token_signed_response_alg %s; use %s", quote(alg), strings.Join(IDTokenAlgs, ", "))
	}
	return alg, nil
}

// SetIDTokenAlg changes the algorithm of a client's ID tokens. An unknown
// client is storage.ErrNotFound; an unsupported algorithm an *Error.
func SetIDTokenAlg(ctx context.Context, store Store, clientID, alg string, now time.Time) (storage.Client, error) {
	alg, err := ValidateIDTokenAlg(alg)
	if err != nil {
		return storage.Client{}, err
	}
	c, err := store.GetClient(ctx, clientID)
	if err != nil {
		return storage.Client{}, fmt.Errorf("get client %q: %w", clientID, err)
	}
	c.IDTokenAlg, c.UpdatedAt = alg, now
	if err := store.UpdateClient(ctx, c); err != nil {
		return storage.Client{}, fmt.Errorf("update client %q: %w", clientID, err)
	}
	return c, nil
}

// RotateSecret gives a confidential client a new secret, which replaces the
// old one at once. A public client is ErrPublicClient, a private_key_jwt one
// ErrKeyClient; an unknown one storage.ErrNotFound.
func RotateSecret(ctx context.Context, store Store, clientID string, now time.Time) (string, error) {
	c, err := store.GetClient(ctx, clientID)
	if err != nil {
		return "", fmt.Errorf("get client %q: %w", clientID, err)
	}
	if c.Public {
		return "", ErrPublicClient
	}
	if c.AuthMethod == AuthPrivateKeyJWT {
		return "", ErrKeyClient
	}
	secret := newSecret()
	if err := store.SetClientSecret(ctx, clientID, hashSecret([]byte(secret)), now); err != nil {
		return "", fmt.Errorf("set secret of client %q: %w", clientID, err)
	}
	return secret, nil
}
