package clients

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/storage"
)

var testNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600))

func TestValidateRedirectURI(t *testing.T) {
	accepted := []string{
		"https://app.example/cb",
		"https://app.example",
		"https://app.example:8443/cb?next=%2Fhome&x=1",
		"https://APP.Example/cb",
		"https://192.0.2.1/cb",
		"https://[2001:db8::1]:443/cb",
		"http://127.0.0.1:8080/cb",
		"http://127.0.0.1/cb",
		"http://[::1]/cb",
		"http://[::1]:9000/cb",
		"http://localhost/cb",
		"http://localhost:3000/auth/callback",
		"com.example.app:/cb",
		"com.example.app:/oauth2redirect/example-provider",
		"com.example.app://callback/path",
	}
	for _, s := range accepted {
		t.Run("ok "+s, func(t *testing.T) {
			if err := ValidateRedirectURI(s); err != nil {
				t.Errorf("ValidateRedirectURI(%q) = %v, want nil", s, err)
			}
		})
	}

	refused := []struct {
		name, uri string
		because   string // part of the message
	}{
		{"empty", "", "empty"},
		{"http on a public host", "http://example.com/cb", "not loopback"},
		{"http on another loopback address", "http://127.0.0.2/cb", "not loopback"},
		{"http on a look-alike host", "http://localhost.evil.example/cb", "not loopback"},
		{"http on a mapped loopback", "http://[::ffff:127.0.0.1]/cb", "not loopback"},
		{"http without host", "http:///cb", "not loopback"},
		{"empty fragment", "https://a.example/cb#", "fragment"},
		{"angle brackets", "https://a.example/cb<script>", "percent-encode"},
		{"double quote", `https://a.example/cb"onmouseover=x`, "percent-encode"},
		{"backtick", "https://a.example/`cb`", "percent-encode"},
		{"fragment", "https://a.example/cb#top", "fragment"},
		{"userinfo with password", "https://u:p@a.example/cb", "user information"},
		{"userinfo", "https://user@a.example/cb", "user information"},
		{"private scheme with userinfo", "com.example.app://user@host/cb", "user information"},
		{"wildcard host", "https://*.example.com/cb", "wildcard"},
		{"wildcard path", "https://a.example/*", "wildcard"},
		{"relative path", "/relative", "relative"},
		{"relative name", "callback", "relative"},
		{"protocol-relative", "//a.example/cb", "relative"},
		{"javascript", "javascript:alert(1)", `"javascript"`},
		{"javascript upper-case", "JavaScript:alert(1)", `"javascript"`},
		{"data", "data:text/html,<script>alert(1)</script>", `"data"`},
		{"file", "file:///etc/passwd", `"file"`},
		{"vbscript", "vbscript:msgbox(1)", `"vbscript"`},
		{"private scheme without dot", "myapp:/cb", "reverse domain"},
		{"other web scheme", "ftp://a.example/cb", "reverse domain"},
		{"private scheme without slash", "com.example.app:cb", "must continue with /"},
		{"private scheme alone", "com.example.app:", "nothing after the scheme"},
		{"https without slashes", "https:cb", "must continue with /"},
		{"space", "https://a.example/c b", "whitespace"},
		{"trailing newline", "https://a.example/cb\n", "whitespace"},
		{"leading tab", "\thttps://a.example/cb", "whitespace"},
		{"non-breaking space", "https://a.example/\u00a0cb", "whitespace"},
		{"NUL", "https://a.example/cb\x00", "control character"},
		{"DEL", "https://a.example/\x7f", "control character"},
		{"non-ASCII", "https://a.example/café", "non-ASCII"},
		{"invalid UTF-8", "https://a.example/\xff", "non-ASCII"},
		{"overlong", "https://a.example/" + strings.Repeat("a", 2000), "longer than 2000"},
		{"dot-dot segment", "https://a.example/../cb", ". or .."},
		{"encoded dot-dot segment", "https://a.example/a/%2e%2E/cb", ". or .."},
		{"dot segment", "https://a.example/./cb", ". or .."},
		{"no host", "https:///cb", "no host"},
		{"port out of range", "https://a.example:99999/cb", "invalid port"},
		{"port zero", "https://a.example:0/cb", "invalid port"},
		{"empty port", "https://a.example:/cb", "empty port"},
		{"host starting with hyphen", "https://-a.example/cb", "invalid host"},
		{"empty label", "https://a..example/cb", "invalid host"},
		{"IPv6 zone", "https://[fe80::1%25en0]/cb", "invalid host"},
		{"bad escape", "https://a.example/%zz", "not a valid URI"},
		{"backslash before userinfo", `https://a.example\@evil.example/cb`, "not a valid URI"},
		{"backslash in loopback host", `http://127.0.0.1\.evil.example/cb`, "not a valid URI"},
		{"backslash in host", `https://a.example\evil.example/cb`, "not a valid URI"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateRedirectURI(tc.uri)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("ValidateRedirectURI(%q) = %v, want *Error", tc.uri, err)
			}
			if e.Code != CodeInvalidRedirectURI || e.Field != "redirect_uris" {
				t.Errorf("code, field = %q, %q; want %q, redirect_uris", e.Code, e.Field, CodeInvalidRedirectURI)
			}
			if !strings.Contains(e.Message, tc.because) {
				t.Errorf("message %q does not mention %q", e.Message, tc.because)
			}
		})
	}
}

