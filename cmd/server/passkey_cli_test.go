package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/storage"
)

// TestResetMFARemovesPasskeys: server users reset-mfa takes the user's
// passkeys along with the authenticator app.
func TestResetMFARemovesPasskeys(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gatehouse.db")
	srv := newTestServer(t, "--db", db)
	alice := srv.mustCreateUser(t, "alice", "correct horse battery")
	bob := srv.mustCreateUser(t, "bob", "correct horse battery")
	for _, u := range []storage.User{alice, alice, bob} {
		err := srv.store.CreatePasskey(t.Context(), storage.Passkey{ID: storage.NewID(), UserID: u.ID, Name: "Laptop",
			CredentialID: []byte(storage.NewID()), PublicKey: []byte{1}, CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	out := mustRunCmd(t, nil, "", "users", "reset-mfa", "--username", "alice", "--db", db)
	if !strings.Contains(out, "2 passkeys") {
		t.Errorf("reset-mfa said %q, want it to name the 2 passkeys", out)
	}
	for _, tc := range []struct {
		user storage.User
		want int
	}{{alice, 0}, {bob, 1}} {
		keys, err := srv.store.ListPasskeys(t.Context(), tc.user.ID)
		if err != nil || len(keys) != tc.want {
			t.Errorf("%s has %d passkeys (%v) after reset-mfa of alice, want %d", tc.user.Username, len(keys), err, tc.want)
		}
	}
}
