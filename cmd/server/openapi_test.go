package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/clients"
)

// apiDocFile is the checked-in description; the server embeds the same file.
const apiDocFile = "../../web/openapi/openapi.json"

// docMethods are the operation keys of an OpenAPI path item.
var docMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type apiDoc map[string]any

func loadAPIDoc(t *testing.T) apiDoc {
	t.Helper()
	raw, err := os.ReadFile(apiDocFile)
	if err != nil {
		t.Fatal(err)
	}
	var s apiDoc
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("%s: %v", apiDocFile, err)
	}
	return s
}

func (s apiDoc) paths() map[string]any { return jsonObj(s["paths"]) }

// resolve follows a local $ref ("#/components/…") to what it names.
func (s apiDoc) resolve(v any) (map[string]any, error) {
	m := jsonObj(v)
	for range 10 {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var cur any = map[string]any(s)
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = jsonObj(cur)[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
		}
		if cur == nil || !strings.HasPrefix(ref, "#/") {
			return nil, fmt.Errorf("unresolvable $ref %q", ref)
		}
		m = jsonObj(cur)
	}
	return nil, fmt.Errorf("$ref chain too long")
}

func jsonObj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// operations lists "METHOD /path" for every described operation.
func (s apiDoc) operations() []string {
	var ops []string
	for path, item := range s.paths() {
		for _, m := range docMethods {
			if _, ok := jsonObj(item)[m]; ok {
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

// A muxRoute is a ServeMux pattern taken apart: method ("" for any), the
// path's segments with every wildcard written "{}", and whether it ends in
// a slash that matches a whole subtree.
type muxRoute struct {
	pattern string
	method  string
	segs    []string
	subtree bool
}

func parseMuxRoute(pattern string) muxRoute {
	r := muxRoute{pattern: pattern}
	path := pattern
	if m, p, ok := strings.Cut(pattern, " "); ok {
		r.method, path = m, p
	}
	path = strings.TrimSuffix(path, "{$}")
	if path != "/" && strings.HasSuffix(path, "/") {
		r.subtree = true
		path = strings.TrimSuffix(path, "/")
	}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if strings.HasPrefix(seg, "{") {
			seg = "{}"
		}
		if seg != "" {
			r.segs = append(r.segs, seg)
		}
	}
	return r
}

// describedBy reports whether an OpenAPI path template (whose parameters
// are written {} by parseMuxRoute too) covers the route's path: the same
// segments, or for a subtree route one more segment, a parameter.
func (r muxRoute) describedBy(template muxRoute) bool {
	want := r.segs
	if r.subtree {
		if len(template.segs) != len(r.segs)+1 {
			return false
		}
		return slices.Equal(template.segs[:len(r.segs)], want)
	}
	return slices.Equal(template.segs, want)
}

// sample is a concrete request path for the route, every wildcard filled
// in; extra segments go below a subtree route.
func (r muxRoute) sample(extra string) string {
	segs := slices.Clone(r.segs)
	for i, s := range segs {
		if s == "{}" {
			segs[i] = "x"
		}
	}
	p := "/" + strings.Join(segs, "/")
	if r.subtree {
		p = strings.TrimSuffix(p, "/") + "/" + extra
	}
	return p
}

// mountedPatterns reads every pattern handed to Handle or HandleFunc in the
// server's own packages: cmd/server and every package of this module it
// imports, directly or not. A pattern that is not a string literal fails
// the test, so the list cannot silently miss a route.
func mountedPatterns(t *testing.T) []string {
	t.Helper()
	root := "../.."
	modFile, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var module string
	for line := range strings.Lines(string(modFile)) {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			module = strings.TrimSpace(m)
		}
	}
	fset := token.NewFileSet()
	seen := map[string]bool{module + "/cmd/server": true}
	queue := []string{module + "/cmd/server"}
	var patterns []string
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		dir := filepath.Join(root, strings.TrimPrefix(pkg, module))
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("package %s: no Go files in %s", pkg, dir)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(p, module+"/") && !seen[p] {
					seen[p] = true
					queue = append(queue, p)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 2 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
					return true
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s: the route pattern is not a string literal, so this test cannot read it", fset.Position(call.Pos()))
					return true
				}
				p, _ := strconv.Unquote(lit.Value)
				patterns = append(patterns, p)
				return true
			})
		}
	}
	slices.Sort(patterns)
	return slices.Compact(patterns)
}

