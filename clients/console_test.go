package clients

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/storage"
	"gatehouse/web/templates"
)

type testConsole struct {
	store *memStore
	logs  *bytes.Buffer
	mux   *http.ServeMux
}

// newTestConsole serves the /apps pages; requests name their signed-in user
// in the X-Test-User header.
func newTestConsole(t *testing.T) *testConsole {
	t.Helper()
	tc := &testConsole{store: &memStore{}, logs: &bytes.Buffer{}, mux: http.NewServeMux()}
	signedIn := func(r *http.Request) (string, string, bool) {
		id := r.Header.Get("X-Test-User")
		return id, "name-of-" + id, id != ""
	}
	newPage := func(r *http.Request, title string) templates.Page {
		id, name, _ := signedIn(r)
		if id == "" {
			name = ""
		}
		return templates.Page{Title: title, User: name}
	}
	h := New(tc.store, slog.New(slog.NewTextHandler(tc.logs, nil)), signedIn, newPage)
	h.Now = func() time.Time { return testNow }
	h.Mount(tc.mux)
	return tc
}

func (tc *testConsole) do(t *testing.T, user, method, path string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		r.Header.Set("X-Test-User", user)
	}
	w := httptest.NewRecorder()
	tc.mux.ServeHTTP(w, r)
	return w
}

// mustCreate registers an app through the console and returns it with the
// secret shown on the page.
func (tc *testConsole) mustCreate(t *testing.T, user string, form url.Values) (storage.Client, string) {
	t.Helper()
	w := tc.do(t, user, http.MethodPost, "/apps", form)
	if w.Code != http.StatusCreated {
		t.Fatalf("POST /apps = %d, want 201:\n%s", w.Code, w.Body)
	}
	c := tc.store.clients[len(tc.store.clients)-1]
	return c, shownSecret(c, w.Body.String())
}

var base64urlRun = regexp.MustCompile(`[A-Za-z0-9_-]+`)

// shownSecret returns the secret of c that body displays, or "".
func shownSecret(c storage.Client, body string) string {
	for _, s := range base64urlRun.FindAllString(body, -1) {
		if len(s) == 43 && (SecretHasher{}).Compare(context.Background(), c.SecretHash, []byte(s)) == nil {
			return s
		}
	}
	return ""
}

func appForm(name, redirectURIs, clientType, scope string) url.Values {
	return url.Values{"name": {name}, "redirect_uris": {redirectURIs}, "client_type": {clientType}, "scope": {scope}}
}

func TestConsoleSignedOut(t *testing.T) {
	tc := newTestConsole(t)
	c, _ := tc.mustCreate(t, "alice", appForm("Reader", "https://reader.example/cb", "confidential", ""))
	app := "/apps/" + c.ID
	tests := []struct {
		method, path, returnTo string
	}{
		{"GET", "/apps", "/apps"},
		{"GET", "/apps/new", "/apps/new"},
		{"POST", "/apps", "/apps/new"},
		{"GET", app, app},
		{"POST", app, app},
		{"POST", app + "/secret", app},
		{"POST", app + "/delete", app},
		{"GET", "/apps/a%20b", "/apps/a%20b"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := tc.do(t, "", tt.method, tt.path, appForm("Changed", "https://changed.example/cb", "confidential", ""))
			want := "/login?return_to=" + url.QueryEscape(tt.returnTo)
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
				t.Errorf("= %d to %q, want 303 to %q", w.Code, w.Header().Get("Location"), want)
			}
		})
	}
	if diff := cmp.Diff([]storage.Client{c}, tc.store.clients); diff != "" {
		t.Errorf("signed-out requests changed the store (-want +got):\n%s", diff)
	}
}

