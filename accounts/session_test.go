package accounts_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gatehouse/accounts"
	"gatehouse/storage/sqlstore"
	"gatehouse/storage/storagetest"
)

// TestEndSessions covers what "sign out everywhere else", a password
// change and disabling a user rely on.
func TestEndSessions(t *testing.T) {
	store, err := sqlstore.Open(t.Context(), storagetest.SQLitePath(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Now()
	sessions := accounts.NewSessions(store, [][]byte{make([]byte, 32), make([]byte, 32)}, accounts.SessionConfig{Now: func() time.Time { return now }})
	user, err := accounts.Register(t.Context(), store, "alice", "correct horse battery", now)
	if err != nil {
		t.Fatal(err)
	}
	// browsers are requests carrying the cookies of three sign-ins.
	var browsers []*http.Request
	for range 3 {
		rec := httptest.NewRecorder()
		if err := sessions.SignIn(rec, httptest.NewRequest(http.MethodGet, "/", nil), accounts.Identity{UserID: user.ID, Username: user.Username, AuthTime: now}); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, c := range rec.Result().Cookies() {
			r.AddCookie(c)
		}
		browsers = append(browsers, r)
	}
	identity := func(i int) accounts.Identity {
		id, _ := sessions.Identity(browsers[i])
		return id
	}
	if list, err := sessions.ListSessions(t.Context(), user.ID); err != nil || len(list) != 3 {
		t.Fatalf("ListSessions: %d sessions (%v), want 3", len(list), err)
	}

	if err := sessions.EndSession(t.Context(), user.ID, identity(0).SessionID); err != nil {
		t.Fatal(err)
	}
	if _, ok := sessions.Identity(browsers[0]); ok {
		t.Fatal("an ended session still signs in")
	}
	if n, err := sessions.EndOtherSessions(t.Context(), user.ID, identity(1).SessionID); err != nil || n != 1 {
		t.Fatalf("EndOtherSessions = %d, %v; want 1", n, err)
	}
	if _, ok := sessions.Identity(browsers[2]); ok {
		t.Fatal("a session ended by EndOtherSessions still signs in")
	}
	if id := identity(1); id.UserID != user.ID || id.Username != "alice" || !id.AuthTime.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("the kept session: %+v", id)
	}

	// Past the idle timeout a session is neither signed in nor listed.
	now = now.Add(accounts.DefaultSessionIdleTimeout)
	if list, err := sessions.ListSessions(t.Context(), user.ID); err != nil || len(list) != 0 {
		t.Fatalf("ListSessions after the idle timeout: %d sessions (%v), want none", len(list), err)
	}
	if n, err := sessions.EndOtherSessions(t.Context(), user.ID, ""); err != nil || n != 1 {
		t.Fatalf("EndOtherSessions of all = %d, %v; want 1", n, err)
	}
}

// TestSignInRefusesDisabled: SignIn, where every way of signing in ends,
// refuses a disabled account and sets no cookie; enabled again, it signs
// in.
func TestSignInRefusesDisabled(t *testing.T) {
	store, err := sqlstore.Open(t.Context(), storagetest.SQLitePath(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sessions := accounts.NewSessions(store, [][]byte{make([]byte, 32), make([]byte, 32)}, accounts.SessionConfig{})
	user, err := accounts.Register(t.Context(), store, "alice", "correct horse battery", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signIn := func() (*httptest.ResponseRecorder, error) {
		rec := httptest.NewRecorder()
		return rec, sessions.SignIn(rec, httptest.NewRequest(http.MethodPost, "/login", nil), accounts.Identity{UserID: user.ID, Username: user.Username})
	}
	if _, _, err := store.DisableUser(t.Context(), user.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	rec, err := signIn()
	if !errors.Is(err, accounts.ErrAccountDisabled) || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("SignIn of a disabled user: %v with cookies %v; want ErrAccountDisabled and none", err, rec.Result().Cookies())
	}
	if list, _ := store.ListSessions(t.Context(), user.ID); len(list) != 0 {
		t.Fatalf("SignIn of a disabled user stored %d sessions", len(list))
	}
	if err := store.EnableUser(t.Context(), user.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := signIn(); err != nil {
		t.Fatalf("SignIn after EnableUser: %v", err)
	}
}
