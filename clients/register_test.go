package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestRegistration(t *testing.T) (*RegistrationEndpoint, *memStore, *bytes.Buffer) {
	t.Helper()
	store, logs := &memStore{}, &bytes.Buffer{}
	e := NewRegistrationEndpoint(store, slog.New(slog.NewTextHandler(logs, nil)))
	e.Now = func() time.Time { return testNow }
	return e, store, logs
}

func postMetadata(t *testing.T, e *RegistrationEndpoint, contentType, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth2/register", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var resp map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, w.Body)
	}
	return w, resp
}

func TestRegistrationEndpoint(t *testing.T) {
	t.Run("confidential round trip", func(t *testing.T) {
		e, store, _ := newTestRegistration(t)
		w, resp := postMetadata(t, e, "application/json; charset=utf-8", `{
			"redirect_uris": ["https://tool.example/cb", "http://127.0.0.1/cb"],
			"client_name": "Tool",
			"logo_uri": "https://tool.example/logo.png",
			"software_statement": {"nested": [1, 2]},
			"scope": "books:read openid"
		}`)
		if w.Code != http.StatusCreated {
			t.Fatalf("= %d, want 201: %s", w.Code, w.Body)
		}
		if len(store.clients) != 1 {
			t.Fatalf("%d clients stored, want 1", len(store.clients))
		}
		c := store.clients[0]
		secret, _ := resp["client_secret"].(string)
		if len(secret) != 43 || (SecretHasher{}).Compare(context.Background(), c.SecretHash, []byte(secret)) != nil {
			t.Errorf("client_secret %q does not match the stored hash", secret)
		}
		want := map[string]any{
			"client_id":                  c.ID,
			"client_secret":              secret,
			"client_id_issued_at":        float64(testNow.Unix()),
			"client_secret_expires_at":   float64(0),
			"client_name":                "Tool",
			"redirect_uris":              []any{"https://tool.example/cb", "http://127.0.0.1/cb"},
			"token_endpoint_auth_method": "client_secret_basic",
			"grant_types":                []any{"authorization_code", "refresh_token"},
			"response_types":             []any{"code"},
			"scope":                      "openid books:read",

			"id_token_signed_response_alg": "RS256",
		}
		if diff := cmp.Diff(want, resp); diff != "" {
			t.Errorf("response (-want +got):\n%s", diff)
		}
		if c.OwnerID != "" || c.Public || c.Name != "Tool" {
			t.Errorf("stored %+v", c)
		}
	})

	t.Run("public", func(t *testing.T) {
		e, store, _ := newTestRegistration(t)
		w, resp := postMetadata(t, e, "application/json", `{
			"redirect_uris": ["com.example.tool:/cb"], "client_name": "Tool",
			"token_endpoint_auth_method": "none", "grant_types": ["authorization_code"], "response_types": ["code"]
		}`)
		if w.Code != http.StatusCreated {
			t.Fatalf("= %d, want 201: %s", w.Code, w.Body)
		}
		for _, key := range []string{"client_secret", "client_secret_expires_at"} {
			if _, ok := resp[key]; ok {
				t.Errorf("a public client's response has %s", key)
			}
		}
		if resp["token_endpoint_auth_method"] != "none" || !store.clients[0].Public || store.clients[0].SecretHash != nil {
			t.Errorf("response %v, stored %+v", resp, store.clients[0])
		}
		if len(resp["scope"].(string)) == 0 {
			t.Error("a client registered without scope got none")
		}
	})

	t.Run("client_secret_post", func(t *testing.T) {
		e, _, _ := newTestRegistration(t)
		w, resp := postMetadata(t, e, "application/json", `{"redirect_uris": ["https://t.example/cb"], "client_name": "T", "token_endpoint_auth_method": "client_secret_post"}`)
		if w.Code != http.StatusCreated || resp["token_endpoint_auth_method"] != "client_secret_post" || resp["client_secret"] == nil {
			t.Errorf("= %d %v", w.Code, resp)
		}
	})

	t.Run("ID token algorithm", func(t *testing.T) {
		for _, alg := range IDTokenAlgs {
			e, store, _ := newTestRegistration(t)
			w, resp := postMetadata(t, e, "application/json", `{"redirect_uris": ["https://t.example/cb"], "client_name": "T", "id_token_signed_response_alg": "`+alg+`"}`)
			if w.Code != http.StatusCreated || resp["id_token_signed_response_alg"] != alg {
				t.Errorf("%s: = %d %v", alg, w.Code, resp)
			}
			if len(store.clients) != 1 || store.clients[0].IDTokenAlg != alg {
				t.Errorf("%s: stored %+v", alg, store.clients)
			}
		}
	})

	t.Run("machine client", func(t *testing.T) {
		e, _, _ := newTestRegistration(t)
		w, resp := postMetadata(t, e, "application/json", `{"client_name": "Cron", "grant_types": ["client_credentials"]}`)
		if w.Code != http.StatusCreated {
			t.Fatalf("= %d, want 201: %s", w.Code, w.Body)
		}
		if diff := cmp.Diff(map[string]any{"grant_types": []any{"client_credentials"}, "response_types": []any{}, "redirect_uris": []any{}},
			map[string]any{"grant_types": resp["grant_types"], "response_types": resp["response_types"], "redirect_uris": resp["redirect_uris"]}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestRegistrationEndpointErrors(t *testing.T) {
	const ok = `"client_name": "T", "redirect_uris": ["https://t.example/cb"]`
	tests := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"malformed JSON", "application/json", `{"client_name": "T",`, 400, CodeInvalidClientMetadata},
		{"not an object", "application/json", `["https://t.example/cb"]`, 400, CodeInvalidClientMetadata},
		{"wrong type", "application/json", `{"client_name": "T", "redirect_uris": "https://t.example/cb"}`, 400, CodeInvalidClientMetadata},
		{"two objects", "application/json", `{` + ok + `} {}`, 400, CodeInvalidClientMetadata},
		{"form body", "application/x-www-form-urlencoded", `client_name=T`, 400, CodeInvalidClientMetadata},
		{"no content type", "", `{` + ok + `}`, 400, CodeInvalidClientMetadata},
		{"too large", "application/json", `{` + ok + `, "x": "` + strings.Repeat("a", 64<<10) + `"}`, 413, CodeInvalidClientMetadata},
		{"no redirect URI", "application/json", `{"client_name": "T"}`, 400, CodeInvalidRedirectURI},
		{"http redirect URI", "application/json", `{"client_name": "T", "redirect_uris": ["http://t.example/cb"]}`, 400, CodeInvalidRedirectURI},
		{"fragment", "application/json", `{"client_name": "T", "redirect_uris": ["https://t.example/cb#x"]}`, 400, CodeInvalidRedirectURI},
		{"no name", "application/json", `{"redirect_uris": ["https://t.example/cb"]}`, 400, CodeInvalidClientMetadata},
		{"unknown auth method", "application/json", `{` + ok + `, "token_endpoint_auth_method": "private_key_jwt"}`, 400, CodeInvalidClientMetadata},
		{"implicit", "application/json", `{` + ok + `, "response_types": ["token"]}`, 400, CodeInvalidClientMetadata},
		{"code without its grant", "application/json", `{` + ok + `, "response_types": ["code"], "grant_types": ["client_credentials"]}`, 400, CodeInvalidClientMetadata},
		{"unknown grant", "application/json", `{` + ok + `, "grant_types": ["password"]}`, 400, CodeInvalidClientMetadata},
		{"public machine", "application/json", `{"client_name": "T", "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}`, 400, CodeInvalidClientMetadata},
		{"unknown scope", "application/json", `{` + ok + `, "scope": "openid admin"}`, 400, CodeInvalidClientMetadata},
		{"unknown ID token alg", "application/json", `{` + ok + `, "id_token_signed_response_alg": "HS256"}`, 400, CodeInvalidClientMetadata},
		{"unsigned ID tokens", "application/json", `{` + ok + `, "id_token_signed_response_alg": "none"}`, 400, CodeInvalidClientMetadata},
		{"ID token alg of the wrong case", "application/json", `{` + ok + `, "id_token_signed_response_alg": "es256"}`, 400, CodeInvalidClientMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, store, _ := newTestRegistration(t)
			w, resp := postMetadata(t, e, tt.contentType, tt.body)
			if w.Code != tt.status || resp["error"] != tt.code {
				t.Errorf("= %d %v, want %d %s", w.Code, resp, tt.status, tt.code)
			}
			if d, _ := resp["error_description"].(string); d == "" || strings.Contains(d, "clientMetadata") {
				t.Errorf("error_description = %q, want a description that names no Go type", d)
			}
			if len(store.clients) != 0 {
				t.Error("a client was stored")
			}
		})
	}
}

func TestRegistrationEndpointStoreFailure(t *testing.T) {
	e, store, logs := newTestRegistration(t)
	store.err = errors.New("database is on fire")
	w, resp := postMetadata(t, e, "application/json", `{"client_name": "T", "redirect_uris": ["https://t.example/cb"]}`)
	if w.Code != http.StatusInternalServerError || resp["error"] != "server_error" {
		t.Errorf("= %d %v, want 500 server_error", w.Code, resp)
	}
	if strings.Contains(w.Body.String(), "on fire") || !strings.Contains(logs.String(), "on fire") {
		t.Errorf("the cause should be logged, not sent: body %s, logs %s", w.Body, logs)
	}
}