func TestConsoleCreate(t *testing.T) {
	tc := newTestConsole(t)
	w := tc.do(t, "alice", http.MethodPost, "/apps",
		appForm("  Reader  ", "https://reader.example/cb\r\n\r\n  http://127.0.0.1:8080/cb \r\n", "confidential", "openid books:read"))
	if w.Code != http.StatusCreated {
		t.Fatalf("POST /apps = %d, want 201:\n%s", w.Code, w.Body)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store on the page that shows the secret", got)
	}
	if len(tc.store.clients) != 1 {
		t.Fatalf("%d clients stored, want 1", len(tc.store.clients))
	}
	c := tc.store.clients[0]
	want := storage.Client{
		ID: c.ID, OwnerID: "alice", Name: "Reader", SecretHash: c.SecretHash,
		RedirectURIs: []string{"https://reader.example/cb", "http://127.0.0.1:8080/cb"},
		Scopes:       []string{"openid", "books:read"},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		IDTokenAlg:   "RS256",
		Origin:       storage.OriginConsole,
		CreatedAt:    testNow, UpdatedAt: testNow,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("stored client (-want +got):\n%s", diff)
	}
	body := w.Body.String()
	if !strings.Contains(body, c.ID) {
		t.Error("the page does not show the client id")
	}
	secret := shownSecret(c, body)
	if secret == "" {
		t.Fatal("the page does not show the secret")
	}

	w = tc.do(t, "alice", http.MethodGet, "/apps/"+c.ID, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), c.ID) || !strings.Contains(w.Body.String(), "Reader") {
		t.Fatalf("GET /apps/%s = %d:\n%s", c.ID, w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), secret) {
		t.Error("the app page shows the secret again")
	}

	w = tc.do(t, "alice", http.MethodGet, "/apps", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), c.ID) || strings.Contains(w.Body.String(), secret) {
		t.Errorf("GET /apps = %d, want the app without its secret:\n%s", w.Code, w.Body)
	}
	w = tc.do(t, "bob", http.MethodGet, "/apps", nil)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), c.ID) {
		t.Errorf("bob's GET /apps = %d, want 200 without alice's app:\n%s", w.Code, w.Body)
	}
}

func TestConsoleCreatePublic(t *testing.T) {
	tc := newTestConsole(t)
	c, secret := tc.mustCreate(t, "alice", appForm("Phone", "com.example.phone:/cb", "public", ""))
	if !c.Public || c.SecretHash != nil || secret != "" {
		t.Errorf("public app stored as %+v", c)
	}
	if len(c.Scopes) != 6 {
		t.Errorf("an empty scope field registered %q, want every scope", c.Scopes)
	}
}

func TestConsoleCreateInvalid(t *testing.T) {
	tests := []struct {
		name    string
		form    url.Values
		because string
	}{
		{"http redirect", appForm("Mine", "http://example.com/cb", "confidential", ""), "not loopback"},
		{"no redirect", appForm("Mine", " \r\n", "confidential", ""), "At least one redirect URI"},
		{"no name", appForm("   ", "https://mine.example/cb", "confidential", ""), "A name is required"},
		{"unknown scope", appForm("Mine", "https://mine.example/cb", "confidential", "openid admin"), "Unknown scope"},
		{"unknown client type", appForm("Mine", "https://mine.example/cb", "trusted", ""), "confidential or public"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestConsole(t)
			w := tc.do(t, "alice", http.MethodPost, "/apps", tt.form)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("= %d, want 400:\n%s", w.Code, w.Body)
			}
			body := w.Body.String()
			if !strings.Contains(body, tt.because) {
				t.Errorf("the page does not say %q:\n%s", tt.because, body)
			}
			for _, entered := range []string{tt.form.Get("name"), tt.form.Get("redirect_uris"), tt.form.Get("scope")} {
				if entered = strings.TrimSpace(entered); !strings.Contains(body, entered) {
					t.Errorf("the form lost the entered value %q", entered)
				}
			}
			if len(tc.store.clients) != 0 {
				t.Error("an invalid app was stored")
			}
		})
	}
}