func TestParseScope(t *testing.T) {
	all := []string{"openid", "profile", "email", "offline_access", "books:read", "books:write"}
	tests := []struct {
		in      string
		want    []string
		unknown bool
	}{
		{in: "", want: all},
		{in: "  \t", want: all},
		{in: "openid", want: []string{"openid"}},
		{in: "books:write openid books:write", want: []string{"openid", "books:write"}},
		{in: "books:read\topenid  profile", want: []string{"openid", "profile", "books:read"}},
		{in: "books:write books:read offline_access email profile openid", want: all},
		{in: "address", unknown: true},
		{in: "openid books:*", unknown: true},
		{in: "OPENID", unknown: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseScope(tc.in)
			if tc.unknown {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeInvalidClientMetadata || e.Field != "scope" {
					t.Fatalf("ParseScope(%q) error = %v, want an invalid_client_metadata scope *Error", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseScope(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseScope(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestScopeCatalogue(t *testing.T) {
	if diff := cmp.Diff([]string{"openid", "profile", "email", "offline_access", "books:read", "books:write"}, ScopeNames()); diff != "" {
		t.Errorf("ScopeNames (-want +got):\n%s", diff)
	}
	for _, s := range Scopes() {
		if s.Description == "" || s.Description == s.Name {
			t.Errorf("scope %q has no plain-language description", s.Name)
		}
	}
	got := DescribeScopes([]string{"books:read", "mystery"})
	if got[0].Description != "See your books" {
		t.Errorf("books:read described as %q", got[0].Description)
	}
	if got[1].Description != "mystery" {
		t.Errorf("an unknown scope is described as %q, want its name so it is not hidden", got[1].Description)
	}
	Scopes()[0].Description = "changed"
	if Scopes()[0].Description == "changed" {
		t.Error("Scopes returns the catalogue itself, not a copy")
	}
}

func TestParseGrantTypes(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		public  bool
		want    []string
		invalid bool
	}{
		{name: "default", want: []string{"authorization_code", "refresh_token"}},
		{name: "default public", public: true, want: []string{"authorization_code", "refresh_token"}},
		{name: "machine", in: []string{"client_credentials"}, want: []string{"client_credentials"}},
		{name: "all, repeated, out of order", in: []string{"client_credentials", "refresh_token", "authorization_code", "refresh_token"}, want: []string{"authorization_code", "refresh_token", "client_credentials"}},
		{name: "code only", in: []string{"authorization_code"}, public: true, want: []string{"authorization_code"}},
		{name: "public machine", in: []string{"client_credentials"}, public: true, invalid: true},
		{name: "refresh alone", in: []string{"refresh_token"}, invalid: true},
		{name: "refresh with client credentials", in: []string{"client_credentials", "refresh_token"}, invalid: true},
		{name: "password", in: []string{"password"}, invalid: true},
		{name: "implicit", in: []string{"authorization_code", "implicit"}, invalid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGrantTypes(tc.in, tc.public)
			if tc.invalid {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeInvalidClientMetadata || e.Field != "grant_types" {
					t.Fatalf("parseGrantTypes(%q, %v) error = %v, want a grant_types *Error", tc.in, tc.public, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseGrantTypes(%q, %v): %v", tc.in, tc.public, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		in, want string
		invalid  bool
	}{
		{in: "  My App \n", want: "My App"},
		{in: "Bücherwurm 📚", want: "Bücherwurm 📚"},
		{in: strings.Repeat("é", 100), want: strings.Repeat("é", 100)},
		{in: strings.Repeat("é", 101), invalid: true},
		{in: "", invalid: true},
		{in: " \t ", invalid: true},
		{in: "bad\xffname", invalid: true},
		{in: "a\x00b", invalid: true},
		{in: "tab\there", invalid: true},
		{in: "evil\u202eppA", invalid: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := validateName(tc.in)
			if tc.invalid {
				var e *Error
				if !errors.As(err, &e) || e.Field != "name" {
					t.Fatalf("validateName(%q) = %q, %v; want a name *Error", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("validateName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

var clientIDPattern = regexp.MustCompile(`^[a-z2-7]{26}$`)

func TestRegister(t *testing.T) {
	ctx := context.Background()

	t.Run("confidential", func(t *testing.T) {
		store := &memStore{}
		c, secret, err := Register(ctx, store, Registration{
			OwnerID:      "u1",
			Name:         " Reader ",
			RedirectURIs: []string{"https://reader.example/cb", "http://127.0.0.1:8080/cb", "https://reader.example/cb"},
		}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if !clientIDPattern.MatchString(c.ID) {
			t.Errorf("client id %q is not 26 lower-case base32 characters", c.ID)
		}
		if err := (SecretHasher{}).Compare(ctx, c.SecretHash, []byte(secret)); err != nil {
			t.Errorf("the stored hash does not match the returned secret: %v", err)
		}
		want := storage.Client{
			ID:           c.ID,
			OwnerID:      "u1",
			Name:         "Reader",
			SecretHash:   c.SecretHash,
			RedirectURIs: []string{"https://reader.example/cb", "http://127.0.0.1:8080/cb"},
			Scopes:       []string{"openid", "profile", "email", "offline_access", "books:read", "books:write"},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
			IDTokenAlg:   "RS256",
			Origin:       storage.OriginConsole,
			CreatedAt:    testNow,
			UpdatedAt:    testNow,
		}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("client (-want +got):\n%s", diff)
		}
		stored, err := store.GetClient(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, stored); diff != "" {
			t.Errorf("stored client (-want +got):\n%s", diff)
		}
	})

	t.Run("public", func(t *testing.T) {
		c, secret, err := Register(ctx, &memStore{}, Registration{
			Name: "Phone", RedirectURIs: []string{"com.example.phone:/cb"}, Public: true, Scope: "openid books:read",
		}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if secret != "" || c.SecretHash != nil || !c.Public {
			t.Errorf("public client got secret %q, hash %x, public %v", secret, c.SecretHash, c.Public)
		}
		if diff := cmp.Diff([]string{"openid", "books:read"}, c.Scopes); diff != "" {
			t.Errorf("scopes (-want +got):\n%s", diff)
		}
	})

	t.Run("machine client needs no redirect URI", func(t *testing.T) {
		c, secret, err := Register(ctx, &memStore{}, Registration{
			Name: "Nightly sync", GrantTypes: []string{"client_credentials"}, Scope: "books:read",
		}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if secret == "" || len(c.RedirectURIs) != 0 {
			t.Errorf("secret %q, redirect URIs %q", secret, c.RedirectURIs)
		}
	})

	t.Run("ids differ", func(t *testing.T) {
		store := &memStore{}
		seen := map[string]bool{}
		for range 100 {
			c, _, err := Register(ctx, store, Registration{Name: "x", RedirectURIs: []string{"https://x.example/cb"}}, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if seen[c.ID] {
				t.Fatalf("client id %q issued twice", c.ID)
			}
			seen[c.ID] = true
		}
	})

	manyURIs := make([]string, 21)
	for i := range manyURIs {
		manyURIs[i] = "https://app.example/cb" + strings.Repeat("x", i)
	}
	invalid := []struct {
		name  string
		reg   Registration
		code  string
		field string
	}{
		{"no name", Registration{RedirectURIs: []string{"https://a.example/cb"}}, CodeInvalidClientMetadata, "name"},
		{"no redirect URI", Registration{Name: "A"}, CodeInvalidRedirectURI, "redirect_uris"},
		{"too many redirect URIs", Registration{Name: "A", RedirectURIs: manyURIs}, CodeInvalidRedirectURI, "redirect_uris"},
		{"bad redirect URI", Registration{Name: "A", RedirectURIs: []string{"https://a.example/cb", "http://a.example/cb"}}, CodeInvalidRedirectURI, "redirect_uris"},
		{"unknown scope", Registration{Name: "A", RedirectURIs: []string{"https://a.example/cb"}, Scope: "openid admin"}, CodeInvalidClientMetadata, "scope"},
		{"public machine", Registration{Name: "A", Public: true, GrantTypes: []string{"client_credentials"}}, CodeInvalidClientMetadata, "grant_types"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			store := &memStore{}
			_, _, err := Register(ctx, store, tc.reg, testNow)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Register = %v, want *Error", err)
			}
			if e.Code != tc.code || e.Field != tc.field {
				t.Errorf("code, field = %q, %q; want %q, %q (%s)", e.Code, e.Field, tc.code, tc.field, e.Message)
			}
			if len(store.clients) != 0 {
				t.Error("an invalid client was stored")
			}
		})
	}

	t.Run("store failure", func(t *testing.T) {
		boom := errors.New("disk full")
		_, _, err := Register(ctx, &memStore{err: boom}, Registration{Name: "A", RedirectURIs: []string{"https://a.example/cb"}}, testNow)
		var e *Error
		if !errors.Is(err, boom) || errors.As(err, &e) {
			t.Errorf("Register = %v, want the wrapped store error", err)
		}
	})
}

func mustRegister(t *testing.T, store Store, r Registration) (storage.Client, string) {
	t.Helper()
	c, secret, err := Register(context.Background(), store, r, testNow)
	if err != nil {
		t.Fatalf("Register(%+v): %v", r, err)
	}
	return c, secret
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	later := testNow.Add(time.Hour)

	t.Run("renames and replaces redirect URIs", func(t *testing.T) {
		store := &memStore{}
		c, _ := mustRegister(t, store, Registration{Name: "Old", RedirectURIs: []string{"https://old.example/cb"}})
		got, err := Update(ctx, store, c.ID, " New ", []string{"https://new.example/cb", "http://localhost/cb"}, later)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := store.GetClient(ctx, c.ID)
		if diff := cmp.Diff(got, stored); diff != "" {
			t.Errorf("returned and stored differ (-returned +stored):\n%s", diff)
		}
		if stored.Name != "New" || !cmp.Equal(stored.RedirectURIs, []string{"https://new.example/cb", "http://localhost/cb"}) || !stored.UpdatedAt.Equal(later) {
			t.Errorf("stored %+v", stored)
		}
		if !cmp.Equal(stored.SecretHash, c.SecretHash) || !stored.CreatedAt.Equal(testNow) {
			t.Error("update changed the secret or the creation time")
		}
	})

	t.Run("invalid changes nothing", func(t *testing.T) {
		store := &memStore{}
		c, _ := mustRegister(t, store, Registration{Name: "Old", RedirectURIs: []string{"https://old.example/cb"}})
		for _, uris := range [][]string{nil, {"https://a.example/cb#x"}} {
			_, err := Update(ctx, store, c.ID, "New", uris, later)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidRedirectURI {
				t.Errorf("Update with %q = %v, want invalid_redirect_uri", uris, err)
			}
		}
		if _, err := Update(ctx, store, c.ID, "", []string{"https://a.example/cb"}, later); !errors.As(err, new(*Error)) {
			t.Errorf("Update with no name = %v, want *Error", err)
		}
		stored, _ := store.GetClient(ctx, c.ID)
		if diff := cmp.Diff(c, stored); diff != "" {
			t.Errorf("stored client changed (-want +got):\n%s", diff)
		}
	})

	t.Run("machine client may drop its redirect URIs", func(t *testing.T) {
		store := &memStore{}
		c, _ := mustRegister(t, store, Registration{Name: "M", GrantTypes: []string{"client_credentials"}, RedirectURIs: []string{"https://m.example/cb"}})
		if _, err := Update(ctx, store, c.ID, "M", nil, later); err != nil {
			t.Error(err)
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		if _, err := Update(ctx, &memStore{}, "nope", "A", []string{"https://a.example/cb"}, later); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Update = %v, want storage.ErrNotFound", err)
		}
	})
}

func TestRotateSecret(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	c, old := mustRegister(t, store, Registration{Name: "A", RedirectURIs: []string{"https://a.example/cb"}})

	secret, err := RotateSecret(ctx, store, c.ID, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := store.GetClient(ctx, c.ID)
	if err := (SecretHasher{}).Compare(ctx, stored.SecretHash, []byte(secret)); err != nil {
		t.Errorf("new secret does not match: %v", err)
	}
	if err := (SecretHasher{}).Compare(ctx, stored.SecretHash, []byte(old)); err == nil {
		t.Error("old secret still matches")
	}

	pub, _ := mustRegister(t, store, Registration{Name: "P", Public: true, RedirectURIs: []string{"com.example.p:/cb"}})
	if _, err := RotateSecret(ctx, store, pub.ID, testNow); !errors.Is(err, ErrPublicClient) {
		t.Errorf("RotateSecret(public) = %v, want ErrPublicClient", err)
	}
	if stored, _ := store.GetClient(ctx, pub.ID); stored.SecretHash != nil {
		t.Error("a public client got a secret")
	}
	if _, err := RotateSecret(ctx, store, "nope", testNow); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RotateSecret(unknown) = %v, want storage.ErrNotFound", err)
	}
}
