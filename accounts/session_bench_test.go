package accounts_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gatehouse/accounts"
	"gatehouse/storage/sqlstore"
	"gatehouse/storage/storagetest"
)

// BenchmarkIdentity is what a session costs a request: decoding the
// cookie and one read of the session by its digest.
func BenchmarkIdentity(b *testing.B) {
	for _, backend := range []struct {
		name string
		dsn  func(testing.TB) string
	}{
		{"SQLite", storagetest.SQLitePath},
		{"Postgres", storagetest.PostgresDSN},
	} {
		b.Run(backend.name, func(b *testing.B) {
			store, err := sqlstore.Open(b.Context(), backend.dsn(b), sqlstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { store.Close() })
			user, err := accounts.Register(b.Context(), store, "alice", "correct horse battery", time.Now())
			if err != nil {
				b.Fatal(err)
			}
			sessions := accounts.NewSessions(store, [][]byte{make([]byte, 32), make([]byte, 32)}, accounts.SessionConfig{})
			rec := httptest.NewRecorder()
			if err := sessions.SignIn(rec, httptest.NewRequest(http.MethodGet, "/", nil), accounts.Identity{UserID: user.ID, Username: user.Username, AuthTime: time.Now()}); err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/apps", nil)
			req.Header.Set("Cookie", rec.Header().Get("Set-Cookie"))
			for b.Loop() {
				if _, ok := sessions.Identity(req); !ok {
					b.Fatal("signed out")
				}
			}
		})
	}
}