func TestConsoleOtherUsersGetNotFound(t *testing.T) {
	tc := newTestConsole(t)
	c, _ := tc.mustCreate(t, "alice", appForm("Reader", "https://reader.example/cb", "confidential", ""))
	cli := storage.Client{ID: "operatorapp", Name: "Made by an operator", RedirectURIs: []string{"https://op.example/cb"}}
	tc.store.clients = append(tc.store.clients, cli)
	before := append([]storage.Client(nil), tc.store.clients...)

	unknown := tc.do(t, "bob", http.MethodGet, "/apps/doesnotexist", nil)
	if unknown.Code != http.StatusNotFound {
		t.Fatalf("GET of an unknown app = %d, want 404", unknown.Code)
	}
	for _, id := range []string{c.ID, cli.ID} {
		for _, tt := range []struct{ method, path string }{
			{"GET", "/apps/" + id},
			{"POST", "/apps/" + id},
			{"POST", "/apps/" + id + "/secret"},
			{"POST", "/apps/" + id + "/delete"},
		} {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				w := tc.do(t, "bob", tt.method, tt.path, appForm("Stolen", "https://evil.example/cb", "", ""))
				if w.Code != http.StatusNotFound {
					t.Fatalf("= %d, want 404", w.Code)
				}
				if w.Body.String() != unknown.Body.String() {
					t.Errorf("the 404 differs from the one for an unknown app, so it reveals that the app exists:\n%s", w.Body)
				}
			})
		}
	}
	if diff := cmp.Diff(before, tc.store.clients); diff != "" {
		t.Errorf("bob's requests changed the store (-want +got):\n%s", diff)
	}
}

func TestConsoleUpdate(t *testing.T) {
	tc := newTestConsole(t)
	c, _ := tc.mustCreate(t, "alice", appForm("Reader", "https://reader.example/cb", "confidential", ""))

	w := tc.do(t, "alice", http.MethodPost, "/apps/"+c.ID, url.Values{"name": {"Reader 2"}, "redirect_uris": {"https://reader.example/cb2\nhttp://localhost:3000/cb"}})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Reader 2") {
		t.Fatalf("update = %d:\n%s", w.Code, w.Body)
	}
	got := tc.store.clients[0]
	if got.Name != "Reader 2" || !cmp.Equal(got.RedirectURIs, []string{"https://reader.example/cb2", "http://localhost:3000/cb"}) {
		t.Errorf("stored %+v", got)
	}

	w = tc.do(t, "alice", http.MethodPost, "/apps/"+c.ID, url.Values{"name": {"Reader 3"}, "redirect_uris": {"https://reader.example/cb#frag"}})
	if w.Code != http.StatusBadRequest {
		t.Fatalf("invalid update = %d, want 400:\n%s", w.Code, w.Body)
	}
	if body := w.Body.String(); !strings.Contains(body, "fragment") || !strings.Contains(body, "https://reader.example/cb#frag") {
		t.Errorf("the page does not explain the error or lost the entered URIs:\n%s", body)
	}
	if diff := cmp.Diff(got, tc.store.clients[0]); diff != "" {
		t.Errorf("an invalid update changed the app (-want +got):\n%s", diff)
	}
}

func TestConsoleRotateSecret(t *testing.T) {
	tc := newTestConsole(t)
	c, old := tc.mustCreate(t, "alice", appForm("Reader", "https://reader.example/cb", "confidential", ""))

	w := tc.do(t, "alice", http.MethodPost, "/apps/"+c.ID+"/secret", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("rotate = %d, want 200:\n%s", w.Code, w.Body)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	rotated := tc.store.clients[0]
	secret := shownSecret(rotated, w.Body.String())
	if secret == "" || secret == old {
		t.Fatalf("the page does not show a new secret:\n%s", w.Body)
	}
	if (SecretHasher{}).Compare(context.Background(), rotated.SecretHash, []byte(old)) == nil {
		t.Error("the old secret still works")
	}

	pub, _ := tc.mustCreate(t, "alice", appForm("Phone", "com.example.phone:/cb", "public", ""))
	w = tc.do(t, "alice", http.MethodPost, "/apps/"+pub.ID+"/secret", nil)
	if w.Code != http.StatusBadRequest || tc.store.clients[1].SecretHash != nil {
		t.Errorf("rotating a public app's secret = %d, want 400 and still no secret", w.Code)
	}
}

func TestConsoleDelete(t *testing.T) {
	tc := newTestConsole(t)
	c, _ := tc.mustCreate(t, "alice", appForm("Reader", "https://reader.example/cb", "confidential", ""))
	w := tc.do(t, "alice", http.MethodPost, "/apps/"+c.ID+"/delete", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/apps" {
		t.Fatalf("delete = %d to %q, want 303 to /apps", w.Code, w.Header().Get("Location"))
	}
	if len(tc.store.clients) != 0 {
		t.Error("the app was not deleted")
	}
	if w := tc.do(t, "alice", http.MethodGet, "/apps/"+c.ID, nil); w.Code != http.StatusNotFound {
		t.Errorf("GET of a deleted app = %d, want 404", w.Code)
	}
}

func TestConsoleStoreFailure(t *testing.T) {
	tc := newTestConsole(t)
	c, _ := tc.mustCreate(t, "alice", appForm("Reader", "https://reader.example/cb", "confidential", ""))
	tc.store.err = errors.New("database is on fire")
	for _, tt := range []struct{ method, path string }{
		{"GET", "/apps"},
		{"POST", "/apps"},
		{"GET", "/apps/" + c.ID},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			tc.logs.Reset()
			w := tc.do(t, "alice", tt.method, tt.path, appForm("Reader", "https://reader.example/cb", "confidential", ""))
			if w.Code != http.StatusInternalServerError {
				t.Errorf("= %d, want 500", w.Code)
			}
			if strings.Contains(w.Body.String(), "on fire") {
				t.Error("the page shows the internal error")
			}
			if !strings.Contains(tc.logs.String(), "on fire") {
				t.Errorf("the cause was not logged: %q", tc.logs)
			}
		})
	}
}

