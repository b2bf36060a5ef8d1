package clients

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckDocumentURL(t *testing.T) {
	for _, tc := range []struct {
		url      string
		loopback bool
		want     string
	}{
		{"https://app.example/client.json", false, ""},
		{"https://app.example/", false, "path"},
		{"https://app.example", false, "path"},
		{"http://app.example/c", true, "https"},
		{"http://localhost:3000/c", true, ""},
		{"http://localhost:3000/c", false, "https"},
		{"https://u:p@app.example/c", false, "user name"},
		{"https://app.example/c#x", false, "fragment"},
		{"https://app.example/a/../c", false, "path segments"},
		{"https://app.example/./c", false, "path segments"},
	} {
		err := CheckDocumentURL(tc.url, tc.loopback)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckDocumentURL(%q) = %v, want %q", tc.url, err, tc.want)
		}
	}
}

func TestParseDocument(t *testing.T) {
	const id = "https://app.example/client.json"
	base := `"client_id":"` + id + `","client_name":"App","redirect_uris":["http://localhost/cb"],"token_endpoint_auth_method":"none"`
	d, err := ParseDocument(id, []byte(`{`+base+`,"grant_types":["refresh_token","authorization_code"],"scope":"books:read"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c := d.Client; !c.Public || c.Name != "App" || d.Host != "app.example" || !slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) || !slices.Equal(c.Scopes, []string{"books:read"}) {
		t.Errorf("client %+v host %q", c, d.Host)
	}
	if d.Client.IDTokenAlg != "RS256" {
		t.Errorf("ID token algorithm without id_token_signed_response_alg = %q, want RS256", d.Client.IDTokenAlg)
	}
	if d, err := ParseDocument(id, []byte(`{`+base+`,"id_token_signed_response_alg":"ES256"}`), time.Now()); err != nil || d.Client.IDTokenAlg != "ES256" {
		t.Errorf("id_token_signed_response_alg ES256: %q, %v", d.Client.IDTokenAlg, err)
	}
	for body, want := range map[string]string{
		`{` + base + `,"client_secret":"s"}`:                  "client_secret",
		`{` + base + `,"grant_types":["client_credentials"]}`: "grant_types",
		`{` + base + `,"grant_types":["refresh_token"]}`:      "authorization_code",
		`{` + base + `,"response_types":["token"]}`:           "response_types",
		`{` + base + `,"scope":"admin"}`:                      "scope",
		`{` + strings.Replace(base, `"none"`, `"private_key_jwt"`, 1) + `,"jwks_uri":"https://app.example/jwks"}`: "private_key_jwt",
		`{` + strings.Replace(base, `http://localhost/cb`, `http://app.example/cb`, 1) + `}`:                      "redirect_uris",
		`{` + strings.Replace(base, `,"token_endpoint_auth_method":"none"`, ``, 1) + `}`:                          "token_endpoint_auth_method",
		`{` + base + `,"id_token_signed_response_alg":"none"}`:                                                    "id_token_signed_response_alg",
		`[]`:    "JSON object",
		`{} {}`: "more than one",
		`{"client_id":"https://app.example/client.json/"}`: "not the URL",
	} {
		if _, err := ParseDocument(id, []byte(body), time.Now()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDocument(%s) = %v, want %q", body, err, want)
		}
	}
}

// FuzzParseDocument: a document comes from anyone's server. Whatever it
// holds, parsing never panics, and what it accepts is a public client
// named by the URL with redirect URIs that registration would accept.
func FuzzParseDocument(f *testing.F) {
	const id = "https://app.example/client.json"
	f.Add(`{"client_id":"` + id + `","client_name":"App","redirect_uris":["http://localhost/cb"],"token_endpoint_auth_method":"none"}`)
	f.Add(`{"client_id":"` + id + `","client_name":"A","redirect_uris":["com.example.app:/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"scope":"openid"}`)
	f.Add(`{"client_id":1}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, body string) {
		d, err := ParseDocument(id, []byte(body), time.Now())
		if err != nil {
			return
		}
		if d.Client.ID != id || !d.Client.Public || len(d.Client.RedirectURIs) == 0 || !slices.Contains(d.Client.GrantTypes, GrantAuthorizationCode) {
			t.Fatalf("accepted %+v", d.Client)
		}
		for _, u := range d.Client.RedirectURIs {
			if ValidateRedirectURI(u) != nil {
				t.Fatalf("accepted redirect URI %q", u)
			}
		}
	})
}
