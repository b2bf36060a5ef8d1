package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"gatehouse/oauth/dpoptest"
)

const redirectURI = "http://127.0.0.1:9000/callback"

// Scopes of the prepared tokens. API tokens carry no openid: a resource
// client refreshing its access needs no ID token. The flows of scenarios
// 3, 4 and 8 are sign-ins and ask for -flow-scope, by default with openid,
// so they pay for an ID token: RS256 in 3 and 4, ES256 in 8.
const (
	apiScope     = "offline_access books:read books:write"
	consentScope = "openid profile offline_access books:read books:write"
)

// client is a registered app as `server clients create` prints it.
type client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	IDToken string `json:"id_token"`
}

// gate talks to one running Gatehouse.
type gate struct {
	url  string
	http *http.Client
}

// do sends one request and reads the whole body, so the connection goes
// back to the pool.
func (g *gate) do(ctx context.Context, method, path string, form url.Values, header http.Header) (*http.Response, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func cookieHeader(c *http.Cookie) http.Header {
	return http.Header{"Cookie": {c.Name + "=" + c.Value}}
}

func basicAuth(c client) http.Header {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	return r.Header
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// session returns the session cookie a response set.
func session(resp *http.Response) (*http.Cookie, error) {
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_session" && c.Value != "" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%s %s: no session cookie", resp.Request.Method, resp.Request.URL.Path)
}

// signIn posts the login form and returns the session cookie.
func (g *gate) signIn(ctx context.Context, username, password string) (*http.Cookie, error) {
	resp, _, err := g.do(ctx, http.MethodPost, "/login", url.Values{"username": {username}, "password": {password}, "return_to": {"/"}}, nil)
	if err != nil {
		return nil, err
	}
	if err := expect(resp, http.StatusSeeOther); err != nil {
		return nil, err
	}
	return session(resp)
}

// signUp posts the registration form and returns the session cookie.
func (g *gate) signUp(ctx context.Context, username, password string) (*http.Cookie, error) {
	resp, _, err := g.do(ctx, http.MethodPost, "/register", url.Values{"username": {username}, "password": {password}, "return_to": {"/"}}, nil)
	if err != nil {
		return nil, err
	}
	if err := expect(resp, http.StatusSeeOther); err != nil {
		return nil, err
	}
	return session(resp)
}

// authorizeQuery is the query of an authorization request carrying the
// S256 challenge of a fresh PKCE verifier, and that verifier.
func authorizeQuery(c client, scope string, extra url.Values) (query, verifier string) {
	var b [32]byte
	rand.Read(b[:])
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(verifier))
	rand.Read(b[:16])
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {redirectURI},
		"scope":                 {scope},
		"state":                 {base64.RawURLEncoding.EncodeToString(b[:16])},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return q.Encode(), verifier
}

// codeFrom reads the code out of a redirect to the client.
func codeFrom(resp *http.Response) (string, error) {
	if err := expect(resp, http.StatusSeeOther); err != nil {
		return "", err
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	code := loc.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("redirect without a code: %s", loc.Query().Get("error_description"))
	}
	return code, nil
}

// exchange redeems a code at the token endpoint; with a DPoP key the
// tokens are bound to it.
func (g *gate) exchange(ctx context.Context, c client, code, verifier string, key *dpoptest.Key) (tokens, error) {
	header := basicAuth(c)
	if key != nil {
		header.Set("DPoP", key.Build(dpoptest.Proof{Method: http.MethodPost, URL: g.url + "/oauth2/token"}))
	}
	return g.tokenWith(ctx, header, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	})
}

func (g *gate) token(ctx context.Context, c client, form url.Values) (tokens, error) {
	return g.tokenWith(ctx, basicAuth(c), form)
}

func (g *gate) tokenWith(ctx context.Context, header http.Header, form url.Values) (tokens, error) {
	resp, body, err := g.do(ctx, http.MethodPost, "/oauth2/token", form, header)
	if err != nil {
		return tokens{}, err
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return tokens{}, fmt.Errorf("%w: %s", err, body)
	}
	var t tokens
	if err := json.Unmarshal(body, &t); err != nil {
		return tokens{}, err
	}
	if t.Access == "" {
		return tokens{}, errors.New("token response without access_token")
	}
	return t, nil
}

