package accounts_test

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"gatehouse/accounts"
	"gatehouse/storage"
	"gatehouse/web/templates"
)

// TestSignInUpgradesOldHash: a hash made with earlier argon2 parameters
// still verifies, and the right password replaces it with one of today's
// parameters; a wrong password changes nothing.
func TestSignInUpgradesOldHash(t *testing.T) {
	ctx := t.Context()
	store := openStore(t)
	old := oldHash("correct horse battery")
	u := storage.User{ID: storage.NewID(), Username: "alice", PasswordHash: old, CreatedAt: time.Now().UTC()}
	if err := store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	sessions := accounts.NewSessions(store, [][]byte{sealKey(3), sealKey(4)}, accounts.SessionConfig{})
	h := &accounts.Handler{
		Store: store, Sessions: sessions, Logger: slog.New(slog.DiscardHandler),
		NewPage: func(*http.Request, string) templates.Page { return templates.Page{} },
		Limiter: &accounts.StoreLimiter{Store: store}, Now: time.Now,
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(sessions.Middleware(mux))
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func(password string) int {
		t.Helper()
		resp, err := client.PostForm(srv.URL+"/login", url.Values{"username": {"alice"}, "password": {password}, "return_to": {"/"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	stored := func() string {
		t.Helper()
		got, err := store.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.PasswordHash
	}

	if code := signIn("wrong password here"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	if stored() != old {
		t.Fatal("a wrong password replaced the hash")
	}
	if code := signIn("correct horse battery"); code != http.StatusSeeOther {
		t.Fatalf("right password with an old hash: %d, want 303", code)
	}
	now := stored()
	if now == old || !strings.Contains(now, "$m=7168,t=5,p=2$") {
		t.Fatalf("hash after sign-in = %q, want today's parameters", now)
	}
	if ok, err := accounts.CheckPassword(now, "correct horse battery"); err != nil || !ok {
		t.Fatalf("the new hash does not verify the password: %v %v", ok, err)
	}
	if code := signIn("correct horse battery"); code != http.StatusSeeOther || stored() != now {
		t.Fatalf("second sign-in: %d, hash changed %v; want 303 and the same hash", code, stored() != now)
	}
}

// oldHash is password hashed with the parameters Gatehouse used before:
// 12 MiB, 3 passes.
func oldHash(password string) string {
	salt := []byte("0123456789abcdef")
	enc := base64.RawStdEncoding.EncodeToString
	return "$argon2id$v=19$m=12288,t=3,p=1$" + enc(salt) + "$" + enc(argon2.IDKey([]byte(password), salt, 3, 12*1024, 1, 32))
}
