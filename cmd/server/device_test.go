package main

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ory/fosite"
	"github.com/ory/fosite/token/hmac"
	"golang.org/x/oauth2"

	"gatehouse/clients"
	"gatehouse/storage"
)

// deviceReg is a public client for a command-line tool: no redirect URI,
// the device grant and refresh tokens.
func deviceReg(name string) clients.Registration {
	return clients.Registration{Name: name, Public: true, GrantTypes: []string{clients.GrantDeviceCode, clients.GrantRefreshToken}}
}

// deviceAuthorize calls POST /oauth2/device/authorize as a public client or,
// with a secret, with basic authentication.
func deviceAuthorize(t *testing.T, base string, form url.Values, user, pass string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth2/device/authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := readBody(t, resp)
	var out map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("device authorization response is not JSON: %q", raw)
	}
	return resp, out
}

// mustDeviceCode starts a device authorization for a public client and
// returns the device code and the user code.
func mustDeviceCode(t *testing.T, srv *testServer, c storage.Client, scope string) (deviceCode, userCode string) {
	t.Helper()
	resp, m := deviceAuthorize(t, srv.URL, url.Values{"client_id": {c.ID}, "scope": {scope}}, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("device authorization: %d %s", resp.StatusCode, fmtErr(m))
	}
	return m["device_code"].(string), m["user_code"].(string)
}

// devicePoll is one poll of the token endpoint by a public client.
func devicePoll(t *testing.T, srv *testServer, c storage.Client, deviceCode string) (*http.Response, map[string]any) {
	t.Helper()
	return tokenRequest(t, srv.URL, url.Values{"grant_type": {clients.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {c.ID}}, "", "")
}

// deviceDecide is the person at the browser: sign in if needed, enter the
// code as typed, see the consent page, and decide.
func (b *browser) deviceDecide(typed, username, password, decision string) string {
	b.t.Helper()
	resp, body := b.get("/device")
	if resp.StatusCode == http.StatusSeeOther {
		login := mustParseURL(b.t, resp.Header.Get("Location"))
		resp, body = b.post("/login", url.Values{"username": {username}, "password": {password}, "return_to": {login.Query().Get("return_to")}})
		wantStatus(b.t, resp, body, http.StatusSeeOther)
		resp, body = b.get(resp.Header.Get("Location"))
	}
	wantStatus(b.t, resp, body, http.StatusOK)
	resp, body = b.post("/device", url.Values{"user_code": {typed}})
	wantStatus(b.t, resp, body, http.StatusOK)
	if !strings.Contains(body, "not to this browser") {
		b.t.Fatalf("the device consent page does not say the device gets access: %.2000s", body)
	}
	shown := regexp.MustCompile(`name="user_code" value="([^"]*)"`).FindStringSubmatch(body)
	if shown == nil {
		b.t.Fatalf("no decision form on the device consent page: %.2000s", body)
	}
	resp, body = b.post("/device", url.Values{"user_code": {shown[1]}, "decision": {decision}})
	wantStatus(b.t, resp, body, http.StatusOK)
	if !strings.Contains(body, "You can return to your device") {
		b.t.Fatalf("the decision page does not send the user back to the device: %.2000s", body)
	}
	return body
}

// TestDeviceFlow runs RFC 8628 with golang.org/x/oauth2's DeviceAuth and
// DeviceAccessToken while a person types the code in lower case without
// the dash and allows; the tokens then work.
func TestDeviceFlow(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, _ := srv.mustCreateClient(t, deviceReg("Books CLI"))
	conf := &oauth2.Config{
		ClientID: c.ID,
		Scopes:   []string{"openid", "books:read", "offline_access"},
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: srv.URL + "/oauth2/device/authorize",
			TokenURL:      srv.URL + "/oauth2/token",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(da.UserCode) {
		t.Errorf("user code %q is not WXYZ-BCDF form over the contract's alphabet", da.UserCode)
	}
	if da.VerificationURI != srv.URL+"/device" || da.VerificationURIComplete != srv.URL+"/device?user_code="+da.UserCode || da.Interval != 5 || time.Until(da.Expiry) <= 0 {
		t.Errorf("device authorization = %+v", da)
	}

	typed := strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))
	decided := make(chan struct{})
	go func() {
		defer close(decided)
		b := newBrowser(t, srv.URL)
		b.deviceDecide(typed, "alice", "correct horse battery", "allow")
	}()
	tok, err := conf.DeviceAccessToken(ctx, da)
	<-decided
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("token lacks the refresh or ID token: %+v", tok)
	}
	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	id, err := provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := id.Claims(&claims); err != nil || !slices.Equal(claims.AMR, []string{"pwd"}) {
		t.Errorf("device ID token amr %q (%v), want [pwd]", claims.AMR, err)
	}
	resp, body := api(t, http.MethodGet, srv.URL+"/api/books", tok.AccessToken, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("books with the device's token: %d %v", resp.StatusCode, body)
	}
	// The refresh token rotates like one from the code grant.
	next, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || next.AccessToken == "" || next.AccessToken == tok.AccessToken {
		t.Fatalf("refresh: %v %+v", err, next)
	}
	// The consent is remembered, so the device shows under connected apps.
	if g, err := srv.store.GetGrant(ctx, mustUserID(t, srv, "alice"), c.ID); err != nil || !strings.Contains(strings.Join(g.Scopes, " "), "books:read") {
		t.Errorf("grant after the device flow: %+v, %v", g, err)
	}
}

