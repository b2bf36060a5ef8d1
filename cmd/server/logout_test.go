package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v3/jwt"
	"golang.org/x/oauth2"

	"gatehouse/clients"
	"gatehouse/storage"
)

const logoutReturn = "https://app.example/signed-out"

// signInWithIDToken runs the code flow for an openid client and returns
// the browser, now signed in, and the ID token, verified by go-oidc.
func signInWithIDToken(t *testing.T, srv *testServer, conf *oauth2.Config, clientID, username string) (*browser, string) {
	t.Helper()
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	b := newBrowser(t, srv.URL)
	pkce := oauth2.GenerateVerifier()
	back := b.signInAndAuthorize(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(pkce)), username, "correct horse battery", "allow")
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if _, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw); err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	return b, raw
}

// signedIn reports whether b's session still counts: the authorization
// endpoint sends a signed-out browser to the login page.
func signedIn(t *testing.T, b *browser, conf *oauth2.Config) bool {
	t.Helper()
	resp, body := b.get(conf.AuthCodeURL(newState(t), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "consent")))
	if resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		return false
	}
	wantStatus(t, resp, body, http.StatusOK)
	return true
}

// signIDToken makes an ID token with the server's own RS256 signing key,
// as forging one would need; the test reads the key from the database.
func signIDToken(t *testing.T, srv *testServer, claims jwt.Claims) string {
	t.Helper()
	keys, err := srv.store.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatalf("signing keys: %v", err)
	}
	i := slices.IndexFunc(keys, func(k storage.SigningKey) bool { return k.Algorithm == "RS256" })
	if i < 0 {
		t.Fatal("no RS256 signing key")
	}
	k, err := x509.ParsePKCS8PrivateKey(openSigningKey(t, keys[i]))
	if err != nil {
		t.Fatal(err)
	}
	return signWith(t, k, keys[i].ID, claims)
}

// openSigningKey unseals a stored signing key as the server does: AES-GCM
// under the key derived from the test secret, the key id as associated
// data, the nonce first.
func openSigningKey(t *testing.T, k storage.SigningKey) []byte {
	t.Helper()
	if !k.Sealed {
		return k.PrivateKey
	}
	block, err := aes.NewCipher(derive([]byte(testSecret), "signing-key-seal"))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	n := aead.NonceSize()
	der, err := aead.Open(nil, k.PrivateKey[:n], k.PrivateKey[n:], []byte(k.ID))
	if err != nil {
		t.Fatalf("open signing key %s: %v", k.ID, err)
	}
	return der
}

