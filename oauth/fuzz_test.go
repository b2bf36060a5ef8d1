package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/accounts"
	"gatehouse/clients"
	"gatehouse/oauth"
	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
	"gatehouse/web/templates"
)

const issuer = "http://gatehouse.test"

// fuzzServer is the real OAuth handler on a temporary SQLite file, with a
// confidential client, a public one and a signed-in user's cookie.
type fuzzServer struct {
	handler    http.Handler
	conf       storage.Client
	confSecret string
	public     storage.Client
	cookie     string
	registered map[string]bool
}

func newFuzzServer(f *testing.F) *fuzzServer {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"), sqlstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	key := []byte("fuzz-secret-0123456789abcdefghijklmnop")
	sessions := accounts.NewSessions(store, [][]byte{key, key[:32]}, accounts.SessionConfig{})
	h, err := oauth.New(ctx, store, sessions, oauth.Config{
		Issuer:             issuer,
		TokenSecret:        key,
		SigningKeySealKeys: [][]byte{key[:32]},
		AccessTokenTTL:     time.Hour,
		RefreshTokenTTL:    time.Hour,
		CodeTTL:            time.Minute,
		SecretHasher:       clients.SecretHasher{},
	}, slog.New(slog.DiscardHandler), func(*http.Request, string) templates.Page { return templates.Page{} })
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	s := &fuzzServer{handler: mux, registered: map[string]bool{}}
	s.conf, s.confSecret, err = clients.Register(ctx, store, clients.Registration{
		Name:         "Fuzz",
		RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1:9999/cb", "http://localhost/cb"},
		GrantTypes:   []string{"authorization_code", "refresh_token", "client_credentials"},
	}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	s.public, _, err = clients.Register(ctx, store, clients.Registration{Name: "Native", RedirectURIs: []string{"com.example.app:/cb"}, Public: true}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []storage.Client{s.conf, s.public} {
		for _, u := range c.RedirectURIs {
			s.registered[u] = true
		}
	}
	user, err := accounts.Register(ctx, store, "fuzzer", "correct horse battery", time.Now())
	if err != nil {
		f.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := sessions.SignIn(rec, httptest.NewRequest(http.MethodGet, "/", nil), accounts.Identity{UserID: user.ID, Username: user.Username, AuthTime: time.Now()}); err != nil {
		f.Fatal(err)
	}
	s.cookie = rec.Header().Get("Set-Cookie")
	return s
}

// fill lets seeds name the clients, whose ids and secret are random.
func (s *fuzzServer) fill(in string) string {
	return strings.NewReplacer("CLIENT_ID", s.conf.ID, "CLIENT_SECRET", s.confSecret, "PUBLIC_ID", s.public.ID).Replace(in)
}

// fillAuth fills an Authorization header, inside Basic credentials too.
func (s *fuzzServer) fillAuth(h string) string {
	if enc, ok := strings.CutPrefix(h, "Basic "); ok {
		if raw, err := base64.StdEncoding.DecodeString(enc); err == nil {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(s.fill(string(raw))))
		}
	}
	return s.fill(h)
}

func (s *fuzzServer) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, r)
	return w
}