func mustUserID(t *testing.T, srv *testServer, name string) string {
	t.Helper()
	u, err := srv.store.GetUserByUsername(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// deviceEnigma signs device codes as the server does, so a test can find
// a code's row and make codes with rows of its own.
func deviceEnigma() *hmac.HMACStrategy {
	return &hmac.HMACStrategy{Config: &fosite.Config{GlobalSecret: derive([]byte(testSecret), "token-hmac"), HMACHasher: sha512.New512_256}}
}

// TestDeviceGrantErrors covers every error answer of the device_code grant
// and of the device authorization endpoint.
func TestDeviceGrantErrors(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	cli, _ := srv.mustCreateClient(t, deviceReg("CLI"))
	other, _ := srv.mustCreateClient(t, deviceReg("Other CLI"))
	web, webSecret := srv.mustCreateClient(t, createReg("Web app"))
	tv, tvSecret := srv.mustCreateClient(t, clients.Registration{Name: "TV", GrantTypes: []string{clients.GrantDeviceCode}})
	ctx := context.Background()
	enigma := deviceEnigma()

	t.Run("pending, then slow_down with a longer interval", func(t *testing.T) {
		code, _ := mustDeviceCode(t, srv, cli, "books:read")
		resp, m := devicePoll(t, srv, cli, code)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "authorization_pending" {
			t.Fatalf("first poll: %d %s", resp.StatusCode, fmtErr(m))
		}
		resp, m = devicePoll(t, srv, cli, code)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "slow_down" {
			t.Fatalf("second poll at once: %d %s", resp.StatusCode, fmtErr(m))
		}
		d, err := srv.store.GetDeviceCode(ctx, enigma.Signature(code))
		if err != nil || d.Interval != 10*time.Second {
			t.Fatalf("interval after slow_down = %v (%v), want 10s", d.Interval, err)
		}
		devicePoll(t, srv, cli, code)
		if d, _ := srv.store.GetDeviceCode(ctx, enigma.Signature(code)); d.Interval != 15*time.Second {
			t.Fatalf("interval after a second slow_down = %v, want 15s", d.Interval)
		}
	})
	t.Run("access_denied", func(t *testing.T) {
		code, user := mustDeviceCode(t, srv, cli, "books:read")
		newBrowser(t, srv.URL).deviceDecide(user, "alice", "correct horse battery", "deny")
		resp, m := devicePoll(t, srv, cli, code)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "access_denied" {
			t.Fatalf("poll after deny: %d %s", resp.StatusCode, fmtErr(m))
		}
	})
	t.Run("expired_token", func(t *testing.T) {
		code, sig, err := enigma.Generate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-time.Hour)
		if err := srv.store.CreateDeviceCode(ctx, storage.DeviceCode{Signature: sig, UserCodeHash: "expired", ClientID: cli.ID, Status: storage.DevicePending,
			Interval: 5 * time.Second, RequestedAt: past, ExpiresAt: past.Add(10 * time.Minute), Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		resp, m := devicePoll(t, srv, cli, code)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "expired_token" {
			t.Fatalf("poll of an expired code: %d %s", resp.StatusCode, fmtErr(m))
		}
	})
	t.Run("tokens once, then invalid_grant", func(t *testing.T) {
		code, user := mustDeviceCode(t, srv, cli, "books:read")
		newBrowser(t, srv.URL).deviceDecide(user, "alice", "correct horse battery", "allow")
		resp, m := devicePoll(t, srv, cli, code)
		if resp.StatusCode != http.StatusOK || m["access_token"] == nil || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("poll after allow: %d %v", resp.StatusCode, m)
		}
		if m["refresh_token"] != nil {
			t.Errorf("refresh token issued without offline_access: %v", m)
		}
		resp, m = devicePoll(t, srv, cli, code)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_grant" {
			t.Fatalf("second redemption: %d %s", resp.StatusCode, fmtErr(m))
		}
	})
	t.Run("another client's device code is invalid_grant", func(t *testing.T) {
		code, user := mustDeviceCode(t, srv, cli, "books:read")
		newBrowser(t, srv.URL).deviceDecide(user, "alice", "correct horse battery", "allow")
		resp, m := devicePoll(t, srv, other, code)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_grant" {
			t.Fatalf("other client's poll: %d %s", resp.StatusCode, fmtErr(m))
		}
		// The rightful client still gets its tokens.
		if resp, m := devicePoll(t, srv, cli, code); resp.StatusCode != http.StatusOK {
			t.Fatalf("own poll after the other client's: %d %s", resp.StatusCode, fmtErr(m))
		}
	})
	t.Run("unknown or forged device code is invalid_grant", func(t *testing.T) {
		for _, code := range []string{"nonsense", "AAAA.BBBB"} {
			resp, m := devicePoll(t, srv, cli, code)
			if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_grant" {
				t.Errorf("poll with %q: %d %s", code, resp.StatusCode, fmtErr(m))
			}
		}
		real, _, _ := enigma.Generate(ctx)
		if resp, m := devicePoll(t, srv, cli, real); resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_grant" {
			t.Errorf("poll with a well-signed unknown code: %d %s", resp.StatusCode, fmtErr(m))
		}
		if resp, m := devicePoll(t, srv, cli, ""); resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_request" {
			t.Errorf("poll without device_code: %d %s", resp.StatusCode, fmtErr(m))
		}
	})
	t.Run("a client without the grant type is unauthorized_client", func(t *testing.T) {
		resp, m := deviceAuthorize(t, srv.URL, url.Values{"scope": {"books:read"}}, web.ID, webSecret)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "unauthorized_client" {
			t.Errorf("device authorization by a web client: %d %s", resp.StatusCode, fmtErr(m))
		}
		code, _ := mustDeviceCode(t, srv, cli, "")
		resp, m = tokenRequest(t, srv.URL, url.Values{"grant_type": {clients.GrantDeviceCode}, "device_code": {code}}, web.ID, webSecret)
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "unauthorized_client" {
			t.Errorf("device grant by a web client: %d %s", resp.StatusCode, fmtErr(m))
		}
	})
	t.Run("confidential clients authenticate", func(t *testing.T) {
		resp, m := deviceAuthorize(t, srv.URL, url.Values{"scope": {"books:read"}}, tv.ID, tvSecret)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("confidential device client: %d %s", resp.StatusCode, fmtErr(m))
		}
		resp, m = deviceAuthorize(t, srv.URL, url.Values{"scope": {"books:read"}}, tv.ID, "wrong")
		if resp.StatusCode != http.StatusUnauthorized || errorCode(m) != "invalid_client" || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("wrong secret: %d %s %q", resp.StatusCode, fmtErr(m), resp.Header.Get("WWW-Authenticate"))
		}
		resp, m = deviceAuthorize(t, srv.URL, url.Values{"client_id": {tv.ID}, "scope": {"books:read"}}, "", "")
		if resp.StatusCode != http.StatusUnauthorized || errorCode(m) != "invalid_client" {
			t.Errorf("confidential client without its secret: %d %s", resp.StatusCode, fmtErr(m))
		}
		resp, m = deviceAuthorize(t, srv.URL, url.Values{"scope": {"books:read"}}, "", "")
		if resp.StatusCode != http.StatusUnauthorized || errorCode(m) != "invalid_client" {
			t.Errorf("no client at all: %d %s", resp.StatusCode, fmtErr(m))
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		resp, m := deviceAuthorize(t, srv.URL, url.Values{"client_id": {cli.ID}, "scope": {"books:admin"}}, "", "")
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_scope" {
			t.Errorf("unknown scope: %d %s", resp.StatusCode, fmtErr(m))
		}
		resp, m = deviceAuthorize(t, srv.URL, url.Values{"client_id": {cli.ID, cli.ID}}, "", "")
		if resp.StatusCode != http.StatusBadRequest || errorCode(m) != "invalid_request" {
			t.Errorf("repeated client_id: %d %s", resp.StatusCode, fmtErr(m))
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/device/authorize", strings.NewReader(`{"client_id":"`+cli.ID+`"}`))
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.Unmarshal([]byte(readBody(t, r)), &out)
		if r.StatusCode != http.StatusBadRequest || errorCode(out) != "invalid_request" {
			t.Errorf("JSON body: %d %v", r.StatusCode, out)
		}
	})
}

