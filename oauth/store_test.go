package oauth

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// oldRow is a refresh row's request as the version before the compact
// session encoding wrote it, every empty claim included.
const oldRow = `{"id":"06h39hq3d9r20fhx3tfcgfa3y0","requested_at":"2026-12-02T03:22:59.305950089Z","client_id":"06h39hq3da2j7yv9t8fwkm5rdr","requested_scope":["openid","offline_access","books:read","books:write"],"granted_scope":["openid","offline_access","books:read","books:write"],"form":{},"session":{"id_token_claims":{"jti":"","iss":"https://gatehouse.example","sub":"06h39hq3d64dzevf3e1gja14ar","aud":null,"nonce":"","exp":"0001-01-01T00:00:00Z","iat":"0001-01-01T00:00:00Z","rat":"2026-12-02T03:22:59.305950089Z","auth_time":"2026-12-02T03:22:59.305950089Z","at_hash":"","acr":"pwd","amr":["pwd"],"c_hash":"","ext":{"preferred_username":"alice"}},"headers":{"extra":{}},"expires_at":{"access_token":"2026-12-02T04:22:59.305950089Z","refresh_token":"2027-01-01T03:22:59.305950089Z"},"username":"alice","subject":"06h39hq3d64dzevf3e1gja14ar","jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`

func decodeRow(t *testing.T, data []byte) *fosite.Request {
	t.Helper()
	req, err := (&fositeStore{}).unmarshalRequest(context.Background(), data, newSession())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestStoredRequestCompat: a row written before the compact encoding
// decodes to the request its re-encoding decodes to, and the new
// encoding is the smaller.
func TestStoredRequestCompat(t *testing.T) {
	old := decodeRow(t, []byte(oldRow))
	data, err := marshalRequest(old)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) >= len(oldRow) {
		t.Errorf("the new encoding is %d bytes, the old %d", len(data), len(oldRow))
	}
	again := decodeRow(t, data)
	if !reflect.DeepEqual(again.Session, old.Session) {
		t.Errorf("session after re-encoding\n%#v\nwant\n%#v", again.Session.(*session).DefaultSession.Claims, old.Session.(*session).DefaultSession.Claims)
	}
	again.Client, old.Client, again.Session, old.Session = nil, nil, nil, nil
	if !reflect.DeepEqual(again, old) {
		t.Errorf("request after re-encoding\n%#v\nwant\n%#v", again, old)
	}
}

// TestStoredSessionFull: every field of the session survives the compact
// encoding.
func TestStoredSessionFull(t *testing.T) {
	req := benchRequest()
	sess := req.Session.(*session)
	now := time.Now().UTC()
	sess.JKT = "thumbprint"
	sess.Claims.JTI, sess.Claims.Nonce, sess.Claims.AccessTokenHash, sess.Claims.CodeHash = "jti", "nonce", "at", "c"
	sess.Claims.Audience, sess.Claims.AuthenticationMethodsReferences = []string{"client"}, []string{"pwd", "otp"}
	sess.Claims.AuthenticationContextClassReference = "mfa"
	sess.Claims.ExpiresAt, sess.Claims.IssuedAt = now.Add(time.Hour), now
	sess.Claims.Extra["email"] = "alice@example.com"
	sess.Headers.Extra["kid"] = "key-1"
	data, err := marshalRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeRow(t, data).Session.(*session)
	want, err := json.Marshal(sess)
	if err != nil {
		t.Fatal(err)
	}
	have, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != string(want) {
		t.Errorf("decoded session\n%s\nwant\n%s", have, want)
	}
}

// TestSessionClone: the clone is equal to what openid.DefaultSession's
// own Clone makes, and shares nothing that can change.
func TestSessionClone(t *testing.T) {
	s := decodeRow(t, []byte(oldRow)).Session.(*session)
	s.Claims.Extra["address"] = map[string]any{"country": "NL", "lines": []any{"a"}}
	s.Headers.Extra["kid"] = "key-1"
	c := s.Clone().(*session)
	if want := s.DefaultSession.Clone().(*openid.DefaultSession); !reflect.DeepEqual(c.DefaultSession, want) || c.JKT != s.JKT {
		t.Fatalf("clone\n%#v\nwant\n%#v", c.DefaultSession, want)
	}
	c.Claims.AuthenticationMethodsReferences[0] = "changed"
	c.Claims.Extra["address"].(map[string]any)["lines"].([]any)[0] = "changed"
	c.Headers.Extra["kid"] = "changed"
	c.ExpiresAt[fosite.AccessToken] = time.Time{}
	if s.Claims.AuthenticationMethodsReferences[0] != "pwd" || s.Claims.Extra["address"].(map[string]any)["lines"].([]any)[0] != "a" ||
		s.Headers.Extra["kid"] != "key-1" || s.ExpiresAt[fosite.AccessToken].IsZero() {
		t.Errorf("changing the clone changed the original: %#v", s.DefaultSession)
	}
}

// TestMarshalRequestAsJSON: the hand-written encoding decodes to what
// encoding/json's full encoding of the same request decodes to, odd
// strings, audiences, forms and extra claims included.
func TestMarshalRequestAsJSON(t *testing.T) {
	req := benchRequest()
	req.ID = "quote\" backslash\\ tab\t nul\x00 é \xff <&>"
	req.RequestedAudience, req.GrantedAudience = fosite.Arguments{"https://api.example/"}, fosite.Arguments{}
	req.Form = url.Values{"b": {"2", "3"}, "a": {"1"}, "empty": nil}
	sess := req.Session.(*session)
	sess.Username = "ålice"
	sess.Claims.Extra["address"] = map[string]any{"lines": []any{"a", 1.5, true, nil}}
	sess.Headers.Extra["kid"] = "key-1"
	sess.Claims.AuthTime = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	sess.SetExpiresAt(fosite.AuthorizeCode, time.Now())
	full, err := json.Marshal(storedRequest{
		ID: req.ID, RequestedAt: req.RequestedAt, ClientID: req.Client.GetID(),
		RequestedScope: req.RequestedScope, GrantedScope: req.GrantedScope,
		RequestedAudience: req.RequestedAudience, GrantedAudience: req.GrantedAudience,
		Form: req.Form, Session: sess,
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := marshalRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatalf("not JSON: %s", data)
	}
	got, want := decodeRow(t, data), decodeRow(t, full)
	if !reflect.DeepEqual(got.Session, want.Session) {
		t.Errorf("session\n%s\nwant the one of\n%s", data, full)
	}
	got.Client, want.Client, got.Session, want.Session = nil, nil, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("request\n%#v\nwant\n%#v", got, want)
	}
	if _, err := marshalRequest(&fosite.Request{Client: req.Client, RequestedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Session: newSession()}); err == nil {
		t.Error("a time json.Marshal refuses was encoded")
	}
}