// servedRoute sends a request and returns the mux pattern that served it, as
// the request log records it ("unmatched" when the mux found none).
func servedRoute(t *testing.T, srv *testServer, method, path string) string {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("%s %s: no X-Request-Id", method, path)
	}
	// The log line is written as the handler returns, which can be just
	// after the client has read a response of known length.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		sc := bufio.NewScanner(strings.NewReader(srv.logs.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct {
				Msg       string `json:"msg"`
				RequestID string `json:"request_id"`
				Route     string `json:"route"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "request" && line.RequestID == id {
				return line.Route
			}
		}
	}
	t.Fatalf("%s %s: no request log line for id %s", method, path, id)
	return ""
}

// TestOpenAPIRoutes checks both directions between the mux and the
// document: every pattern the server's code mounts answers on a live
// server and is described, and every described operation reaches a
// handler mounted for that method (not the mux's 404 or 405, nor a
// catch-all that only answers errors).
func TestOpenAPIRoutes(t *testing.T) {
	srv := newTestServer(t, "--dynamic-registration")
	s := loadAPIDoc(t)
	patterns := mountedPatterns(t)
	if len(patterns) < 10 {
		t.Fatalf("found only %d mounted patterns: %q", len(patterns), patterns)
	}
	var templates []muxRoute
	for path := range s.paths() {
		templates = append(templates, parseMuxRoute(path))
	}

	for _, p := range patterns {
		r := parseMuxRoute(p)
		method := r.method
		if method == "" {
			// A catch-all pattern answers the methods no other pattern
			// takes; one nothing else mounts shows whether it is live.
			method = "PATCH"
		}
		live := false
		for _, extra := range []string{"x", "x/x", "x/x/x"} {
			if servedRoute(t, srv, method, r.sample(extra)) == p {
				live = true
				break
			}
		}
		if !live {
			t.Errorf("pattern %q is in the source but the running server does not route to it", p)
			continue
		}
		described := false
		for _, tpl := range templates {
			if !r.describedBy(tpl) {
				continue
			}
			if r.method == "" {
				// An error-only catch-all: its path must be documented,
				// not the methods it refuses.
				described = true
				break
			}
			if _, ok := jsonObj(s.paths()[tpl.pattern])[strings.ToLower(r.method)]; ok {
				described = true
				break
			}
		}
		if !described {
			t.Errorf("pattern %q is mounted but not described in openapi.json", p)
		}
	}

	for _, op := range s.operations() {
		method, path, _ := strings.Cut(op, " ")
		sample := parseMuxRoute(path).sample("")
		got := servedRoute(t, srv, method, sample)
		r := parseMuxRoute(got)
		switch {
		case got == "unmatched":
			t.Errorf("%s is described, but the server has no route for %s %s", op, method, sample)
		case r.method != method:
			t.Errorf("%s is described, but %s %s reaches %q, which does not take %s", op, method, sample, got, method)
		case !r.describedBy(parseMuxRoute(path)):
			t.Errorf("%s is described, but %s %s reaches %q, another route", op, method, sample, got)
		case !slices.Contains(patterns, got):
			t.Errorf("%s reaches %q, a pattern mountedPatterns did not find in the source", op, got)
		}
	}
}

// TestOpenAPIDocument checks the document on its own: it is what the
// server serves, every $ref resolves, schemas use only what
// validateSchema understands, and the OAuth security scheme agrees with
// discovery.
func TestOpenAPIDocument(t *testing.T) {
	srv := newTestServer(t)
	s := loadAPIDoc(t)
	if s["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", s["openapi"])
	}

	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served := readBody(t, resp)
	disk, _ := os.ReadFile(apiDocFile)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || served != string(disk) {
		t.Errorf("GET /openapi.json: %d %q, body equal to %s: %v", resp.StatusCode, resp.Header.Get("Content-Type"), apiDocFile, served == string(disk))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("GET /openapi.json: Cache-Control %q", cc)
	}

	ids := map[string]string{}
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["$ref"]; ok {
				if _, err := s.resolve(v); err != nil {
					t.Errorf("%s: %v", at, err)
				}
			}
			if id, ok := v["operationId"].(string); ok {
				if prev, dup := ids[id]; dup {
					t.Errorf("operationId %q at %s and %s", id, prev, at)
				}
				ids[id] = at
			}
			for k, child := range v {
				if k == "schema" {
					checkSchemaKeywords(t, at+"/schema", child)
				}
				walk(at+"/"+k, child)
			}
		case []any:
			for i, child := range v {
				walk(fmt.Sprintf("%s/%d", at, i), child)
			}
		}
	}
	walk("#", map[string]any(s))
	for name, schema := range jsonObj(jsonObj(s["components"])["schemas"]) {
		checkSchemaKeywords(t, "#/components/schemas/"+name, schema)
	}

	meta := discoveryDoc(t, srv.URL+"/.well-known/openid-configuration")
	flow := jsonObj(jsonObj(jsonObj(jsonObj(jsonObj(s["components"])["securitySchemes"])["oauth2"])["flows"])["authorizationCode"])
	base := mustParseURL(t, srv.URL)
	for key, want := range map[string]string{"authorizationUrl": "authorization_endpoint", "tokenUrl": "token_endpoint", "refreshUrl": "token_endpoint"} {
		rel, _ := flow[key].(string)
		if got := base.ResolveReference(mustParseURL(t, rel)).String(); got != meta[want] {
			t.Errorf("oauth2 %s %q resolves to %s; discovery says %s %v", key, rel, got, want, meta[want])
		}
	}
	var scopes []string
	for k := range jsonObj(flow["scopes"]) {
		scopes = append(scopes, k)
	}
	var supported []string
	for _, v := range meta["scopes_supported"].([]any) {
		supported = append(supported, v.(string))
	}
	slices.Sort(scopes)
	slices.Sort(supported)
	if !slices.Equal(scopes, supported) {
		t.Errorf("oauth2 scopes %q, discovery scopes_supported %q", scopes, supported)
	}
}

func discoveryDoc(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(readBody(t, resp)), &m); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return m
}

// TestOpenAPIResponses runs the flows a client goes through and checks
// each real answer against what the document says that operation returns
// for that status.
func TestOpenAPIResponses(t *testing.T) {
	srv := newTestServer(t, "--dynamic-registration")
	s := loadAPIDoc(t)
	srv.mustCreateUser(t, "alice", "correct horse battery")
	c, secret := srv.mustCreateClient(t, clients.Registration{
		RedirectURIs: []string{"http://127.0.0.1:9999/callback"},
		GrantTypes:   []string{"authorization_code", "refresh_token", "client_credentials"},
	})
	conf := srv.oauthConfig(c, secret, "openid", "profile", "offline_access", "books:read", "books:write")
	x := &docCheck{t: t, s: s, base: srv.URL}
	basic := func(user, pass string) http.Header {
		h := http.Header{}
		h.Set("Authorization", "Basic "+encodeBasic(user, pass))
		return h
	}
	bearer := func(tok string) http.Header {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+tok)
		return h
	}
	client := basic(c.ID, secret)

	x.check("GET", "/.well-known/openid-configuration", "/.well-known/openid-configuration", nil, nil, 200)
	x.check("GET", "/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server", nil, nil, 200)
	x.check("GET", "/.well-known/jwks.json", "/.well-known/jwks.json", nil, nil, 200)

	verifier := oauth2.GenerateVerifier()
	code := authorizedCode(t, srv, newBrowser(t, srv.URL), conf, verifier, "alice", "correct horse battery")
	tok := jsonObj(x.check("POST", "/oauth2/token", "/oauth2/token", client, formReq(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {verifier},
	}), 200))
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	if refresh == "" || tok["id_token"] == nil {
		t.Fatalf("token response lacks refresh or ID token: %v", tok)
	}
	x.check("POST", "/oauth2/token", "/oauth2/token", basic(c.ID, "wrong"), formReq(url.Values{"grant_type": {"client_credentials"}}), 401)
	x.check("POST", "/oauth2/token", "/oauth2/token", client, formReq(url.Values{"grant_type": {"client_credentials"}, "scope": {"books:read"}}), 400)
	machine := jsonObj(x.check("POST", "/oauth2/token", "/oauth2/token", client, formReq(url.Values{"grant_type": {"client_credentials"}}), 200))

	x.check("GET", "/userinfo", "/userinfo", bearer(access), nil, 200)
	x.check("POST", "/userinfo", "/userinfo", bearer(access), nil, 200)
	x.check("GET", "/userinfo", "/userinfo", nil, nil, 401)

	const books = "/api/books"
	dune := jsonObj(x.check("POST", books, books, bearer(access), jsonReq(`{"title":"Dune","author":"Frank Herbert","year":1965}`), 201))
	x.check("POST", books, books, bearer(access), jsonReq(`{"title":"Untitled draft","year":null}`), 201)
	id, _ := dune["id"].(string)
	one := books + "/" + id
	page := jsonObj(x.check("GET", books+"?limit=1", books, bearer(access), nil, 200))
	if page["next_cursor"] == nil {
		t.Fatalf("a one-book page of two has no next_cursor: %v", page)
	}
	x.check("GET", books+"?cursor="+url.QueryEscape(page["next_cursor"].(string)), books, bearer(access), nil, 200)
	x.check("GET", books+"?limit=0", books, bearer(access), nil, 400)
	x.check("GET", one, "/api/books/{id}", bearer(access), nil, 200)
	x.check("PUT", one, "/api/books/{id}", bearer(access), jsonReq(`{"title":"Dune Messiah","author":"Frank Herbert","year":1969}`), 200)
	x.check("PUT", one, "/api/books/{id}", bearer(access), jsonReq(`{"title":""}`), 400)
	x.check("POST", books, books, bearer(access), &reqBody{"text/plain", "Dune"}, 415)
	x.check("POST", books, books, bearer(access), jsonReq(`{"title":"`+strings.Repeat("a", 1<<20)+`"}`), 413)
	x.check("DELETE", one, "/api/books/{id}", bearer(access), nil, 204)
	x.check("GET", one, "/api/books/{id}", bearer(access), nil, 404)
	x.check("GET", books, books, nil, nil, 401)
	x.check("GET", books, books, bearer("not-a-token"), nil, 401)
	x.check("GET", books, books, bearer(machine["access_token"].(string)), nil, 403)

	x.check("POST", "/oauth2/introspect", "/oauth2/introspect", client, formReq(url.Values{"token": {access}}), 200)
	x.check("POST", "/oauth2/introspect", "/oauth2/introspect", client, formReq(url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}}), 200)
	x.check("POST", "/oauth2/introspect", "/oauth2/introspect", basic(c.ID, "wrong"), formReq(url.Values{"token": {access}}), 401)
	fresh := jsonObj(x.check("POST", "/oauth2/token", "/oauth2/token", client, formReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}), 200))
	x.check("POST", "/oauth2/revoke", "/oauth2/revoke", client, formReq(url.Values{"token": {fresh["refresh_token"].(string)}}), 200)
	x.check("POST", "/oauth2/revoke", "/oauth2/revoke", client, formReq(url.Values{}), 400)
	gone := jsonObj(x.check("POST", "/oauth2/introspect", "/oauth2/introspect", client, formReq(url.Values{"token": {fresh["access_token"].(string)}}), 200))
	if gone["active"] != false || len(gone) != 1 {
		t.Errorf("introspection of a revoked token: %v, want only active false", gone)
	}

	x.check("POST", "/oauth2/register", "/oauth2/register", nil, jsonReq(`{"redirect_uris":["https://app.example/cb"],"client_name":"Registered"}`), 201)
	x.check("POST", "/oauth2/register", "/oauth2/register", nil, jsonReq(`{"redirect_uris":["http://app.example/cb"]}`), 400)

	// Last, because a replayed code revokes what was issued from it.
	x.check("POST", "/oauth2/token", "/oauth2/token", client, formReq(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {verifier},
	}), 400)
}

func encodeBasic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

type reqBody struct {
	contentType string
	data        string
}

func formReq(v url.Values) *reqBody { return &reqBody{"application/x-www-form-urlencoded", v.Encode()} }
func jsonReq(s string) *reqBody     { return &reqBody{"application/json", s} }

// docCheck sends requests and checks each answer against the document.
type docCheck struct {
	t    *testing.T
	s    apiDoc
	base string
}

// check sends the request, requires status want, and validates the answer
// against the response the document gives operation "method specPath" for
// that status. It returns the decoded JSON body, if any.
func (x *docCheck) check(method, target, specPath string, header http.Header, b *reqBody, want int) any {
	t := x.t
	t.Helper()
	var rd io.Reader
	if b != nil {
		rd = strings.NewReader(b.data)
	}
	req, err := http.NewRequest(method, x.base+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if b != nil {
		req.Header.Set("Content-Type", b.contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	raw := readBody(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %.300s", method, target, resp.StatusCode, want, raw)
	}
	op := jsonObj(jsonObj(x.s.paths()[specPath])[strings.ToLower(method)])
	if op == nil {
		t.Fatalf("openapi.json does not describe %s %s", method, specPath)
	}
	described, err := x.s.resolve(jsonObj(op["responses"])[strconv.Itoa(want)])
	if err != nil || described == nil {
		t.Fatalf("openapi.json: %s %s has no %d response (%v)", method, specPath, want, err)
	}
	content := jsonObj(described["content"])
	if len(content) == 0 {
		if raw != "" {
			t.Errorf("%s %s %d: described without a body, got %.300q", method, target, want, raw)
		}
		return nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	media, ok := content[mt]
	if !ok {
		t.Fatalf("%s %s %d: Content-Type %q is not among those described", method, target, want, resp.Header.Get("Content-Type"))
	}
	if mt != "application/json" {
		return nil
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %.300q", method, target, raw)
	}
	for _, problem := range validateSchema(x.s, jsonObj(media)["schema"], v, "body") {
		t.Errorf("%s %s %d: %s", method, target, want, problem)
	}
	return v
}

// The JSON Schema keywords validateSchema enforces, and those it may
// ignore because they only annotate. checkSchemaKeywords refuses anything
// else, so the document cannot rely on a rule the test would not check.
var (
	schemaRules       = []string{"$ref", "type", "enum", "const", "required", "properties", "additionalProperties", "items", "minLength", "maxLength", "minimum", "maximum", "format"}
	schemaAnnotations = []string{"description", "title", "examples", "default", "deprecated"}
)

func checkSchemaKeywords(t *testing.T, at string, v any) {
	t.Helper()
	m := jsonObj(v)
	for k, child := range m {
		if !slices.Contains(schemaRules, k) && !slices.Contains(schemaAnnotations, k) {
			t.Errorf("%s: schema keyword %q is not checked by validateSchema", at, k)
		}
		switch k {
		case "properties":
			for name, p := range jsonObj(child) {
				checkSchemaKeywords(t, at+"/properties/"+name, p)
			}
		case "items", "additionalProperties":
			if _, isBool := child.(bool); !isBool {
				checkSchemaKeywords(t, at+"/"+k, child)
			}
		case "format":
			if child != "date-time" {
				t.Errorf("%s: format %v is not checked by validateSchema", at, child)
			}
		}
	}
}

// validateSchema checks v, decoded with UseNumber, against the JSON Schema
// subset in schemaRules and returns what does not conform.
func validateSchema(s apiDoc, schemaValue any, v any, at string) []string {
	schema, err := s.resolve(schemaValue)
	if err != nil {
		return []string{at + ": " + err.Error()}
	}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, at+": "+fmt.Sprintf(format, args...)) }

	if types, ok := schema["type"]; ok {
		var allowed []string
		switch ts := types.(type) {
		case string:
			allowed = []string{ts}
		case []any:
			for _, t := range ts {
				allowed = append(allowed, t.(string))
			}
		}
		if got := jsonTypeOf(v); !slices.Contains(allowed, got) && !(got == "integer" && slices.Contains(allowed, "number")) {
			fail("type %s, want %s", got, strings.Join(allowed, " or "))
			return problems
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return sameJSON(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if c, ok := schema["const"]; ok && !sameJSON(c, v) {
		fail("%v, want %v", v, c)
	}
	switch v := v.(type) {
	case string:
		n := int64(len([]rune(v)))
		if lim, ok := schemaInt(schema, "minLength"); ok && n < lim {
			fail("%d characters, fewer than %d", n, lim)
		}
		if lim, ok := schemaInt(schema, "maxLength"); ok && n > lim {
			fail("%d characters, more than %d", n, lim)
		}
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				fail("%q is not an RFC 3339 date-time", v)
			}
		}
	case json.Number:
		f, _ := v.Float64()
		if lim, ok := schema["minimum"].(json.Number); ok {
			if l, _ := lim.Float64(); f < l {
				fail("%v is below %v", v, lim)
			}
		}
		if lim, ok := schema["maximum"].(json.Number); ok {
			if l, _ := lim.Float64(); f > l {
				fail("%v is above %v", v, lim)
			}
		}
	case map[string]any:
		for _, r := range jsonArray(schema["required"]) {
			if _, ok := v[r.(string)]; !ok {
				fail("required property %q is missing", r)
			}
		}
		props := jsonObj(schema["properties"])
		for k, pv := range v {
			if ps, ok := props[k]; ok {
				problems = append(problems, validateSchema(s, ps, pv, at+"."+k)...)
				continue
			}
			switch extra := schema["additionalProperties"].(type) {
			case bool:
				if !extra {
					fail("property %q is not described", k)
				}
			case map[string]any:
				problems = append(problems, validateSchema(s, extra, pv, at+"."+k)...)
			}
		}
	case []any:
		if items, ok := schema["items"]; ok {
			for i, e := range v {
				problems = append(problems, validateSchema(s, items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return problems
}

func jsonArray(v any) []any { s, _ := v.([]any); return s }

func schemaInt(schema map[string]any, k string) (int64, bool) {
	n, ok := schema[k].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

func jsonTypeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