// FuzzTokenRequest posts arbitrary forms with arbitrary Authorization
// headers to the token endpoint: every answer is a 200 with tokens or an
// RFC 6749 §5.2 error, never a 5xx or a panic.
func FuzzTokenRequest(f *testing.F) {
	s := newFuzzServer(f)
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	form := "application/x-www-form-urlencoded"
	for _, seed := range []struct{ body, auth, contentType string }{
		{"grant_type=client_credentials", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{"grant_type=client_credentials&client_id=CLIENT_ID&client_secret=CLIENT_SECRET", "", form},
		{"grant_type=client_credentials&scope=books%3Aread", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{"grant_type=authorization_code&code=abc.def&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier=x", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{"grant_type=refresh_token&refresh_token=gatehouse_rt_x.y", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{"grant_type=authorization_code&code=x&client_id=PUBLIC_ID&code_verifier=y", "", form},
		{"grant_type=client_credentials&grant_type=client_credentials", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{"grant_type=client_credentials", basic("CLIENT_ID", "wrong"), form},
		{"grant_type=client_credentials", "Basic !!!", form},
		{"grant_type=client_credentials", basic("CLIENT_ID", "%zz"), form},
		{"grant_type=client_credentials", basic("CLIENT_ID%", "CLIENT_SECRET"), form},
		{"grant_type=client_credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), form},
		{"grant_type=client_credentials", "Bearer x", form},
		{"grant_type=password&username=a&password=b", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{"grant_type=%FF%FE", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{"grant_type=client_credentials;x=1&%", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{`{"grant_type":"client_credentials"}`, basic("CLIENT_ID", "CLIENT_SECRET"), "application/json"},
		{"grant_type=client_credentials", basic("CLIENT_ID", "CLIENT_SECRET"), "multipart/form-data; boundary=x"},
		{"--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--\r\n", basic("CLIENT_ID", "CLIENT_SECRET"), "multipart/form-data; boundary=x"},
		{"grant_type=client_credentials", basic("CLIENT_ID", "CLIENT_SECRET"), "application/x-www-form-urlencoded; charset=utf-8"},
		{"grant_type=client_credentials&client_id=CLIENT_ID&client_secret=wrong", basic("CLIENT_ID", "CLIENT_SECRET"), form},
		{"grant_type=client_credentials", basic("CLIENT_ID", "CLIENT_SECRET"), ""},
	} {
		f.Add(seed.body, seed.auth, seed.contentType)
	}
	request := func(body, auth, contentType string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(s.fill(body)))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if auth != "" {
			r.Header.Set("Authorization", s.fillAuth(auth))
		}
		return r
	}
	// The seeds must reach the success path, or the fuzzer explores only
	// refusals.
	if w := s.serve(request("grant_type=client_credentials", basic("CLIENT_ID", "CLIENT_SECRET"), form)); w.Code != http.StatusOK {
		f.Fatalf("the client_credentials seed got %d %s", w.Code, w.Body)
	}
	f.Fuzz(func(t *testing.T, body, auth, contentType string) {
		r := request(body, auth, contentType)
		w := s.serve(r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%d, body is not JSON: %q", w.Code, w.Body)
		}
		switch w.Code {
		case http.StatusOK:
			if tok, _ := out["access_token"].(string); tok == "" {
				t.Fatalf("200 without an access token: %v", out)
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
			if e, _ := out["error"].(string); e == "" {
				t.Fatalf("%d without an error code: %v", w.Code, out)
			}
			if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("401 without WWW-Authenticate: %v", out)
			}
		default:
			t.Fatalf("status %d: %v", w.Code, out)
		}
		// Media types are case-insensitive (RFC 9110 §8.3.1).
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); w.Code == http.StatusOK && mt != "application/x-www-form-urlencoded" {
			t.Fatalf("200 to a body of type %q", r.Header.Get("Content-Type"))
		}
	})
}

// FuzzAuthorizeRequest sends arbitrary authorization queries, signed in
// and not: no answer is a 5xx, and no answer redirects anywhere but this
// server or a registered redirect URI.
func FuzzAuthorizeRequest(f *testing.F) {
	s := newFuzzServer(f)
	for _, q := range []string{
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=books%3Aread&state=abcdefgh&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid+profile&state=abcdefgh&nonce=abcdefgh&prompt=consent",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%3A1234%2Fcb&scope=books%3Aread&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2F..%2Fevil&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%40evil.example%2Fcb",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&redirect_uri=https%3A%2F%2Fevil.example",
		"response_type=code&client_id=CLIENT_ID&state=abcdefgh&prompt=none",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&prompt=login+none&state=abcdefgh",
		"response_type=token&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=abcdefgh",
		"response_type=code&client_id=PUBLIC_ID&redirect_uri=com.example.app%3A%2Fcb&state=abcdefgh&code_challenge=x&code_challenge_method=plain",
		"response_type=code&client_id=PUBLIC_ID&redirect_uri=com.example.app%3A%2Fcb&state=abcdefgh",
		"response_type=code&client_id=%FF&state=%FE",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=%FF%FE%FD%FC%FB%FA%F9%F8",
		"client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&max_age=-1&response_mode=form_post",
		"%zz&;&=&client_id",
		// Loopback variants of the portless http://localhost/cb.
		"response_type=code&client_id=CLIENT_ID&redirect_uri=http%3A%2F%2Flocalhost%3A49152%2Fcb&scope=books%3Aread&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=http%3A%2F%2Flocalhost%3A08080%2Fcb&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Flocalhost%3A8443%2Fcb&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=http%3A%2F%2Flocalhost%3A80%40evil.example%2Fcb&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2F%2563b&state=abcdefgh",
		// Repeated parameters and the ones Gatehouse does not support.
		"response_type=code&client_id=CLIENT_ID&client_id=PUBLIC_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aabc",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&request=eyJhbGciOiJub25lIn0.e30.&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_mode=form_post&scope=books%3Aread&state=abcdefgh&prompt=login",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_mode=fragment&state=abcdefgh",
		"response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&max_age=0&signed_in_after=x&state=abcdefgh",
	} {
		f.Add(q, false, "", "")
		f.Add(q, true, "", "")
	}
	// A GET's body, multipart or not, is never read.
	f.Add("response_type=code&client_id=CLIENT_ID&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=abcdefgh", true, "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"scope\"\r\n\r\nbooks:write\r\n--b--\r\n")
	f.Add("response_type=code&client_id=CLIENT_ID&state=abcdefgh", true, "application/x-www-form-urlencoded", "redirect_uri=https%3A%2F%2Fevil.example%2Fcb")
	f.Fuzz(func(t *testing.T, query string, signedIn bool, contentType, body string) {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/authorize", strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		r.URL.RawQuery = s.fill(query)
		if signedIn {
			r.Header.Set("Cookie", s.cookie)
		}
		w := s.serve(r)
		if w.Code >= 500 {
			t.Fatalf("status %d: %.300s", w.Code, w.Body)
		}
		loc := w.Header().Get("Location")
		if loc == "" {
			return
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("Location %q does not parse: %v", loc, err)
		}
		if u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(loc, "//") {
			return
		}
		target := *u
		target.RawQuery, target.Fragment = "", ""
		if _, ok := clients.MatchRedirectURI(slices.Collect(maps.Keys(s.registered)), target.String()); !ok {
			t.Fatalf("query %q redirected to unregistered %q", r.URL.RawQuery, loc)
		}
	})
}
