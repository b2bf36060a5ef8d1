package mcp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestCalledTools(t *testing.T) {
	for body, want := range map[string][]string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_book"}}`:                                                            {"add_book"},
		`[{"method":"tools/call","params":{"name":"get_book"}},{"method":"tools/list"},{"method":"tools/call","params":{"name":"delete_book"}}]`: {"get_book", "delete_book"},
		`{"method":"tools/list"}`: nil,
		`{"method":`:              nil,
		`[1,2]`:                   nil,
		``:                        nil,
	} {
		if got := calledTools([]byte(body)); !slices.Equal(got, want) {
			t.Errorf("calledTools(%s) = %v, want %v", body, got, want)
		}
	}
}

// TestCheckScopes: a call lacking its tool's scope is refused before the
// transport, and the message reaches the transport unchanged otherwise.
func TestCheckScopes(t *testing.T) {
	var denied string
	var seen string
	cfg := Config{
		Identity: func(r *http.Request) (string, []string) { return "u1", strings.Fields(r.Header.Get("X-Scopes")) },
		Denied: func(w http.ResponseWriter, r *http.Request, scope string) {
			denied = scope
			w.WriteHeader(http.StatusForbidden)
		},
	}
	h := checkScopes(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = string(b)
	}))
	for _, tc := range []struct {
		scopes, body, denied string
	}{
		{"books:read", `{"method":"tools/call","params":{"name":"add_book"}}`, "books:write"},
		{"books:write", `{"method":"tools/call","params":{"name":"list_books"}}`, "books:read"},
		{"books:read books:write", `{"method":"tools/call","params":{"name":"update_book"}}`, ""},
		{"", `{"method":"initialize"}`, ""},
		{"", `{"method":"tools/call","params":{"name":"no_such_tool"}}`, ""},
	} {
		denied, seen = "", ""
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(tc.body))
		r.Header.Set("X-Scopes", tc.scopes)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if denied != tc.denied {
			t.Errorf("%s with %q: denied %q, want %q", tc.body, tc.scopes, denied, tc.denied)
		}
		if tc.denied == "" && seen != tc.body {
			t.Errorf("%s: the transport saw %q", tc.body, seen)
		}
	}
}
