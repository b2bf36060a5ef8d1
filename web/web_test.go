package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string, header http.Header) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	StaticHandler().ServeHTTP(w, r)
	return w.Result()
}

func TestAssetURL(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"app.css", `^/static/app\.[0-9a-f]{8}\.css$`},
		{"app.js", `^/static/app\.[0-9a-f]{8}\.js$`},
		{"icon.svg", `^/static/icon\.[0-9a-f]{8}\.svg$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AssetURL(tt.name); !regexp.MustCompile(tt.want).MatchString(got) {
				t.Errorf("AssetURL(%q) = %q, want match %s", tt.name, got, tt.want)
			}
		})
	}
	if AssetURL("app.css") == AssetURL("app.js") {
		t.Error("different files share a URL")
	}
}

func TestStaticHandlerServesHashedURLs(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
	}{
		{"app.css", "text/css; charset=utf-8"},
		{"app.js", "text/javascript; charset=utf-8"},
		{"icon.svg", "image/svg+xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, AssetURL(tt.name), nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control %q", got)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			body, _ := io.ReadAll(res.Body)
			want, err := staticFS.ReadFile("static/" + tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != string(want) {
				t.Error("body is not the embedded file")
			}

			again := get(t, AssetURL(tt.name), http.Header{"If-None-Match": {res.Header.Get("ETag")}})
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("revalidation: status %d, want 304", again.StatusCode)
			}
		})
	}
}

func TestStaticHandlerNotFound(t *testing.T) {
	hashed := AssetURL("app.css")
	for _, path := range []string{
		"/static/app.css",
		"/static/app.00000000.css",
		strings.Replace(hashed, ".css", ".js", 1),
		"/static/nope.12345678.css",
		"/static/",
		AssetURL("nope.css"),
	} {
		t.Run(path, func(t *testing.T) {
			res := get(t, path, nil)
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("status %d, want 404", res.StatusCode)
			}
			if cc := res.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
				t.Errorf("a 404 is cached forever: %q", cc)
			}
		})
	}
}

// The pages' CSP is default-src 'self', so nothing in static/ may load from
// another host.
func TestStaticFilesAreSelfContained(t *testing.T) {
	for _, name := range []string{"app.css", "app.js"} {
		body, err := staticFS.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"@import", "url(", "://", "eval(", "innerHTML"} {
			if strings.Contains(string(body), bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}
