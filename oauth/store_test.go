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

// jsonDecode is what unmarshalRequest decodes without decodeRequest.
func jsonDecode(t *testing.T, data []byte) (storedRequest, *session) {
	t.Helper()
	sess := newSession()
	sr := storedRequest{Session: sess}
	if err := json.Unmarshal(data, &sr); err != nil {
		t.Fatal(err)
	}
	return sr, sess
}

// TestDecodeRequest: decodeRequest takes the rows of this version and of
// the one before, and decodes every document as json.Unmarshal does, by
// itself or by leaving it to json.Unmarshal.
func TestDecodeRequest(t *testing.T) {
	full := benchRequest()
	full.GrantedAudience = fosite.Arguments{"https://api.example/"}
	full.Form = url.Values{"a": {"1", "2"}, "b": nil}
	fs := full.Session.(*session)
	fs.JKT, fs.Claims.AuthenticationMethodsReferences, fs.Claims.Extra["email"] = "jkt", []string{"pwd"}, "a@example.com"
	fs.Headers.Extra["kid"] = "k"
	current, err := marshalRequest(full)
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]struct {
		data string
		fast bool
	}{
		"previous version": {oldRow, true},
		"this version":     {string(current), true},
		"spaces":           {" {\"id\" : \"x\", \"requested_scope\" : [ \"a\" , \"b\" ] , \"form\" : null , \"session\" : { \"expires_at\" : { } } } ", true},
		"empty lists":      {`{"requested_scope":[],"granted_scope":null,"form":{},"session":{"id_token_claims":{"aud":[],"ext":{"n":null,"x":[1,{"y":"}"}]}}}}`, true},
		"escape":           {`{"id":"a\"b","session":{}}`, false},
		"unicode":          {`{"id":"é","session":{"username":"\u00e9"}}`, false},
		"unknown key":      {`{"id":"x","other":1,"session":{"subject":"s"}}`, false},
		"key case":         {`{"ID":"x","session":{"Subject":"s"}}`, false},
		"null claims":      {`{"session":{"id_token_claims":null}}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			wantSR, wantSess := jsonDecode(t, []byte(doc.data))
			sess := newSession()
			sr := storedRequest{Session: sess}
			if err := decodeRequest([]byte(doc.data), &sr, sess); (err == nil) != doc.fast {
				t.Errorf("decodeRequest = %v, want it to decode by itself: %v", err, doc.fast)
			}
			got, err := (&fositeStore{}).unmarshalRequest(context.Background(), []byte(doc.data), newSession())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Session, wantSess) {
				t.Errorf("session %#v\nwant %#v", got.Session.(*session).DefaultSession, wantSess.DefaultSession)
			}
			want := &fosite.Request{ID: wantSR.ID, RequestedAt: wantSR.RequestedAt, RequestedScope: wantSR.RequestedScope,
				GrantedScope: wantSR.GrantedScope, RequestedAudience: wantSR.RequestedAudience,
				GrantedAudience: wantSR.GrantedAudience, Form: wantSR.Form}
			if got.Client.GetID() != wantSR.ClientID {
				t.Errorf("client %q, want %q", got.Client.GetID(), wantSR.ClientID)
			}
			got.Client, got.Session = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("request %#v\nwant %#v", got, want)
			}
		})
	}
	for _, bad := range []string{``, `{`, `{"id":"x"`, `{"id":"x"}}`, `{"session":{"id_token_claims":{"ext":{]}}}}`, `{"requested_at":"yesterday","session":{}}`} {
		if _, err := (&fositeStore{}).unmarshalRequest(context.Background(), []byte(bad), newSession()); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// FuzzDecodeRequest: unmarshalRequest, with decodeRequest in front,
// accepts what json.Unmarshal accepts and decodes it alike.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(oldRow))
	if data, err := marshalRequest(benchRequest()); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"form":{"a":null},"session":{"expires_at":{"x":"2026-01-01T00:00:00Z"},"headers":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := (&fositeStore{}).unmarshalRequest(context.Background(), data, newSession())
		sess := newSession()
		want := storedRequest{Session: sess}
		if jsonErr := json.Unmarshal(data, &want); (err == nil) != (jsonErr == nil) {
			t.Fatalf("unmarshalRequest: %v, json.Unmarshal: %v", err, jsonErr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(got.Session, sess) {
			t.Fatalf("session %#v\nwant %#v", got.Session.(*session).DefaultSession, sess.DefaultSession)
		}
		if got.ID != want.ID || !got.RequestedAt.Equal(want.RequestedAt) || got.Client.GetID() != want.ClientID ||
			!reflect.DeepEqual([]string(got.RequestedScope), want.RequestedScope) || !reflect.DeepEqual([]string(got.GrantedScope), want.GrantedScope) ||
			!reflect.DeepEqual([]string(got.RequestedAudience), want.RequestedAudience) || !reflect.DeepEqual([]string(got.GrantedAudience), want.GrantedAudience) ||
			!reflect.DeepEqual(got.Form, want.Form) {
			t.Fatalf("request %#v\nwant %#v", got, want)
		}
	})
}
