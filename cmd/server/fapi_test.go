package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/clients"
	"gatehouse/oauth/dpoptest"
	"gatehouse/storage"
)

// call sends a request with optional form body and headers and decodes a
// JSON answer.
func call(t *testing.T, method, u string, form url.Values, headers map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	raw := readBody(t, resp)
	var out map[string]any
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("%s %s: %d, body is not JSON: %q", method, u, resp.StatusCode, raw)
		}
	}
	return resp, out
}

func wantError(t *testing.T, what string, resp *http.Response, body map[string]any, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || errorCode(body) != code {
		t.Fatalf("%s: %d %s, want %d %s", what, resp.StatusCode, fmtErr(body), status, code)
	}
}

// dpopCode runs the browser part of a code flow for a public client and
// returns the code; extra adds authorization parameters.
func dpopCode(t *testing.T, srv *testServer, b *browser, conf *oauth2.Config, verifier string, extra ...oauth2.AuthCodeOption) string {
	t.Helper()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, extra...)
	state := newState(t)
	back := b.signInAndAuthorize(conf.AuthCodeURL(state, opts...), "alice", alicePassword, "allow")
	code := back.Query().Get("code")
	if code == "" || back.Query().Get("state") != state {
		t.Fatalf("authorization answered %s, want a code", back)
	}
	return code
}