func signWith(t *testing.T, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func logoutURL(params url.Values) string { return "/oauth2/logout?" + params.Encode() }

// TestLogout covers RP-Initiated Logout: a valid hint signs out at once and
// returns with state, an expired one still does, a forged or absent one
// asks first, and an unregistered return address goes nowhere.
func TestLogout(t *testing.T) {
	srv := newTestServer(t)
	alice := srv.mustCreateUser(t, "alice", "correct horse battery")
	srv.mustCreateUser(t, "bob", "correct horse battery")
	reg := createReg("Web app")
	reg.PostLogoutRedirectURIs = []string{logoutReturn}
	c, secret := srv.mustCreateClient(t, reg)
	conf := srv.oauthConfig(c, secret, oidc.ScopeOpenID)

	t.Run("round trip with the ID token as hint", func(t *testing.T) {
		b, idToken := signInWithIDToken(t, srv, conf, c.ID, "alice")
		resp, body := b.get(logoutURL(url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {logoutReturn}, "state": {"s 1"}}))
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != logoutReturn+"?state=s+1" {
			t.Fatalf("Location = %q", loc)
		}
		if signedIn(t, b, conf) {
			t.Fatal("still signed in after sign-out")
		}
	})
	t.Run("ES256 and EdDSA hints", func(t *testing.T) {
		for _, alg := range []string{"ES256", "EdDSA"} {
			reg := createReg(alg + " app")
			reg.PostLogoutRedirectURIs, reg.IDTokenAlg = []string{logoutReturn}, alg
			c, secret := srv.mustCreateClient(t, reg)
			conf := srv.oauthConfig(c, secret, oidc.ScopeOpenID)
			b, idToken := signInWithIDToken(t, srv, conf, c.ID, "alice")
			resp, body := b.get(logoutURL(url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {logoutReturn}, "state": {alg}}))
			wantStatus(t, resp, body, http.StatusSeeOther)
			if loc := resp.Header.Get("Location"); loc != logoutReturn+"?state="+alg {
				t.Fatalf("%s: Location = %q", alg, loc)
			}
			if signedIn(t, b, conf) {
				t.Fatalf("%s: still signed in after sign-out", alg)
			}
		}
	})
	t.Run("POST works like GET", func(t *testing.T) {
		b, idToken := signInWithIDToken(t, srv, conf, c.ID, "alice")
		resp, body := b.post("/oauth2/logout", url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {logoutReturn}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != logoutReturn {
			t.Fatalf("Location = %q", loc)
		}
		if signedIn(t, b, conf) {
			t.Fatal("still signed in after sign-out")
		}
	})
	t.Run("an expired hint still identifies the client", func(t *testing.T) {
		b, _ := signInWithIDToken(t, srv, conf, c.ID, "alice")
		old := time.Now().Add(-3 * time.Hour)
		expired := signIDToken(t, srv, jwt.Claims{Issuer: srv.URL, Subject: alice.ID, Audience: jwt.Audience{c.ID}, IssuedAt: jwt.NewNumericDate(old), Expiry: jwt.NewNumericDate(old.Add(time.Hour))})
		resp, body := b.get(logoutURL(url.Values{"id_token_hint": {expired}, "post_logout_redirect_uri": {logoutReturn}, "state": {"x"}}))
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != logoutReturn+"?state=x" {
			t.Fatalf("Location = %q", loc)
		}
	})
	t.Run("a forged hint counts as none: confirm first", func(t *testing.T) {
		b, _ := signInWithIDToken(t, srv, conf, c.ID, "alice")
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		keys, _ := srv.store.ListSigningKeys(context.Background())
		forged := signWith(t, other, keys[0].ID, jwt.Claims{Issuer: srv.URL, Subject: alice.ID, Audience: jwt.Audience{c.ID}, Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))})
		resp, body := b.get(logoutURL(url.Values{"id_token_hint": {forged}, "client_id": {c.ID}, "post_logout_redirect_uri": {logoutReturn}, "state": {"f"}}))
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, `name="decision" value="logout"`) || !strings.Contains(body, "Web app") {
			t.Fatalf("no confirmation form: %.2000s", body)
		}
		if !signedIn(t, b, conf) {
			t.Fatal("a forged hint signed the user out")
		}
		resp, body = b.post("/oauth2/logout", url.Values{"decision": {"logout"}, "client_id": {c.ID}, "post_logout_redirect_uri": {logoutReturn}, "state": {"f"}})
		wantStatus(t, resp, body, http.StatusSeeOther)
		if loc := resp.Header.Get("Location"); loc != logoutReturn+"?state=f" {
			t.Fatalf("Location after confirming = %q", loc)
		}
		if signedIn(t, b, conf) {
			t.Fatal("still signed in after confirming")
		}
	})
	t.Run("another user's hint asks first", func(t *testing.T) {
		_, aliceToken := signInWithIDToken(t, srv, conf, c.ID, "alice")
		b, _ := signInWithIDToken(t, srv, conf, c.ID, "bob")
		resp, body := b.get(logoutURL(url.Values{"id_token_hint": {aliceToken}}))
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, `value="logout"`) || !signedIn(t, b, conf) {
			t.Fatalf("bob was signed out by alice's hint: %.1000s", body)
		}
	})
	t.Run("no parameters: confirm, then a signed-out page", func(t *testing.T) {
		b, _ := signInWithIDToken(t, srv, conf, c.ID, "alice")
		resp, body := b.get("/oauth2/logout")
		wantStatus(t, resp, body, http.StatusOK)
		resp, body = b.post("/oauth2/logout", url.Values{"decision": {"logout"}})
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, "You are signed out") || signedIn(t, b, conf) {
			t.Fatalf("after confirming: %.1000s", body)
		}
	})
	t.Run("a cross-site confirmation is refused", func(t *testing.T) {
		b, _ := signInWithIDToken(t, srv, conf, c.ID, "alice")
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/logout", strings.NewReader("decision=logout"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.StatusCode != http.StatusForbidden || !signedIn(t, b, conf) {
			t.Fatalf("cross-site confirmation: %d", resp.StatusCode)
		}
	})
	t.Run("bad requests get an error page and no redirect", func(t *testing.T) {
		b, idToken := signInWithIDToken(t, srv, conf, c.ID, "alice")
		other, _ := srv.mustCreateClient(t, createReg("Other"))
		for name, params := range map[string]url.Values{
			"unregistered uri":      {"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}},
			"uri of another client": {"client_id": {other.ID}, "post_logout_redirect_uri": {logoutReturn}},
			"uri without a client":  {"post_logout_redirect_uri": {logoutReturn}},
			"client_id not the aud": {"id_token_hint": {idToken}, "client_id": {other.ID}},
			"unknown client":        {"client_id": {"nope"}, "post_logout_redirect_uri": {logoutReturn}},
			"repeated state":        {"client_id": {c.ID}, "state": {"a", "b"}},
		} {
			resp, body := b.get(logoutURL(params))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("%s: %d, Location %q", name, resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(body, "sign-out request") {
				t.Errorf("%s: no explanation on the page: %.500s", name, body)
			}
		}
		if !signedIn(t, b, conf) {
			t.Fatal("a refused request signed the user out")
		}
	})
}

// TestPostLogoutRedirectURIRegistration: the CLI, the console and RFC 7591
// all register post-logout redirect URIs under the redirect URI rules.
func TestPostLogoutRedirectURIRegistration(t *testing.T) {
	srv := newTestServer(t, "--dynamic-registration")
	resp, m := registerJSON(t, srv.URL+"/oauth2/register", `{"client_name":"Dyn","redirect_uris":["https://dyn.example/cb"],"post_logout_redirect_uris":["https://dyn.example/bye"]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %v", resp.StatusCode, m)
	}
	if got, _ := m["post_logout_redirect_uris"].([]any); len(got) != 1 || got[0] != "https://dyn.example/bye" {
		t.Errorf("post_logout_redirect_uris = %v", m["post_logout_redirect_uris"])
	}
	c, err := srv.store.GetClient(context.Background(), m["client_id"].(string))
	if err != nil || len(c.PostLogoutRedirectURIs) != 1 {
		t.Errorf("stored: %+v %v", c.PostLogoutRedirectURIs, err)
	}
	resp, m = registerJSON(t, srv.URL+"/oauth2/register", `{"client_name":"Dyn","redirect_uris":["https://dyn.example/cb"],"post_logout_redirect_uris":["http://dyn.example/bye"]}`)
	if resp.StatusCode != http.StatusBadRequest || m["error"] != clients.CodeInvalidClientMetadata {
		t.Errorf("http non-loopback post-logout URI: %d %v", resp.StatusCode, m)
	}

	srv.mustCreateUser(t, "alice", "correct horse battery")
	b := newBrowser(t, srv.URL)
	resp2, body := b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "return_to": {"/apps"}})
	wantStatus(t, resp2, body, http.StatusSeeOther)
	resp2, body = b.post("/apps", url.Values{"name": {"Console app"}, "redirect_uris": {"https://c.example/cb"}, "post_logout_redirect_uris": {"https://c.example/bye\nhttps://c.example/bye2"}})
	wantStatus(t, resp2, body, http.StatusCreated)
	if !strings.Contains(body, "https://c.example/bye2") {
		t.Errorf("the app page does not show the sign-out redirect URIs: %.3000s", body)
	}
	resp2, body = b.post("/apps", url.Values{"name": {"Bad app"}, "redirect_uris": {"https://c.example/cb"}, "post_logout_redirect_uris": {"javascript:alert(1)"}})
	wantStatus(t, resp2, body, http.StatusBadRequest)
}

func registerJSON(t *testing.T, u, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(readBody(t, resp)), &m); err != nil {
		t.Fatal(err)
	}
	return resp, m
}

// TestCLIDeviceAndLogoutClient: `clients create` takes the device grant
// type without a redirect URI and repeatable --post-logout-redirect-uri.
func TestCLIDeviceAndLogoutClient(t *testing.T) {
	db := filepath.Join(t.TempDir(), "cli.db")
	var out, errOut bytes.Buffer
	args := []string{"clients", "create", "--db", db, "--secret", testSecret, "--name", "TV app", "--public",
		"--grant-type", clients.GrantDeviceCode, "--grant-type", "refresh_token",
		"--post-logout-redirect-uri", "https://tv.example/bye", "--post-logout-redirect-uri", "https://tv.example/bye2"}
	if err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("clients create: %v; %s", err, errOut.String())
	}
	var got struct {
		GrantTypes             []string `json:"grant_types"`
		PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if !slices.Equal(got.GrantTypes, []string{"refresh_token", clients.GrantDeviceCode}) || !slices.Equal(got.PostLogoutRedirectURIs, []string{"https://tv.example/bye", "https://tv.example/bye2"}) {
		t.Errorf("created %+v", got)
	}
	out.Reset()
	args = []string{"clients", "create", "--db", db, "--secret", testSecret, "--name", "Bad", "--redirect-uri", "https://a.example/cb", "--post-logout-redirect-uri", "http://evil.example/"}
	if err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut); err == nil {
		t.Errorf("an http post-logout URI on a public host was accepted: %s", out.String())
	}
}