// TestDeviceCodeRace redeems one approved device code from 20 goroutines:
// exactly one gets tokens, the others invalid_grant.
func TestDeviceCodeRace(t *testing.T) { deviceRaceOn(t, newTestServer(t)) }

func deviceRaceOn(t *testing.T, srv *testServer) {
	srv.mustCreateUser(t, "alice", "correct horse battery")
	cli, _ := srv.mustCreateClient(t, deviceReg("CLI"))
	code, user := mustDeviceCode(t, srv, cli, "books:read offline_access")
	newBrowser(t, srv.URL).deviceDecide(user, "alice", "correct horse battery", "allow")

	const n = 20
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[string]int{}
	)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, m := devicePoll(t, srv, cli, code)
			key := errorCode(m)
			if resp.StatusCode == http.StatusOK {
				key = "ok"
			}
			mu.Lock()
			statuses[key]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if statuses["ok"] != 1 || statuses["invalid_grant"] != n-1 {
		t.Fatalf("outcomes of %d racing redemptions: %v, want 1 ok and %d invalid_grant", n, statuses, n-1)
	}
}

// TestDeviceCodeGuessing throttles wrong user codes per address: 10 wrong
// codes, then 429 with Retry-After, even for a right code.
func TestDeviceCodeGuessing(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "mallory", "correct horse battery")
	cli, _ := srv.mustCreateClient(t, deviceReg("CLI"))
	_, user := mustDeviceCode(t, srv, cli, "")
	b := newBrowser(t, srv.URL)
	resp, body := b.post("/login", url.Values{"username": {"mallory"}, "password": {"correct horse battery"}, "return_to": {"/device"}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	wrong := "BBBB-BBBB"
	if user == wrong {
		wrong = "CCCC-CCCC"
	}
	for i, typed := range []string{wrong, "not a code", "", "BBBBBBBBB", "ÄÄÄÄ-ÄÄÄÄ", wrong, wrong, wrong, wrong, wrong} {
		resp, body := b.post("/device", url.Values{"user_code": {typed}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "That code is not valid") {
			t.Fatalf("wrong code %d (%q): %d %.300s", i+1, typed, resp.StatusCode, body)
		}
	}
	resp, body = b.post("/device", url.Values{"user_code": {user}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("11th attempt: %d, Retry-After %q; %.300s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// TestDevicePages covers the page answers that are not the happy path: a
// person not signed in is sent to sign in and back with the code; a used
// code gets a clear page.
func TestDevicePages(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	cli, _ := srv.mustCreateClient(t, deviceReg("CLI"))
	_, user := mustDeviceCode(t, srv, cli, "books:read")
	b := newBrowser(t, srv.URL)
	resp, body := b.get("/device?user_code=" + url.QueryEscape(user))
	wantStatus(t, resp, body, http.StatusSeeOther)
	login := mustParseURL(t, resp.Header.Get("Location"))
	if rt := login.Query().Get("return_to"); rt != "/device?user_code="+url.QueryEscape(user) {
		t.Fatalf("return_to = %q", rt)
	}
	resp, body = b.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse battery"}, "return_to": {login.Query().Get("return_to")}})
	wantStatus(t, resp, body, http.StatusSeeOther)
	resp, body = b.get(resp.Header.Get("Location"))
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, `value="`+user+`"`) {
		t.Errorf("the code from the link is not filled in: %.1000s", body)
	}
	b.deviceDecide(user, "alice", "correct horse battery", "allow")
	resp, body = b.post("/device", url.Values{"user_code": {user}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "already been used") {
		t.Errorf("used code: %d %.500s", resp.StatusCode, body)
	}
	resp, body = b.post("/device", url.Values{"user_code": {user}, "decision": {"allow"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("deciding a used code again: %d %.300s", resp.StatusCode, body)
	}
}

// TestOpenAPIDeviceAndLogout checks the device and sign-out answers
// against openapi.json.
func TestOpenAPIDeviceAndLogout(t *testing.T) {
	srv := newTestServer(t)
	x := &docCheck{t: t, s: loadAPIDoc(t), base: srv.URL}
	srv.mustCreateUser(t, "alice", "correct horse battery")
	cli, _ := srv.mustCreateClient(t, deviceReg("CLI"))
	web, webSecret := srv.mustCreateClient(t, createReg("Web"))
	da := jsonObj(x.check("POST", "/oauth2/device/authorize", "/oauth2/device/authorize", nil, formReq(url.Values{"client_id": {cli.ID}, "scope": {"books:read"}}), 200))
	x.check("POST", "/oauth2/device/authorize", "/oauth2/device/authorize", nil, formReq(url.Values{"client_id": {cli.ID}, "scope": {"nope"}}), 400)
	basic := http.Header{}
	basic.Set("Authorization", "Basic "+encodeBasic(web.ID, "wrong"+webSecret))
	x.check("POST", "/oauth2/device/authorize", "/oauth2/device/authorize", basic, formReq(url.Values{"scope": {"books:read"}}), 401)
	poll := formReq(url.Values{"grant_type": {clients.GrantDeviceCode}, "device_code": {da["device_code"].(string)}, "client_id": {cli.ID}})
	x.check("POST", "/oauth2/token", "/oauth2/token", nil, poll, 400)
	newBrowser(t, srv.URL).deviceDecide(da["user_code"].(string), "alice", "correct horse battery", "allow")
	x.check("POST", "/oauth2/token", "/oauth2/token", nil, formReq(url.Values{"grant_type": {clients.GrantDeviceCode}, "device_code": {da["device_code"].(string)}, "client_id": {cli.ID}}), 200)
	x.check("GET", "/oauth2/logout", "/oauth2/logout", nil, nil, 200)
	x.check("GET", "/oauth2/logout?post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F", "/oauth2/logout", nil, nil, 400)
}
