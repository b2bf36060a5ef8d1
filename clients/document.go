package clients

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gatehouse/storage"
)

// Document is a client described by a Client ID Metadata Document
// (draft-ietf-oauth-client-id-metadata-document): the client as the
// authorization server treats it, and what the consent page may show.
type Document struct {
	Client storage.Client
	// Host is the host of the client_id URL: the only identity the
	// server can vouch for, since no one registered the client.
	Host string
}

// documentMetadata is the part of the document Gatehouse reads. Other
// members are ignored, as RFC 7591 §2 asks of unknown metadata.
type documentMetadata struct {
	ClientID                string          `json:"client_id"`
	ClientName              string          `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod *string         `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	Scope                   string          `json:"scope"`
	JWKS                    json.RawMessage `json:"jwks"`
	JWKSURI                 string          `json:"jwks_uri"`
	ClientSecret            json.RawMessage `json:"client_secret"`
	ClientSecretExpiresAt   json.RawMessage `json:"client_secret_expires_at"`
	IDTokenAlg              string          `json:"id_token_signed_response_alg"`
}

// CheckDocumentURL reports why rawURL cannot be a client identifier URL
// (the draft's §3): https (or, when loopback is allowed, http on a
// loopback host), a path other than /, no fragment, no user information,
// no dot segments.
func CheckDocumentURL(rawURL string, loopback bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return documentError("the client_id is not a valid URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback && isLoopback(u.Hostname()):
	default:
		return documentError("the client_id URL must use https")
	}
	switch {
	case u.Hostname() == "":
		return documentError("the client_id URL has no host")
	case u.User != nil:
		return documentError("the client_id URL must not contain a user name or password")
	case strings.Contains(rawURL, "#"):
		return documentError("the client_id URL must not contain a fragment")
	case u.Path == "" || u.Path == "/":
		return documentError("the client_id URL must have a path, such as https://app.example/client.json")
	case slices.ContainsFunc(strings.Split(u.Path, "/"), func(s string) bool { return s == "." || s == ".." }):
		return documentError("the client_id URL must not contain . or .. path segments")
	}
	return nil
}

// ParseDocument validates a fetched metadata document for the client
// identifier id. Failures are *Error with a message for the app's
// developer.
func ParseDocument(id string, body []byte, now time.Time) (Document, error) {
	var md documentMetadata
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&md); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return Document{}, documentError("the document is not a JSON object of client metadata: %v", err)
		}
		return Document{}, documentError("the document is not valid JSON")
	}
	if dec.More() {
		return Document{}, documentError("the document holds more than one JSON value")
	}
	if md.ClientID != id {
		return Document{}, documentError("the document's client_id is %s, not the URL it was fetched from (%s)", quote(md.ClientID), quote(id))
	}
	name, err := validateName(md.ClientName)
	if err != nil {
		return Document{}, documentError("client_name: %v", err)
	}
	if len(md.ClientSecret) > 0 || len(md.ClientSecretExpiresAt) > 0 {
		return Document{}, documentError("the document must not contain client_secret: a published document cannot keep a secret")
	}
	switch {
	case md.TokenEndpointAuthMethod == nil:
		return Document{}, documentError("token_endpoint_auth_method is required; this server takes none (a public client using PKCE)")
	case *md.TokenEndpointAuthMethod == authNone:
	case *md.TokenEndpointAuthMethod == "private_key_jwt":
		return Document{}, documentError("token_endpoint_auth_method private_key_jwt is not supported for metadata documents here; use none")
	default:
		return Document{}, documentError("token_endpoint_auth_method %s is not allowed: a published document cannot use a shared secret; use none", quote(*md.TokenEndpointAuthMethod))
	}
	if len(md.RedirectURIs) == 0 {
		return Document{}, documentError("redirect_uris is required")
	}
	for _, u := range md.RedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			return Document{}, documentError("redirect_uris: %v", err)
		}
	}
	for _, rt := range md.ResponseTypes {
		if rt != "code" {
			return Document{}, documentError("response_types: only code is supported, not %s", quote(rt))
		}
	}
	grants := md.GrantTypes
	if len(grants) == 0 {
		grants = []string{GrantAuthorizationCode}
	}
	for _, g := range grants {
		if g != GrantAuthorizationCode && g != GrantRefreshToken {
			return Document{}, documentError("grant_types: %s is not available to a metadata document client; use authorization_code and refresh_token", quote(g))
		}
	}
	if !slices.Contains(grants, GrantAuthorizationCode) {
		return Document{}, documentError("grant_types must include authorization_code")
	}
	scopes, err := ParseScope(md.Scope)
	if err != nil {
		return Document{}, documentError("scope: %v", err)
	}
	alg, err := ValidateIDTokenAlg(md.IDTokenAlg)
	if err != nil {
		return Document{}, documentError("%v", err)
	}
	u, _ := url.Parse(id)
	return Document{
		Client: storage.Client{
			ID:           id,
			Name:         name,
			Public:       true,
			RedirectURIs: slices.Clone(md.RedirectURIs),
			Scopes:       scopes,
			GrantTypes:   canonicalGrants(grants),
			IDTokenAlg:   alg,
			CreatedAt:    now,
			UpdatedAt:    now,
		},
		Host: u.Host,
	}, nil
}

func canonicalGrants(g []string) []string {
	var out []string
	for _, name := range []string{GrantAuthorizationCode, GrantRefreshToken} {
		if slices.Contains(g, name) {
			out = append(out, name)
		}
	}
	return out
}

func documentError(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidClientMetadata, Message: fmt.Sprintf(format, args...)}
}