// TestDPoPFlow: a public client binds its tokens to a DPoP key; the books
// API and userinfo take them only with a fresh proof of that key; a bound
// refresh token needs the same key.
func TestDPoPFlow(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", alicePassword)
	pub, _ := srv.mustCreateClient(t, clients.Registration{Name: "Phone", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	conf := srv.oauthConfig(pub, "", "openid", "books:read", "offline_access")
	key := dpoptest.NewES256()
	tokenURL := srv.URL + "/oauth2/token"
	booksURL := srv.URL + "/api/books"

	verifier := oauth2.GenerateVerifier()
	code := dpopCode(t, srv, newBrowser(t, srv.URL), conf, verifier)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {conf.RedirectURL}, "code_verifier": {verifier}, "client_id": {pub.ID}}
	resp, tok := call(t, "POST", tokenURL, form, map[string]string{"DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL})})
	if resp.StatusCode != http.StatusOK || tok["token_type"] != "DPoP" {
		t.Fatalf("token: %d %v, want 200 token_type DPoP", resp.StatusCode, tok)
	}
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)

	dpopGet := func(u string, p dpoptest.Proof) (*http.Response, map[string]any) {
		return call(t, "GET", u, nil, map[string]string{"Authorization": "DPoP " + access, "DPoP": key.Build(p)})
	}
	if resp, body := dpopGet(booksURL, dpoptest.Proof{Method: "GET", URL: booksURL, AccessToken: access}); resp.StatusCode != http.StatusOK {
		t.Fatalf("books with DPoP: %d %v", resp.StatusCode, body)
	}
	if resp, body := dpopGet(srv.URL+"/userinfo", dpoptest.Proof{Method: "GET", URL: srv.URL + "/userinfo", AccessToken: access}); resp.StatusCode != http.StatusOK || body["sub"] == "" {
		t.Fatalf("userinfo with DPoP: %d %v", resp.StatusCode, body)
	}

	t.Run("bound token as Bearer", func(t *testing.T) {
		resp, body := api(t, "GET", booksURL, access, nil)
		wantError(t, "Bearer", resp, body, http.StatusUnauthorized, "invalid_token")
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `algs="ES256`) {
			t.Fatalf("challenge %q, want a DPoP challenge with algs", ch)
		}
	})
	t.Run("insufficient scope answers in the DPoP scheme", func(t *testing.T) {
		proof := key.Build(dpoptest.Proof{Method: "POST", URL: booksURL, AccessToken: access})
		resp, body := call(t, "POST", booksURL, nil, map[string]string{"Authorization": "DPoP " + access, "DPoP": proof})
		wantError(t, "books:write with a books:read token", resp, body, http.StatusForbidden, "insufficient_scope")
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="books:write"`) {
			t.Fatalf("challenge %q, want DPoP error=insufficient_scope scope=books:write", ch)
		}
	})
	bad := []struct {
		name    string
		headers map[string]string
		code    string
	}{
		{"no proof", map[string]string{"Authorization": "DPoP " + access}, "invalid_dpop_proof"},
		{"wrong ath", map[string]string{"Authorization": "DPoP " + access, "DPoP": key.Build(dpoptest.Proof{Method: "GET", URL: booksURL, AccessToken: "x"})}, "invalid_dpop_proof"},
		{"wrong htm", map[string]string{"Authorization": "DPoP " + access, "DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: booksURL, AccessToken: access})}, "invalid_dpop_proof"},
		{"wrong htu", map[string]string{"Authorization": "DPoP " + access, "DPoP": key.Build(dpoptest.Proof{Method: "GET", URL: srv.URL + "/userinfo", AccessToken: access})}, "invalid_dpop_proof"},
		{"stale iat", map[string]string{"Authorization": "DPoP " + access, "DPoP": key.Build(dpoptest.Proof{Method: "GET", URL: booksURL, AccessToken: access, IAT: time.Now().Add(-time.Hour)})}, "invalid_dpop_proof"},
		{"other key", map[string]string{"Authorization": "DPoP " + access, "DPoP": dpoptest.NewES256().Build(dpoptest.Proof{Method: "GET", URL: booksURL, AccessToken: access})}, "invalid_token"},
		{"unknown token", map[string]string{"Authorization": "DPoP nope", "DPoP": key.Build(dpoptest.Proof{Method: "GET", URL: booksURL, AccessToken: "nope"})}, "invalid_token"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, "GET", booksURL, nil, tc.headers)
			wantError(t, tc.name, resp, body, http.StatusUnauthorized, tc.code)
			if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `error="`+tc.code+`"`) {
				t.Fatalf("challenge %q, want DPoP error=%q", ch, tc.code)
			}
		})
	}
	t.Run("replayed proof", func(t *testing.T) {
		proof := key.Build(dpoptest.Proof{Method: "GET", URL: booksURL, AccessToken: access})
		h := map[string]string{"Authorization": "DPoP " + access, "DPoP": proof}
		if resp, body := call(t, "GET", booksURL, nil, h); resp.StatusCode != http.StatusOK {
			t.Fatalf("first use: %d %v", resp.StatusCode, body)
		}
		resp, body := call(t, "GET", booksURL, nil, h)
		wantError(t, "replay", resp, body, http.StatusUnauthorized, "invalid_dpop_proof")
	})

	refreshWith := func(k dpoptest.Key, proof bool) (*http.Response, map[string]any) {
		h := map[string]string{}
		if proof {
			h["DPoP"] = k.Build(dpoptest.Proof{Method: "POST", URL: tokenURL})
		}
		return call(t, "POST", tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {pub.ID}}, h)
	}
	t.Run("public refresh token is bound", func(t *testing.T) {
		resp, body := refreshWith(key, false)
		wantError(t, "refresh without proof", resp, body, http.StatusBadRequest, "invalid_dpop_proof")
		resp, body = refreshWith(dpoptest.NewES256(), true)
		wantError(t, "refresh with another key", resp, body, http.StatusBadRequest, "invalid_dpop_proof")
		resp, body = refreshWith(key, true)
		if resp.StatusCode != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("refresh with the key: %d %v", resp.StatusCode, body)
		}
	})
}

// TestDPoPBindingAtTheTokenEndpoint covers dpop_jkt, dpop_bound clients,
// introspection's cnf and malformed proofs at the token endpoint.
func TestDPoPBindingAtTheTokenEndpoint(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", alicePassword)
	conf, secret := srv.mustCreateClient(t, createReg("Web"))
	oc := srv.oauthConfig(conf, secret, "books:read")
	key := dpoptest.NewES256()
	tokenURL := srv.URL + "/oauth2/token"
	exchange := func(code, verifier string, h map[string]string) (*http.Response, map[string]any) {
		req := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oc.RedirectURL},
			"code_verifier": {verifier}, "client_id": {conf.ID}, "client_secret": {secret}}
		return call(t, "POST", tokenURL, req, h)
	}
	b := newBrowser(t, srv.URL)

	t.Run("dpop_jkt binds the code", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		code := dpopCode(t, srv, b, oc, v, oauth2.SetAuthURLParam("dpop_jkt", key.Thumbprint()))
		resp, body := exchange(code, v, nil)
		wantError(t, "no proof", resp, body, http.StatusBadRequest, "invalid_dpop_proof")
		resp, body = exchange(code, v, map[string]string{"DPoP": dpoptest.NewES256().Build(dpoptest.Proof{Method: "POST", URL: tokenURL})})
		wantError(t, "other key", resp, body, http.StatusBadRequest, "invalid_dpop_proof")
		resp, body = exchange(code, v, map[string]string{"DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL})})
		if resp.StatusCode != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("with the key: %d %v", resp.StatusCode, body)
		}
		resp, intro := call(t, "POST", srv.URL+"/oauth2/introspect", url.Values{"token": {body["access_token"].(string)},
			"client_id": {conf.ID}, "client_secret": {secret}}, nil)
		cnf, _ := intro["cnf"].(map[string]any)
		if resp.StatusCode != http.StatusOK || intro["active"] != true || cnf["jkt"] != key.Thumbprint() || intro["token_type"] != "DPoP" {
			t.Fatalf("introspection: %d %v, want active with cnf.jkt %s", resp.StatusCode, intro, key.Thumbprint())
		}
	})
	t.Run("malformed dpop_jkt", func(t *testing.T) {
		resp, _ := b.get(oc.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("dpop_jkt", "short")))
		loc := mustParseURL(t, resp.Header.Get("Location"))
		if loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("dpop_jkt=short: %d %s, want a redirect with invalid_request", resp.StatusCode, loc)
		}
	})
	bad := []struct{ name, proof string }{
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.e30."},
		{"wrong typ", key.Build(dpoptest.Proof{Typ: "JWT", Method: "POST", URL: tokenURL})},
		{"wrong htu", key.Build(dpoptest.Proof{Method: "POST", URL: srv.URL + "/oauth2/par"})},
		{"future iat", key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL, IAT: time.Now().Add(time.Hour)})},
		{"garbage", "%%%"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			v := oauth2.GenerateVerifier()
			code := dpopCode(t, srv, b, oc, v)
			resp, body := exchange(code, v, map[string]string{"DPoP": tc.proof})
			wantError(t, tc.name, resp, body, http.StatusBadRequest, "invalid_dpop_proof")
		})
	}
	t.Run("dpop_bound_access_tokens", func(t *testing.T) {
		reg := createReg("Bound")
		reg.GrantTypes = []string{"client_credentials"}
		reg.RedirectURIs = nil
		reg.DPoPBound = true
		c, s := srv.mustCreateClient(t, reg)
		resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"client_credentials"}}, c.ID, s)
		wantError(t, "no proof", resp, body, http.StatusBadRequest, "invalid_dpop_proof")
		req := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {s}}
		resp, body = call(t, "POST", tokenURL, req, map[string]string{"DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL})})
		if resp.StatusCode != http.StatusOK || body["token_type"] != "DPoP" {
			t.Fatalf("with a proof: %d %v", resp.StatusCode, body)
		}
	})
}

// TestDPoPNonce: with --dpop-nonce a proof without the server's nonce is
// answered use_dpop_nonce with a DPoP-Nonce to use.
func TestDPoPNonce(t *testing.T) {
	srv := newTestServer(t, "--dpop-nonce")
	reg := createReg("Machine")
	reg.GrantTypes, reg.RedirectURIs = []string{"client_credentials"}, nil
	c, s := srv.mustCreateClient(t, reg)
	key := dpoptest.NewES256()
	tokenURL := srv.URL + "/oauth2/token"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {s}}
	resp, body := call(t, "POST", tokenURL, form, map[string]string{"DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL})})
	wantError(t, "no nonce", resp, body, http.StatusBadRequest, "use_dpop_nonce")
	nonce := resp.Header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	resp, body = call(t, "POST", tokenURL, form, map[string]string{"DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL, Nonce: "bogus"})})
	wantError(t, "wrong nonce", resp, body, http.StatusBadRequest, "use_dpop_nonce")
	resp, body = call(t, "POST", tokenURL, form, map[string]string{"DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL, Nonce: nonce})})
	if resp.StatusCode != http.StatusOK || body["token_type"] != "DPoP" {
		t.Fatalf("with the nonce: %d %v", resp.StatusCode, body)
	}
	var m map[string]any
	_, m = call(t, "GET", srv.URL+"/.well-known/oauth-authorization-server", nil, nil)
	if algs, _ := m["dpop_signing_alg_values_supported"].([]any); len(algs) < 3 {
		t.Fatalf("discovery dpop_signing_alg_values_supported = %v", m["dpop_signing_alg_values_supported"])
	}
}

// pkjwtClient registers a confidential client that authenticates with
// private_key_jwt and the key's public JWKS inline.
func pkjwtClient(t *testing.T, s interface {
	mustCreateClient(*testing.T, clients.Registration) (storage.Client, string)
}, key dpoptest.Key, edit func(*clients.Registration)) storage.Client {
	t.Helper()
	reg := createReg("Bank")
	reg.AuthMethod = clients.AuthPrivateKeyJWT
	reg.JWKS = key.JWKS()
	if edit != nil {
		edit(&reg)
	}
	c, secret := s.mustCreateClient(t, reg)
	if secret != "" {
		t.Fatal("a private_key_jwt client got a secret")
	}
	return c
}

func assertionForm(c storage.Client, assertion string, form url.Values) url.Values {
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
	form.Set("client_id", c.ID)
	return form
}

// TestPARWithPrivateKeyJWT runs the FAPI 2.0 shape: PAR authenticated with
// private_key_jwt, a one-time request_uri, the code exchanged with another
// assertion and a DPoP proof.
func TestPARWithPrivateKeyJWT(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", alicePassword)
	key := dpoptest.NewES256()
	key.KeyID = "k1"
	c := pkjwtClient(t, srv, key, func(r *clients.Registration) { r.RequirePAR = true })
	other, otherSecret := srv.mustCreateClient(t, createReg("Other"))
	parURL, tokenURL := srv.URL+"/oauth2/par", srv.URL+"/oauth2/token"
	b := newBrowser(t, srv.URL)
	verifier := oauth2.GenerateVerifier()

	push := func(state string) string {
		t.Helper()
		form := assertionForm(c, key.Assertion(c.ID, srv.URL, time.Minute, nil), url.Values{
			"response_type": {"code"}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {"openid books:read"},
			"state": {state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}})
		resp, body := call(t, "POST", parURL, form, nil)
		uri, _ := body["request_uri"].(string)
		if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] != float64(60) {
			t.Fatalf("PAR: %d %v, want 201 with a request_uri for 60 s", resp.StatusCode, body)
		}
		return uri
	}

	t.Run("direct request refused", func(t *testing.T) {
		conf := srv.oauthConfig(c, "", "openid")
		resp, _ := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(verifier)))
		loc := mustParseURL(t, resp.Header.Get("Location"))
		if loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("unpushed request: %d %s, want invalid_request", resp.StatusCode, loc)
		}
	})

	state := newState(t)
	uri := push(state)
	authURL := srv.URL + "/oauth2/authorize?" + url.Values{"client_id": {c.ID}, "request_uri": {uri}}.Encode()
	t.Run("request_uri of another client", func(t *testing.T) {
		resp, body := b.get(srv.URL + "/oauth2/authorize?" + url.Values{"client_id": {other.ID}, "request_uri": {uri}}.Encode())
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_request_uri") {
			t.Fatalf("other client: %d, want 400 invalid_request_uri; %.300s", resp.StatusCode, body)
		}
	})
	back := b.signInAndAuthorize(authURL, "alice", alicePassword, "allow")
	code := back.Query().Get("code")
	if code == "" || back.Query().Get("state") != state {
		t.Fatalf("authorize with request_uri: %s, want a code and the pushed state", back)
	}
	t.Run("request_uri used twice", func(t *testing.T) {
		resp, body := b.get(authURL)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid_request_uri") {
			t.Fatalf("second use: %d, want 400 invalid_request_uri; %.300s", resp.StatusCode, body)
		}
	})

	exchange := func(assertion string) (*http.Response, map[string]any) {
		form := assertionForm(c, assertion, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {verifier}})
		return call(t, "POST", tokenURL, form, map[string]string{"DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL})})
	}
	wrongKey := dpoptest.NewES256()
	wrongKey.KeyID = "k1"
	badAssertions := []struct{ name, assertion string }{
		{"future nbf", key.Assertion(c.ID, srv.URL, time.Minute, func(m map[string]any) { m["nbf"] = time.Now().Add(time.Hour).Unix() })},
		{"year-long exp", key.Assertion(c.ID, srv.URL, 365*24*time.Hour, nil)},
		{"expired", key.Assertion(c.ID, srv.URL, -time.Hour, nil)},
		{"no exp", key.Assertion(c.ID, srv.URL, time.Minute, func(m map[string]any) { delete(m, "exp") })},
		{"wrong aud", key.Assertion(c.ID, "https://elsewhere.example", time.Minute, nil)},
		{"wrong iss", key.Assertion(c.ID, srv.URL, time.Minute, func(m map[string]any) { m["iss"] = other.ID })},
		{"no jti", key.Assertion(c.ID, srv.URL, time.Minute, func(m map[string]any) { delete(m, "jti") })},
		{"signed by another key", wrongKey.Assertion(c.ID, srv.URL, time.Minute, nil)},
		{"alg none", "eyJhbGciOiJub25lIn0." + strings.Split(key.Assertion(c.ID, srv.URL, time.Minute, nil), ".")[1] + "."},
	}
	for _, tc := range badAssertions {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := exchange(tc.assertion)
			wantError(t, tc.name, resp, body, http.StatusUnauthorized, "invalid_client")
		})
	}
	t.Run("a secret instead", func(t *testing.T) {
		resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code}}, c.ID, "guess")
		wantError(t, "secret", resp, body, http.StatusUnauthorized, "invalid_client")
	})

	good := key.Assertion(c.ID, tokenURL, time.Minute, nil)
	resp, tok := exchange(good)
	if resp.StatusCode != http.StatusOK || tok["token_type"] != "DPoP" {
		t.Fatalf("exchange: %d %v, want 200 DPoP", resp.StatusCode, tok)
	}
	t.Run("replayed assertion", func(t *testing.T) {
		resp, body := call(t, "POST", srv.URL+"/oauth2/introspect", assertionForm(c, good, url.Values{"token": {tok["access_token"].(string)}}), nil)
		wantError(t, "replay", resp, body, http.StatusUnauthorized, "invalid_client")
	})
	t.Run("another client's secret still works", func(t *testing.T) {
		resp, body := tokenRequest(t, srv.URL, url.Values{"grant_type": {"client_credentials"}}, other.ID, otherSecret)
		if resp.StatusCode == http.StatusUnauthorized {
			t.Fatalf("secret client: %d %v", resp.StatusCode, body)
		}
	})
}

// TestRequirePARFlag: with --require-par every client must push, and
// discovery says so.
func TestRequirePARFlag(t *testing.T) {
	srv := newTestServer(t, "--require-par")
	c, secret := srv.mustCreateClient(t, createReg("Web"))
	conf := srv.oauthConfig(c, secret, "openid")
	b := newBrowser(t, srv.URL)
	// The client and its redirect URI check out, so the refusal goes back
	// to it (RFC 6749 §4.1.2.1), without a code.
	resp, body := b.get(conf.AuthCodeURL(newState(t)))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unpushed request: %d, want 303 with invalid_request; %.300s", resp.StatusCode, body)
	}
	if q := mustParseURL(t, resp.Header.Get("Location")).Query(); q.Get("error") != "invalid_request" || q.Has("code") {
		t.Fatalf("unpushed request: %v, want invalid_request and no code", q)
	}
	form := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "client_secret": {secret}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {"openid"}, "state": {newState(t)}}
	resp, par := call(t, "POST", srv.URL+"/oauth2/par", form, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PAR: %d %v", resp.StatusCode, par)
	}
	resp, _ = b.get(srv.URL + "/oauth2/authorize?" + url.Values{"client_id": {c.ID}, "request_uri": {par["request_uri"].(string)}}.Encode())
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("pushed request: %d %s, want the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
	badPAR := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"no client authentication", url.Values{"response_type": {"code"}, "redirect_uri": {c.RedirectURIs[0]}}, http.StatusUnauthorized, "invalid_client"},
		{"wrong secret", url.Values{"response_type": {"code"}, "client_id": {c.ID}, "client_secret": {"x"}}, http.StatusUnauthorized, "invalid_client"},
		{"request_uri inside", url.Values{"response_type": {"code"}, "client_id": {c.ID}, "client_secret": {secret}, "request_uri": {"urn:x"}}, http.StatusBadRequest, "invalid_request"},
		{"unregistered redirect", url.Values{"response_type": {"code"}, "client_id": {c.ID}, "client_secret": {secret}, "redirect_uri": {"https://evil.example/cb"}}, http.StatusBadRequest, "invalid_request"},
		{"unknown scope", url.Values{"response_type": {"code"}, "client_id": {c.ID}, "client_secret": {secret}, "scope": {"admin"}}, http.StatusBadRequest, "invalid_scope"},
		{"plain PKCE", url.Values{"response_type": {"code"}, "client_id": {c.ID}, "client_secret": {secret}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}, http.StatusBadRequest, "invalid_request"},
	}
	for _, tc := range badPAR {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("state", newState(t))
			resp, body := call(t, "POST", srv.URL+"/oauth2/par", tc.form, nil)
			wantError(t, tc.name, resp, body, tc.status, tc.code)
		})
	}
	_, m := call(t, "GET", srv.URL+"/.well-known/openid-configuration", nil, nil)
	if m["require_pushed_authorization_requests"] != true || m["pushed_authorization_request_endpoint"] != srv.URL+"/oauth2/par" {
		t.Fatalf("discovery: %v", m)
	}
}

// TestMultiInstanceReplayCache: DPoP proofs and client assertions are
// remembered in the database, so one used on instance A is refused on B.
func TestMultiInstanceReplayCache(t *testing.T) {
	a, b := startPair(t)
	key := dpoptest.NewES256()
	c := pkjwtClient(t, a, key, func(r *clients.Registration) {
		r.GrantTypes, r.RedirectURIs = []string{"client_credentials"}, nil
	})
	tokenURL := sharedIssuer + "/oauth2/token"
	assertion := key.Assertion(c.ID, sharedIssuer, time.Minute, nil)
	proof := key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL})
	form := assertionForm(c, assertion, url.Values{"grant_type": {"client_credentials"}})
	resp, tok := call(t, "POST", a.base+"/oauth2/token", form, map[string]string{"DPoP": proof})
	if resp.StatusCode != http.StatusOK || tok["token_type"] != "DPoP" {
		t.Fatalf("token on A: %d %v", resp.StatusCode, tok)
	}
	resp, body := call(t, "POST", b.base+"/oauth2/token", form, map[string]string{"DPoP": key.Build(dpoptest.Proof{Method: "POST", URL: tokenURL})})
	wantError(t, "assertion replayed on B", resp, body, http.StatusUnauthorized, "invalid_client")
	fresh := assertionForm(c, key.Assertion(c.ID, sharedIssuer, time.Minute, nil), url.Values{"grant_type": {"client_credentials"}})
	resp, body = call(t, "POST", b.base+"/oauth2/token", fresh, map[string]string{"DPoP": proof})
	wantError(t, "proof replayed on B", resp, body, http.StatusBadRequest, "invalid_dpop_proof")

	access := tok["access_token"].(string)
	res := key.Build(dpoptest.Proof{Method: "GET", URL: sharedIssuer + "/api/books", AccessToken: access})
	h := map[string]string{"Authorization": "DPoP " + access, "DPoP": res}
	// The token acts for no user, so A refuses it with 403 only after the
	// proof passed; B must refuse the same proof itself.
	if resp, body := call(t, "GET", a.base+"/api/books", nil, h); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("books on A: %d %v, want 403 past a valid proof", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", b.base+"/api/books", nil, h)
	wantError(t, "resource proof replayed on B", resp, body, http.StatusUnauthorized, "invalid_dpop_proof")
}

// TestConsoleRegistersKeyClient: a developer pastes a JWKS in the app
// console; the app gets no secret and authenticates with assertions.
func TestConsoleRegistersKeyClient(t *testing.T) {
	srv := newTestServer(t)
	dev := newBrowser(t, srv.URL)
	dev.registerUser("dana", "developer password")
	key := dpoptest.NewES256()
	resp, page := dev.post("/apps", url.Values{"name": {"Bank"}, "redirect_uris": {"https://bank.example/cb"},
		"client_type": {"confidential"}, "jwks": {key.JWKS()}})
	wantStatus(t, resp, page, http.StatusCreated)
	id := inputValue(t, page, "client-id")
	if id == "" || inputValue(t, page, "client-secret") != "" {
		t.Fatalf("creation page: client id %q, secret %q; want an id and no secret", id, inputValue(t, page, "client-secret"))
	}
	c := storage.Client{ID: id}
	form := assertionForm(c, key.Assertion(id, srv.URL+"/oauth2/par", time.Minute, nil), url.Values{"response_type": {"code"},
		"redirect_uri": {"https://bank.example/cb"}, "state": {newState(t)}, "scope": {"openid"}})
	if resp, body := call(t, "POST", srv.URL+"/oauth2/par", form, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PAR with the console client's assertion: %d %v", resp.StatusCode, body)
	}
	// Such an app has no secret to rotate: the page offers none, and the
	// request is refused rather than storing a secret nothing would use.
	resp, page = dev.get("/apps/" + id)
	wantStatus(t, resp, page, http.StatusOK)
	if strings.Contains(page, "Rotate secret") || !strings.Contains(page, "private_key_jwt") {
		t.Errorf("the page of a private_key_jwt app offers to rotate a secret or does not say it uses keys")
	}
	resp, page = dev.post("/apps/"+id+"/secret", nil)
	wantStatus(t, resp, page, http.StatusBadRequest)
	if inputValue(t, page, "client-secret") != "" || !strings.Contains(page, "has no secret") {
		t.Errorf("rotating the secret of a private_key_jwt app: no clear refusal, or a secret shown")
	}
	if stored, err := srv.store.GetClient(t.Context(), id); err != nil || stored.SecretHash != nil {
		t.Errorf("after the refused rotation: secret hash %x, err %v; want none", stored.SecretHash, err)
	}
	for _, bad := range []string{`{"keys":[]}`, "not json", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`} {
		resp, page := dev.post("/apps", url.Values{"name": {"Bad"}, "redirect_uris": {"https://bank.example/cb"},
			"client_type": {"confidential"}, "jwks": {bad}})
		wantStatus(t, resp, page, http.StatusBadRequest)
	}
	resp, page = dev.post("/apps", url.Values{"name": {"Bad"}, "redirect_uris": {"https://bank.example/cb"},
		"client_type": {"public"}, "jwks": {key.JWKS()}})
	wantStatus(t, resp, page, http.StatusBadRequest)
}

// TestDynamicRegistrationPrivateKeyJWT: RFC 7591 metadata registers a
// private_key_jwt client with its keys, without a secret.
func TestDynamicRegistrationPrivateKeyJWT(t *testing.T) {
	srv := newTestServer(t, "--dynamic-registration")
	key := dpoptest.NewES256()
	post := func(md string) (*http.Response, map[string]any) {
		resp, err := http.Post(srv.URL+"/oauth2/register", "application/json", strings.NewReader(md))
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.Unmarshal([]byte(readBody(t, resp)), &out)
		return resp, out
	}
	resp, body := post(`{"client_name":"Bank","redirect_uris":["https://bank.example/cb"],"token_endpoint_auth_method":"private_key_jwt",
		"jwks":` + key.JWKS() + `,"require_pushed_authorization_requests":true,"dpop_bound_access_tokens":true}`)
	if resp.StatusCode != http.StatusCreated || body["client_secret"] != nil || body["token_endpoint_auth_method"] != "private_key_jwt" ||
		body["require_pushed_authorization_requests"] != true || body["dpop_bound_access_tokens"] != true || body["jwks"] == nil {
		t.Fatalf("register: %d %v", resp.StatusCode, body)
	}
	id := body["client_id"].(string)
	form := assertionForm(storage.Client{ID: id}, key.Assertion(id, srv.URL, time.Minute, nil), url.Values{"response_type": {"code"},
		"redirect_uri": {"https://bank.example/cb"}, "state": {newState(t)}})
	if resp, body := call(t, "POST", srv.URL+"/oauth2/par", form, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PAR as the registered client: %d %v", resp.StatusCode, body)
	}
	for _, md := range []string{
		`{"redirect_uris":["https://bank.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
		`{"redirect_uris":["https://bank.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://bank.example/jwks"}`,
		`{"redirect_uris":["https://bank.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}`,
		`{"redirect_uris":["https://bank.example/cb"],"jwks":` + key.JWKS() + `}`,
	} {
		resp, body := post(md)
		wantError(t, md, resp, body, http.StatusBadRequest, "invalid_client_metadata")
	}
}
