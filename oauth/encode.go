package oauth

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"
)

// appendRequest appends storedRequest's JSON for r, whose session is sess,
// written by hand: encoding/json's reflection and allocations were the
// larger part of storing every token. The extra claims and headers, rare
// and of any shape, still go through encoding/json.
func appendRequest(b []byte, r fosite.Requester, sess *session) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, r.GetID())
	b = append(b, `,"requested_at":`...)
	b, err := appendTime(b, r.GetRequestedAt())
	if err != nil {
		return nil, err
	}
	b = append(b, `,"client_id":`...)
	b = appendString(b, r.GetClient().GetID())
	b = append(b, `,"requested_scope":`...)
	b = appendStrings(b, r.GetRequestedScopes())
	b = append(b, `,"granted_scope":`...)
	b = appendStrings(b, r.GetGrantedScopes())
	if aud := r.GetRequestedAudience(); len(aud) > 0 {
		b = append(b, `,"requested_audience":`...)
		b = appendStrings(b, aud)
	}
	if aud := r.GetGrantedAudience(); len(aud) > 0 {
		b = append(b, `,"granted_audience":`...)
		b = appendStrings(b, aud)
	}
	b = append(b, `,"form":`...)
	b = appendForm(b, r.GetRequestForm())
	b = append(b, `,"session":`...)
	if b, err = appendSession(b, sess); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendSession writes sess as its own JSON with every empty field left
// out, which most of an ID token's claims are until one is issued.
// Decoding it is decoding session's JSON, so rows written before and after
// read alike: what is left out keeps the value newSession gives it, the
// zero one or an empty map.
func appendSession(b []byte, sess *session) ([]byte, error) {
	var err error
	o := object{b: b}
	if c := sess.Claims; c != nil {
		o.key("id_token_claims")
		if o.b, err = appendClaims(o.b, c); err != nil {
			return nil, err
		}
	}
	if h := sess.Headers; h != nil && len(h.Extra) > 0 {
		o.key("headers")
		o.b = append(o.b, `{"extra":`...)
		if o.b, err = appendValue(o.b, h.Extra); err != nil {
			return nil, err
		}
		o.b = append(o.b, '}')
	}
	if len(sess.ExpiresAt) > 0 {
		o.key("expires_at")
		if o.b, err = appendExpiries(o.b, sess.ExpiresAt); err != nil {
			return nil, err
		}
	}
	o.str("username", sess.Username)
	o.str("subject", sess.DefaultSession.Subject)
	o.str("jkt", sess.JKT)
	return o.end(), nil
}

// appendClaims writes c in the order of its fields, without the empty
// ones.
func appendClaims(b []byte, c *jwt.IDTokenClaims) ([]byte, error) {
	o := object{b: b}
	o.str("jti", c.JTI)
	o.str("iss", c.Issuer)
	o.str("sub", c.Subject)
	o.list("aud", c.Audience)
	o.str("nonce", c.Nonce)
	for _, t := range []struct {
		key string
		t   time.Time
	}{{"exp", c.ExpiresAt}, {"iat", c.IssuedAt}, {"rat", c.RequestedAt}, {"auth_time", c.AuthTime}} {
		if t.t.IsZero() {
			continue
		}
		o.key(t.key)
		var err error
		if o.b, err = appendTime(o.b, t.t); err != nil {
			return nil, err
		}
	}
	o.str("at_hash", c.AccessTokenHash)
	o.str("acr", c.AuthenticationContextClassReference)
	o.list("amr", c.AuthenticationMethodsReferences)
	o.str("c_hash", c.CodeHash)
	if len(c.Extra) > 0 {
		o.key("ext")
		var err error
		if o.b, err = appendValue(o.b, c.Extra); err != nil {
			return nil, err
		}
	}
	return o.end(), nil
}

// object writes the members of a JSON object, leaving out empty ones as
// omitempty does.
type object struct {
	b       []byte
	members int
}

func (o *object) key(k string) {
	if o.members == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.members++
	o.b = appendString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *object) str(k, v string) {
	if v != "" {
		o.key(k)
		o.b = appendString(o.b, v)
	}
}

func (o *object) list(k string, v []string) {
	if len(v) > 0 {
		o.key(k)
		o.b = appendStrings(o.b, v)
	}
}

func (o *object) end() []byte {
	if o.members == 0 {
		return append(o.b, "{}"...)
	}
	return append(o.b, '}')
}

func appendExpiries(b []byte, m map[fosite.TokenType]time.Time) ([]byte, error) {
	keys := make([]fosite.TokenType, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = appendString(b, string(k))
		b = append(b, ':')
		var err error
		if b, err = appendTime(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendForm(b []byte, form url.Values) []byte {
	if form == nil {
		return append(b, "null"...)
	}
	if len(form) == 0 {
		return append(b, "{}"...)
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendStrings(b, form[k])
	}
	return append(b, '}')
}

// appendTime writes t as time.Time's MarshalJSON does, refusing what it
// refuses.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, fmt.Errorf("marshal request: %w", err)
	}
	return append(b, '"'), nil
}

func appendStrings(b []byte, v []string) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString writes s as a JSON string. Strings of plain ASCII, every
// one a token request stores in practice, are copied; any other goes
// through encoding/json, which also mends invalid UTF-8 as it does.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendValue(b []byte, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal request: %w", err)
	}
	return append(b, data...), nil
}
