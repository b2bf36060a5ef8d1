package oauth

import (
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"
)

// errUnusual stops decodeRequest at anything it leaves to encoding/json.
var errUnusual = errors.New("left to encoding/json")

// decodeRequest decodes data into sr, whose Session is sess, as
// json.Unmarshal would, without its reflection: decoding the stored
// request was most of reading a token. It takes what marshalRequest and
// the versions before it write, strings without escapes or non-ASCII
// bytes, and returns errUnusual at anything else (an escape, an unknown
// key, a null where a value was always written); the caller then hands
// the whole of data to json.Unmarshal, which decodes the same values over
// whatever was decoded here. The extra claims and headers, of any shape,
// go to json.Unmarshal in any case.
func decodeRequest(data []byte, sr *storedRequest, sess *session) error {
	d := decoder{data: data}
	err := d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "id":
			sr.ID, err = d.string()
		case "requested_at":
			err = d.time(&sr.RequestedAt)
		case "client_id":
			sr.ClientID, err = d.string()
		case "requested_scope":
			sr.RequestedScope, err = d.strings()
		case "granted_scope":
			sr.GrantedScope, err = d.strings()
		case "requested_audience":
			sr.RequestedAudience, err = d.strings()
		case "granted_audience":
			sr.GrantedAudience, err = d.strings()
		case "form":
			sr.Form, err = d.form()
		case "session":
			err = d.session(sess)
		default:
			err = errUnusual
		}
		return err
	})
	if err != nil {
		return err
	}
	if d.skipSpace(); d.i != len(d.data) {
		return errUnusual
	}
	return nil
}

type decoder struct {
	data []byte
	i    int
}

func (d *decoder) skipSpace() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek is the next byte that is not space, or 0 at the end.
func (d *decoder) peek() byte {
	d.skipSpace()
	if d.i == len(d.data) {
		return 0
	}
	return d.data[d.i]
}

func (d *decoder) expect(c byte) error {
	if d.peek() != c {
		return errUnusual
	}
	d.i++
	return nil
}

// null consumes a null if one is next.
func (d *decoder) null() bool {
	if d.peek() == 'n' && len(d.data)-d.i >= 4 && string(d.data[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// object calls member for each key of an object, with the decoder at the
// member's value.
func (d *decoder) object(member func(key []byte) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		key, err := d.rawString()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return errUnusual
		}
	}
}

// rawString is the bytes of a string without escapes and of ASCII only.
func (d *decoder) rawString() ([]byte, error) {
	if err := d.expect('"'); err != nil {
		return nil, err
	}
	start := d.i
	for ; d.i < len(d.data); d.i++ {
		switch c := d.data[d.i]; {
		case c == '"':
			s := d.data[start:d.i]
			d.i++
			return s, nil
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, errUnusual
		}
	}
	return nil, errUnusual
}

func (d *decoder) string() (string, error) {
	s, err := d.rawString()
	return string(s), err
}

func (d *decoder) time(t *time.Time) error {
	s, err := d.rawString()
	if err != nil {
		return err
	}
	if err := t.UnmarshalText(s); err != nil {
		return errUnusual
	}
	return nil
}

// strings decodes an array of strings; null is a nil slice.
func (d *decoder) strings() ([]string, error) {
	if d.null() {
		return nil, nil
	}
	if err := d.expect('['); err != nil {
		return nil, err
	}
	v := []string{}
	if d.peek() == ']' {
		d.i++
		return v, nil
	}
	for {
		s, err := d.string()
		if err != nil {
			return nil, err
		}
		v = append(v, s)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return v, nil
		default:
			return nil, errUnusual
		}
	}
}

func (d *decoder) form() (url.Values, error) {
	if d.null() {
		return nil, nil
	}
	form := url.Values{}
	err := d.object(func(key []byte) error {
		v, err := d.strings()
		form[string(key)] = v
		return err
	})
	return form, err
}

// value hands the next value, whatever it is, to json.Unmarshal into v.
func (d *decoder) value(v any) error {
	d.skipSpace()
	n, err := valueEnd(d.data[d.i:])
	if err != nil {
		return err
	}
	raw := d.data[d.i : d.i+n]
	d.i += n
	if err := json.Unmarshal(raw, v); err != nil {
		return errUnusual
	}
	return nil
}

// valueEnd is the length of the JSON value data begins with, found
// without checking it: json.Unmarshal does that next.
func valueEnd(data []byte) (int, error) {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if i >= len(data) {
				return 0, errUnusual
			}
			if depth == 0 {
				return i + 1, nil
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, nil // the end of a number or literal
			}
			if depth--; depth == 0 {
				return i + 1, nil
			}
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i, nil
			}
		}
	}
	if depth != 0 {
		return 0, errUnusual
	}
	return len(data), nil
}

func (d *decoder) session(sess *session) error {
	return d.object(func(key []byte) error {
		switch string(key) {
		case "id_token_claims":
			if d.null() {
				return errUnusual
			}
			if sess.Claims == nil {
				sess.Claims = &jwt.IDTokenClaims{}
			}
			return d.claims(sess.Claims)
		case "headers":
			return d.value(&sess.Headers)
		case "expires_at":
			if d.null() {
				return errUnusual
			}
			if sess.ExpiresAt == nil {
				sess.ExpiresAt = map[fosite.TokenType]time.Time{}
			}
			return d.object(func(key []byte) error {
				var t time.Time
				err := d.time(&t)
				sess.ExpiresAt[fosite.TokenType(key)] = t
				return err
			})
		case "username":
			return d.into(&sess.Username)
		case "subject":
			return d.into(&sess.DefaultSession.Subject)
		case "jkt":
			return d.into(&sess.JKT)
		}
		return errUnusual
	})
}

func (d *decoder) claims(c *jwt.IDTokenClaims) error {
	return d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "jti":
			err = d.into(&c.JTI)
		case "iss":
			err = d.into(&c.Issuer)
		case "sub":
			err = d.into(&c.Subject)
		case "aud":
			c.Audience, err = d.strings()
		case "nonce":
			err = d.into(&c.Nonce)
		case "exp":
			err = d.time(&c.ExpiresAt)
		case "iat":
			err = d.time(&c.IssuedAt)
		case "rat":
			err = d.time(&c.RequestedAt)
		case "auth_time":
			err = d.time(&c.AuthTime)
		case "at_hash":
			err = d.into(&c.AccessTokenHash)
		case "acr":
			err = d.into(&c.AuthenticationContextClassReference)
		case "amr":
			c.AuthenticationMethodsReferences, err = d.strings()
		case "c_hash":
			err = d.into(&c.CodeHash)
		case "ext":
			err = d.value(&c.Extra)
		default:
			err = errUnusual
		}
		return err
	})
}

// into decodes a string into s.
func (d *decoder) into(s *string) error {
	v, err := d.rawString()
	if err != nil {
		return err
	}
	*s = string(v)
	return nil
}