func TestConsoleFormTooLarge(t *testing.T) {
	tc := newTestConsole(t)
	w := tc.do(t, "alice", http.MethodPost, "/apps", appForm("Big", strings.Repeat("https://a.example/cb\n", 4000), "confidential", ""))
	if w.Code != http.StatusRequestEntityTooLarge || len(tc.store.clients) != 0 {
		t.Errorf("= %d with %d apps stored, want 413 and none", w.Code, len(tc.store.clients))
	}
}

// TestConsoleIDTokenAlg: the form offers every algorithm Gatehouse signs
// ID tokens with, registration and the edit form store the choice, the
// page shows the stored one checked, and an unknown value is refused
// with the app unchanged.
func TestConsoleIDTokenAlg(t *testing.T) {
	if got := len(templates.IDTokenAlgChoices); got != len(IDTokenAlgs) {
		t.Fatalf("the form offers %d algorithms, Gatehouse signs with %v", got, IDTokenAlgs)
	}
	for i, c := range templates.IDTokenAlgChoices {
		if c.Alg != IDTokenAlgs[i] {
			t.Errorf("choice %d is %s, want %s", i, c.Alg, IDTokenAlgs[i])
		}
	}
	tc := newTestConsole(t)
	form := appForm("Reader", "https://reader.example/cb", "confidential", "")
	form.Set("id_token_signed_response_alg", "ES256")
	c, _ := tc.mustCreate(t, "alice", form)
	if c.IDTokenAlg != "ES256" {
		t.Fatalf("registered with ES256, stored %q", c.IDTokenAlg)
	}
	checked := regexp.MustCompile(`value="(\w+)" checked`)
	if m := checked.FindAllStringSubmatch(tc.do(t, "alice", http.MethodGet, "/apps/"+c.ID, nil).Body.String(), -1); len(m) != 1 || m[0][1] != "ES256" {
		t.Errorf("the app page checks %v, want ES256 alone", m)
	}

	edit := url.Values{"name": {"Reader"}, "redirect_uris": {"https://reader.example/cb"}, "id_token_signed_response_alg": {"EdDSA"}}
	if w := tc.do(t, "alice", http.MethodPost, "/apps/"+c.ID, edit); w.Code != http.StatusOK || tc.store.clients[0].IDTokenAlg != "EdDSA" {
		t.Fatalf("edit to EdDSA = %d, stored %q", w.Code, tc.store.clients[0].IDTokenAlg)
	}
	edit.Set("id_token_signed_response_alg", "HS256")
	w := tc.do(t, "alice", http.MethodPost, "/apps/"+c.ID, edit)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "HS256") || tc.store.clients[0].IDTokenAlg != "EdDSA" {
		t.Errorf("edit to HS256 = %d, stored %q, want 400 naming it and EdDSA kept:\n%s", w.Code, tc.store.clients[0].IDTokenAlg, w.Body)
	}
	edit.Del("id_token_signed_response_alg")
	if w := tc.do(t, "alice", http.MethodPost, "/apps/"+c.ID, edit); w.Code != http.StatusOK || tc.store.clients[0].IDTokenAlg != "EdDSA" {
		t.Errorf("edit without the field = %d, stored %q, want EdDSA kept", w.Code, tc.store.clients[0].IDTokenAlg)
	}
}
