package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"gatehouse/clients"
	"gatehouse/storage"
)

// pkce is one PKCE verifier and its S256 challenge.
type pkce struct{ verifier, challenge string }

func newPKCE(t *testing.T) pkce {
	v := newState(t) + newState(t) + newState(t) + newState(t)
	sum := sha256.Sum256([]byte(v))
	return pkce{v, base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authorizeCode runs the authorization request q (response_type, PKCE and
// state are added) through b and returns the redirect back.
func authorizeCode(t *testing.T, srv *testServer, b *browser, q url.Values, p pkce, user, pass string) *url.URL {
	t.Helper()
	q.Set("response_type", "code")
	q.Set("code_challenge", p.challenge)
	q.Set("code_challenge_method", "S256")
	q.Set("state", newState(t))
	return b.signInAndAuthorize(srv.URL+"/oauth2/authorize?"+q.Encode(), user, pass, "allow")
}

func audience(m map[string]any) []string {
	var out []string
	for _, a := range m["aud"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

// mcpPost sends one JSON-RPC message to /mcp with a bearer token.
func mcpPost(t *testing.T, base, token string, msg string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", bytes.NewReader([]byte(msg)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	return resp
}

const mcpInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func TestResourceIndicators(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "alice-password")
	c, secret := srv.mustCreateClient(t, createReg("Resource App"))
	books, mcpURI := srv.URL+"/api/books", srv.URL+"/mcp"
	b := newBrowser(t, srv.URL)

	exchange := func(t *testing.T, resources []string, tokenResources []string) (access, refresh string) {
		t.Helper()
		p := newPKCE(t)
		q := url.Values{"client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {"books:read books:write offline_access"}, "resource": resources}
		back := authorizeCode(t, srv, b, q, p, "alice", "alice-password")
		code := back.Query().Get("code")
		if code == "" {
			t.Fatalf("no code: %s", back)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {p.verifier}, "resource": tokenResources}
		resp, out := tokenRequest(t, srv.URL, form, c.ID, secret)
		wantStatus(t, resp, fmtErr(out), http.StatusOK)
		return out["access_token"].(string), out["refresh_token"].(string)
	}

	t.Run("books audience", func(t *testing.T) {
		access, _ := exchange(t, []string{books}, nil)
		if got := audience(introspect(t, srv.URL, access, c.ID, secret)); !slices.Equal(got, []string{books}) {
			t.Errorf("aud = %v, want [%s]", got, books)
		}
		if resp, _ := api(t, http.MethodGet, books, access, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("books API: %d", resp.StatusCode)
		}
		resp := mcpPost(t, srv.URL, access, mcpInitialize)
		ch := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, `resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`) {
			t.Errorf("/mcp with a books token: %d %q", resp.StatusCode, ch)
		}
	})

	t.Run("no resource", func(t *testing.T) {
		access, _ := exchange(t, nil, nil)
		if _, ok := introspect(t, srv.URL, access, c.ID, secret)["aud"]; ok {
			t.Error("a token issued without resource has an aud")
		}
		if resp, _ := api(t, http.MethodGet, books, access, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("books API refuses a first-wave token: %d", resp.StatusCode)
		}
		if resp := mcpPost(t, srv.URL, access, mcpInitialize); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/mcp takes a token with no audience: %d", resp.StatusCode)
		}
	})

	t.Run("narrowed at the token endpoint, widened never", func(t *testing.T) {
		access, refresh := exchange(t, []string{books, mcpURI}, []string{mcpURI})
		if got := audience(introspect(t, srv.URL, access, c.ID, secret)); !slices.Equal(got, []string{mcpURI}) {
			t.Errorf("aud = %v, want [%s]", got, mcpURI)
		}
		if resp, out := api(t, http.MethodGet, books, access, nil); resp.StatusCode != http.StatusUnauthorized || errorCode(out) != "invalid_token" {
			t.Errorf("books API with an MCP token: %d %v", resp.StatusCode, out)
		}
		if resp := mcpPost(t, srv.URL, access, mcpInitialize); resp.StatusCode != http.StatusOK {
			t.Errorf("/mcp with its own token: %d", resp.StatusCode)
		}
		// The refresh token keeps the whole authorization, so it can get
		// a token for the other resource.
		resp, out := tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "resource": {books}}, c.ID, secret)
		wantStatus(t, resp, fmtErr(out), http.StatusOK)
		if got := audience(introspect(t, srv.URL, out["access_token"].(string), c.ID, secret)); !slices.Equal(got, []string{books}) {
			t.Errorf("refreshed aud = %v, want [%s]", got, books)
		}
		if r, _ := api(t, http.MethodGet, books, out["access_token"].(string), nil); r.StatusCode != http.StatusOK {
			t.Errorf("books API with the refreshed books token: %d", r.StatusCode)
		}

		_, refresh = exchange(t, []string{books}, nil)
		resp, out = tokenRequest(t, srv.URL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "resource": {mcpURI}}, c.ID, secret)
		if resp.StatusCode != http.StatusBadRequest || errorCode(out) != "invalid_target" {
			t.Errorf("refresh widening to /mcp: %d %v, want 400 invalid_target", resp.StatusCode, out)
		}
	})

	t.Run("invalid_target", func(t *testing.T) {
		for _, bad := range []string{"https://elsewhere.example/api", srv.URL + "/api/books/", srv.URL, srv.URL + "/mcp#x"} {
			p := newPKCE(t)
			q := url.Values{"client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {"books:read"}, "resource": {mcpURI, bad}}
			back := authorizeCode(t, srv, b, q, p, "alice", "alice-password")
			if back.Query().Get("error") != "invalid_target" || !strings.HasPrefix(back.String(), c.RedirectURIs[0]) {
				t.Errorf("authorize with resource %q: %s, want a redirect with error=invalid_target", bad, back)
			}
		}
		p := newPKCE(t)
		q := url.Values{"client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {"books:read"}, "resource": {books}}
		code := authorizeCode(t, srv, b, q, p, "alice", "alice-password").Query().Get("code")
		resp, out := tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {p.verifier}, "resource": {"https://elsewhere.example/"}}, c.ID, secret)
		if resp.StatusCode != http.StatusBadRequest || errorCode(out) != "invalid_target" {
			t.Errorf("token with a foreign resource: %d %v", resp.StatusCode, out)
		}
		machine, machineSecret := srv.mustCreateClient(t, clients.Registration{Name: "Machine", GrantTypes: []string{clients.GrantClientCredentials}})
		resp, out = tokenRequest(t, srv.URL, url.Values{"grant_type": {"client_credentials"}, "resource": {"https://elsewhere.example/"}}, machine.ID, machineSecret)
		if resp.StatusCode != http.StatusBadRequest || errorCode(out) != "invalid_target" {
			t.Errorf("client_credentials with a foreign resource: %d %v", resp.StatusCode, out)
		}
		// A client acting for itself gets a token for /mcp, which needs a
		// person behind it.
		resp, out = tokenRequest(t, srv.URL, url.Values{"grant_type": {"client_credentials"}, "resource": {mcpURI}}, machine.ID, machineSecret)
		wantStatus(t, resp, fmtErr(out), http.StatusOK)
		if got := audience(introspect(t, srv.URL, out["access_token"].(string), machine.ID, machineSecret)); !slices.Equal(got, []string{mcpURI}) {
			t.Errorf("client_credentials aud = %v", got)
		}
		r := mcpPost(t, srv.URL, out["access_token"].(string), mcpInitialize)
		if ch := r.Header.Get("WWW-Authenticate"); r.StatusCode != http.StatusForbidden || !strings.Contains(ch, `error="insufficient_scope", scope="books:read books:write"`) {
			t.Errorf("/mcp with a client's own token: %d %q", r.StatusCode, ch)
		}
	})

	t.Run("insufficient scope per tool", func(t *testing.T) {
		p := newPKCE(t)
		q := url.Values{"client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {"books:read"}, "resource": {mcpURI}}
		code := authorizeCode(t, srv, b, q, p, "alice", "alice-password").Query().Get("code")
		resp, out := tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {p.verifier}}, c.ID, secret)
		wantStatus(t, resp, fmtErr(out), http.StatusOK)
		access := out["access_token"].(string)
		r := mcpPost(t, srv.URL, access, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add_book","arguments":{"title":"x"}}}`)
		ch := r.Header.Get("WWW-Authenticate")
		if r.StatusCode != http.StatusForbidden || !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="books:write"`) ||
			!strings.Contains(ch, `resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`) {
			t.Errorf("add_book with books:read: %d %q", r.StatusCode, ch)
		}
		if r := mcpPost(t, srv.URL, access, mcpInitialize); r.StatusCode != http.StatusOK {
			t.Errorf("initialize with books:read: %d", r.StatusCode)
		}
		r = mcpPost(t, srv.URL, "", mcpInitialize)
		if r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != `Bearer realm="gatehouse", resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"` {
			t.Errorf("/mcp without a token: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	})
}

func TestProtectedResourceMetadata(t *testing.T) {
	srv := newTestServer(t)
	for path, resource := range map[string]string{
		"/.well-known/oauth-protected-resource/api/books": srv.URL + "/api/books",
		"/.well-known/oauth-protected-resource/mcp":       srv.URL + "/mcp",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Resource               string   `json:"resource"`
			AuthorizationServers   []string `json:"authorization_servers"`
			ScopesSupported        []string `json:"scopes_supported"`
			BearerMethodsSupported []string `json:"bearer_methods_supported"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %q %v", path, resp.StatusCode, resp.Header.Get("Content-Type"), err)
		}
		resp.Body.Close()
		if doc.Resource != resource || !slices.Equal(doc.AuthorizationServers, []string{srv.URL}) ||
			!slices.Equal(doc.ScopesSupported, []string{"books:read", "books:write"}) || !slices.Equal(doc.BearerMethodsSupported, []string{"header"}) {
			t.Errorf("%s: %+v", path, doc)
		}
	}
	resp, err := http.Get(srv.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["client_id_metadata_document_supported"] != true || !slices.Contains(md["code_challenge_methods_supported"].([]any), any("S256")) {
		t.Errorf("discovery: cimd %v, PKCE %v", md["client_id_metadata_document_supported"], md["code_challenge_methods_supported"])
	}
	off := newTestServer(t, "--client-metadata-documents", "off")
	resp, _ = http.Get(off.URL + "/.well-known/oauth-authorization-server")
	md = nil
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if _, ok := md["client_id_metadata_document_supported"]; ok {
		t.Error("discovery claims metadata documents with them off")
	}
}

// mcpToken gets an access token for /mcp as user, with scope.
func mcpToken(t *testing.T, srv *testServer, c storage.Client, secret, user, pass, scope string) string {
	t.Helper()
	p := newPKCE(t)
	q := url.Values{"client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {scope}, "resource": {srv.URL + "/mcp"}}
	code := authorizeCode(t, srv, newBrowser(t, srv.URL), q, p, user, pass).Query().Get("code")
	resp, out := tokenRequest(t, srv.URL, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {p.verifier}}, c.ID, secret)
	wantStatus(t, resp, fmtErr(out), http.StatusOK)
	return out["access_token"].(string)
}

func staticMCPSession(t *testing.T, srv *testServer, token string) *sdk.ClientSession {
	t.Helper()
	hc := oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
	s, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMCPIsolation: each user's tools see only their own books, and a
// session belongs to the user who opened it.
func TestMCPIsolation(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "alice-password")
	srv.mustCreateUser(t, "bob", "bob-password")
	c, secret := srv.mustCreateClient(t, createReg("Isolation App"))
	alice := staticMCPSession(t, srv, mcpToken(t, srv, c, secret, "alice", "alice-password", "books:read books:write"))
	bobToken := mcpToken(t, srv, c, secret, "bob", "bob-password", "books:read books:write")
	bob := staticMCPSession(t, srv, bobToken)

	var book mcpBook
	callTool(t, alice, "add_book", map[string]any{"title": "Alice's"}, &book)
	for _, name := range []string{"get_book", "delete_book"} {
		if res := callTool(t, bob, name, map[string]any{"id": book.ID}, nil); !res.IsError || !strings.Contains(toolText(res), "no book") {
			t.Errorf("bob's %s of alice's book: %v %s", name, res.IsError, toolText(res))
		}
	}
	if res := callTool(t, bob, "update_book", map[string]any{"id": book.ID, "title": "Bob's now"}, nil); !res.IsError {
		t.Error("bob updated alice's book")
	}
	var page struct{ Books []mcpBook }
	callTool(t, bob, "list_books", nil, &page)
	if len(page.Books) != 0 {
		t.Errorf("bob lists %v", page.Books)
	}
	var got mcpBook
	callTool(t, alice, "get_book", map[string]any{"id": book.ID}, &got)
	if got.Title != "Alice's" {
		t.Errorf("alice's book is now %+v", got)
	}

	// Bob's token with alice's session id does not reach her session.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+bobToken)
	req.Header.Set("Mcp-Session-Id", alice.ID())
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob in alice's session: %d %s", resp.StatusCode, body)
	}
}

// TestMCPDynamicRegistration: an MCP client registering the way today's
// ones do (application_type, software_id, a portless loopback redirect)
// gets a client, and its redirect takes the port it listens on.
func TestMCPDynamicRegistration(t *testing.T) {
	srv := newTestServer(t, "--dynamic-registration")
	body := `{"client_name":"Agent","redirect_uris":["http://127.0.0.1/callback"],"application_type":"native","software_id":"agent-cli","software_version":"2.1",` +
		`"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"]}`
	resp, err := http.Post(srv.URL+"/oauth2/register", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || reg["client_id"] == nil || reg["client_secret"] != nil {
		t.Fatalf("register: %d %v", resp.StatusCode, reg)
	}
	p := newPKCE(t)
	q := url.Values{"client_id": {reg["client_id"].(string)}, "redirect_uri": {"http://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/callback"}, "response_type": {"code"},
		"scope": {"books:read"}, "resource": {srv.URL + "/mcp"}, "state": {newState(t)}, "code_challenge": {p.challenge}, "code_challenge_method": {"S256"}}
	r, _ := newBrowser(t, srv.URL).get("/oauth2/authorize?" + q.Encode())
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("authorize on another port: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
}

// TestMCPBadRequests: malformed transport requests get 4xx answers, never
// a 500.
func TestMCPBadRequests(t *testing.T) {
	srv := newTestServer(t)
	srv.mustCreateUser(t, "alice", "alice-password")
	c, secret := srv.mustCreateClient(t, createReg("Bad Requests"))
	token := mcpToken(t, srv, c, secret, "alice", "alice-password", "books:read books:write")
	for _, tc := range []struct {
		name, method, body, contentType, session string
	}{
		{"not JSON", http.MethodPost, `{"jsonrpc":`, "application/json", ""},
		{"not JSON-RPC", http.MethodPost, `[1,2,3]`, "application/json", ""},
		{"wrong content type", http.MethodPost, mcpInitialize, "text/plain", ""},
		{"too large", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":"` + strings.Repeat("x", 2<<20) + `"}}`, "application/json", ""},
		{"unknown session", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "application/json", "no-such-session"},
		{"call before initialize", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_books"}}`, "application/json", ""},
		{"GET without a session", http.MethodGet, "", "", ""},
		{"DELETE without a session", http.MethodDelete, "", "", ""},
		{"DELETE unknown session", http.MethodDelete, "", "", "no-such-session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+"/mcp", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.session != "" {
				req.Header.Set("Mcp-Session-Id", tc.session)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readBody(t, resp)
			if resp.StatusCode >= 500 || resp.StatusCode < 400 && !strings.Contains(body, `"error"`) {
				t.Errorf("%d %.300s", resp.StatusCode, body)
			}
		})
	}
	if strings.Contains(srv.logs.String(), token) {
		t.Error("the access token reached the log")
	}
}

// TestMCPTransportGuards: /mcp takes its token only from the header (the
// MCP spec forbids query tokens, even where the operator allows them for
// the books API), and browsers cannot post to it from another origin.
func TestMCPTransportGuards(t *testing.T) {
	srv := newTestServer(t, "--allow-query-token")
	srv.mustCreateUser(t, "alice", "alice-password")
	c, secret := srv.mustCreateClient(t, createReg("Guards"))
	token := mcpToken(t, srv, c, secret, "alice", "alice-password", "books:read")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp?access_token="+url.QueryEscape(token), strings.NewReader(mcpInitialize))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Errorf("query token at /mcp: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	r, err := http.Get(srv.URL + "/.well-known/oauth-protected-resource/api/books")
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, r); !strings.Contains(body, `"bearer_methods_supported":["header","query"]`) {
		t.Errorf("books metadata with --allow-query-token: %s", body)
	}

	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(mcpInitialize))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST /mcp: %d, want 403", resp.StatusCode)
	}
}
