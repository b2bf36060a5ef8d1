package clients

import (
	"encoding/json"
	"net/url"

	"github.com/go-jose/go-jose/v4"
)

// AuthPrivateKeyJWT is RFC 7523 client authentication with signed
// assertions, checked against the client's registered keys.
const AuthPrivateKeyJWT = "private_key_jwt"

// maxJWKS caps an inline key set; a few RSA keys fit easily.
const maxJWKS = 16 << 10

// validateKeys checks the keys of a private_key_jwt client: exactly one of
// an inline set of public signing keys or an https jwks_uri.
func validateKeys(jwks, jwksURI string) *Error {
	switch {
	case (jwks == "") == (jwksURI == ""):
		return metadataError("jwks", "A private_key_jwt client needs exactly one of jwks and jwks_uri")
	case jwksURI != "":
		u, err := url.Parse(jwksURI)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
			return metadataError("jwks_uri", "The jwks_uri must be an https URL without credentials or fragment")
		}
		return nil
	case len(jwks) > maxJWKS:
		return metadataError("jwks", "The key set is larger than %d KiB", maxJWKS>>10)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwks), &set); err != nil {
		return metadataError("jwks", "The key set is not a valid JSON Web Key Set")
	}
	if len(set.Keys) == 0 {
		return metadataError("jwks", "The key set holds no key")
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() {
			return metadataError("jwks", "The key set may hold public keys only")
		}
		if k.Use != "" && k.Use != "sig" {
			return metadataError("jwks", `The key set's keys must be signing keys (use "sig")`)
		}
	}
	return nil
}