// returningFlow is a signed-in user whose consent is remembered: the
// authorize request answers with a code at once, which is exchanged (with
// a DPoP proof of key, when given).
func (g *gate) returningFlow(ctx context.Context, c client, cookie *http.Cookie, scope string, key *dpoptest.Key) (tokens, error) {
	q, verifier := authorizeQuery(c, scope, nil)
	resp, _, err := g.do(ctx, http.MethodGet, "/oauth2/authorize?"+q, nil, cookieHeader(cookie))
	if err != nil {
		return tokens{}, err
	}
	code, err := codeFrom(resp)
	if err != nil {
		return tokens{}, err
	}
	return g.exchange(ctx, c, code, verifier, key)
}

// consentFlow is what a user meets the first time: the consent page, the
// Allow button, then the app's code exchange. prompt=consent shows the
// page even when the user allowed the app before.
func (g *gate) consentFlow(ctx context.Context, c client, cookie *http.Cookie, scope string) (tokens, error) {
	q, verifier := authorizeQuery(c, scope, url.Values{"prompt": {"consent"}})
	resp, page, err := g.do(ctx, http.MethodGet, "/oauth2/authorize?"+q, nil, cookieHeader(cookie))
	if err != nil {
		return tokens{}, err
	}
	if err := expect(resp, http.StatusOK); err != nil {
		return tokens{}, err
	}
	if !strings.Contains(string(page), `name="decision"`) {
		return tokens{}, errors.New("the consent page has no decision form")
	}
	resp, _, err = g.do(ctx, http.MethodPost, "/oauth2/authorize?"+q, url.Values{"decision": {"allow"}}, cookieHeader(cookie))
	if err != nil {
		return tokens{}, err
	}
	code, err := codeFrom(resp)
	if err != nil {
		return tokens{}, err
	}
	return g.exchange(ctx, c, code, verifier, nil)
}

// checkIDToken checks that an ID token came and names alg in its header;
// verifying the signature is the relying party's cost, not the server's.
func checkIDToken(raw, alg string) error {
	if raw == "" {
		return errors.New("no ID token")
	}
	header, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return fmt.Errorf("ID token header: %w", err)
	}
	var h struct{ Alg string }
	if err := json.Unmarshal(b, &h); err != nil || h.Alg != alg {
		return fmt.Errorf("ID token header %s, want alg %s", b, alg)
	}
	return nil
}

// devicePoolRate is the most device-code polls per second scenario 10
// expects. RFC 8628 §3.5 answers a code polled again within its interval
// (5 s) with slow_down, so the scenario cycles through enough codes that
// each comes round at most every 6 s at this rate. It is set well above
// the average rate: one burst past it earns a slow_down, which lengthens
// that code's interval, and from then on every round answers slow_down.
// At 8,000 a server answering 6,000 polls a second on two cores met it.
const devicePoolRate = 16000

// devicePoolSize is how many codes a scenario of d needs: one per poll
// when d and its warm-up are short, else 6 s worth at devicePoolRate.
func devicePoolSize(d time.Duration) int {
	return int(devicePoolRate * min(d+min(d/5, time.Second), 6*time.Second).Seconds())
}

// deviceCodes requests n device codes for the public client c, conc at a
// time.
func (g *gate) deviceCodes(ctx context.Context, c client, n, conc int) ([]string, error) {
	codes := make([]string, n)
	var next atomic.Int64
	errs := make(chan error, conc)
	for range conc {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				resp, body, err := g.do(ctx, http.MethodPost, "/oauth2/device/authorize", url.Values{"client_id": {c.ID}, "scope": {"books:read"}}, nil)
				if err == nil {
					err = expect(resp, http.StatusOK)
				}
				var m struct {
					DeviceCode string `json:"device_code"`
				}
				if err == nil {
					if err = json.Unmarshal(body, &m); err == nil && m.DeviceCode == "" {
						err = fmt.Errorf("device authorization without a device_code: %s", body)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				codes[i] = m.DeviceCode
			}
		}()
	}
	var first error
	for range conc {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return codes, first
}
