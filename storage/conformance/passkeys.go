package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/storage"
)

func newPasskey(u storage.User, name string, created time.Time) storage.Passkey {
	return storage.Passkey{
		ID: storage.NewID(), UserID: u.ID, Name: name,
		CredentialID: []byte("cred-" + storage.NewID()), PublicKey: []byte{0xa5, 0x01, 0x02},
		AAGUID: make([]byte, 16), Transports: []string{"internal", "hybrid"},
		BackupEligible: true, BackupState: true, CreatedAt: created,
	}
}

func mustCreatePasskey(t *testing.T, s storage.Store, p storage.Passkey) storage.Passkey {
	t.Helper()
	mustOK(t, "CreatePasskey", s.CreatePasskey(t.Context(), p))
	return p
}

func newChallenge(purpose, binding, userID string, expires time.Time) storage.WebAuthnChallenge {
	return storage.WebAuthnChallenge{Hash: storage.NewID(), Purpose: purpose, Binding: binding, UserID: userID,
		Data: []byte(`{"challenge":"x"}`), CreatedAt: expires.Add(-5 * time.Minute), ExpiresAt: expires}
}

var passkeyTests = []test{
	{"RoundTrip", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		first := mustCreatePasskey(t, s, newPasskey(alice, "Laptop", at(0)))
		second := newPasskey(alice, "Phone", at(time.Minute).In(time.FixedZone("UTC-5", -5*3600)))
		second.BackupEligible, second.BackupState, second.Transports, second.SignCount = false, false, nil, 7
		mustCreatePasskey(t, s, second)
		mustCreatePasskey(t, s, newPasskey(bob, "Key", at(0)))
		got, err := s.ListPasskeys(ctx, alice.ID)
		mustOK(t, "ListPasskeys", err)
		second.CreatedAt = second.CreatedAt.UTC()
		if diff := cmp.Diff([]storage.Passkey{first, second}, got, equateEmpty); diff != "" {
			t.Fatalf("ListPasskeys (-want +got):\n%s", diff)
		}
		p, err := s.GetPasskeyByCredentialID(ctx, first.CredentialID)
		mustOK(t, "GetPasskeyByCredentialID", err)
		if diff := cmp.Diff(first, p, equateEmpty); diff != "" {
			t.Fatalf("GetPasskeyByCredentialID (-want +got):\n%s", diff)
		}
		_, err = s.GetPasskeyByCredentialID(ctx, []byte("nope"))
		wantErr(t, "get unknown", err, storage.ErrNotFound)
	}},
	{"CredentialIDUnique", func(t *testing.T, s storage.Store) {
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		p := mustCreatePasskey(t, s, newPasskey(alice, "Laptop", at(0)))
		again := newPasskey(bob, "Stolen", at(0))
		again.CredentialID = p.CredentialID
		wantErr(t, "same credential id", s.CreatePasskey(t.Context(), again), storage.ErrConflict)
	}},
	{"RenameIsScopedToOwner", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		p := mustCreatePasskey(t, s, newPasskey(alice, "Laptop", at(0)))
		wantErr(t, "rename by another user", s.RenamePasskey(ctx, bob.ID, p.ID, "Mine"), storage.ErrNotFound)
		mustOK(t, "rename", s.RenamePasskey(ctx, alice.ID, p.ID, "Work laptop"))
		got, err := s.GetPasskeyByCredentialID(ctx, p.CredentialID)
		mustOK(t, "get", err)
		if got.Name != "Work laptop" {
			t.Fatalf("name = %q, want %q", got.Name, "Work laptop")
		}
	}},
	{"DeleteKeepsLastWayToSignIn", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		withPassword, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		only := mustCreatePasskey(t, s, newPasskey(withPassword, "Laptop", at(0)))
		wantErr(t, "delete by another user", s.DeletePasskey(ctx, bob.ID, only.ID), storage.ErrNotFound)
		mustOK(t, "delete last passkey of a user with a password", s.DeletePasskey(ctx, withPassword.ID, only.ID))
		wantErr(t, "delete again", s.DeletePasskey(ctx, withPassword.ID, only.ID), storage.ErrNotFound)

		noPassword := newUser("carol")
		noPassword.PasswordHash = ""
		mustOK(t, "CreateUser", s.CreateUser(ctx, noPassword))
		a := mustCreatePasskey(t, s, newPasskey(noPassword, "Laptop", at(0)))
		b := mustCreatePasskey(t, s, newPasskey(noPassword, "Phone", at(time.Second)))
		mustOK(t, "delete one of two", s.DeletePasskey(ctx, noPassword.ID, a.ID))
		wantErr(t, "delete the last", s.DeletePasskey(ctx, noPassword.ID, b.ID), storage.ErrLastPasskey)
		got, err := s.ListPasskeys(ctx, noPassword.ID)
		mustOK(t, "ListPasskeys", err)
		if len(got) != 1 || got[0].ID != b.ID {
			t.Fatalf("passkeys left = %v, want only %q", got, b.ID)
		}
	}},
	{"RacingDeletesKeepOne", func(t *testing.T, s storage.Store) {
		u := newUser("carol")
		u.PasswordHash = ""
		mustOK(t, "CreateUser", s.CreateUser(t.Context(), u))
		keys := []storage.Passkey{
			mustCreatePasskey(t, s, newPasskey(u, "Laptop", at(0))),
			mustCreatePasskey(t, s, newPasskey(u, "Phone", at(time.Second))),
		}
		errs := race(2, func(i int) error { return s.DeletePasskey(context.Background(), u.ID, keys[i].ID) })
		refused := 0
		for i, err := range errs {
			switch {
			case errors.Is(err, storage.ErrLastPasskey):
				refused++
			case err != nil:
				t.Fatalf("delete %d: %v", i, err)
			}
		}
		got, err := s.ListPasskeys(t.Context(), u.ID)
		mustOK(t, "ListPasskeys", err)
		if refused != 1 || len(got) != 1 {
			t.Fatalf("%d deletes refused and %d passkeys left, want 1 and 1", refused, len(got))
		}
	}},
	{"UseMovesCountForward", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		p := newPasskey(u, "Key", at(0))
		p.SignCount = 5
		mustCreatePasskey(t, s, p)
		mustOK(t, "use with 6", s.UsePasskey(ctx, p.CredentialID, 6, false, at(time.Minute)))
		wantErr(t, "use with 6 again", s.UsePasskey(ctx, p.CredentialID, 6, false, at(2*time.Minute)), storage.ErrInactive)
		wantErr(t, "use with 3", s.UsePasskey(ctx, p.CredentialID, 3, false, at(2*time.Minute)), storage.ErrInactive)
		wantErr(t, "unknown credential", s.UsePasskey(ctx, []byte("nope"), 9, false, at(0)), storage.ErrNotFound)
		got, err := s.GetPasskeyByCredentialID(ctx, p.CredentialID)
		mustOK(t, "get", err)
		if got.SignCount != 6 || got.BackupState || got.LastUsedAt == nil || !got.LastUsedAt.Equal(at(time.Minute)) {
			t.Fatalf("after use: count %d, backup state %v, last used %v", got.SignCount, got.BackupState, got.LastUsedAt)
		}

		// Synced passkeys keep no counter: 0 after 0 is every sign-in.
		synced := mustCreatePasskey(t, s, newPasskey(u, "Synced", at(0)))
		mustOK(t, "use with 0", s.UsePasskey(ctx, synced.CredentialID, 0, true, at(time.Minute)))
		mustOK(t, "use with 0 again", s.UsePasskey(ctx, synced.CredentialID, 0, true, at(2*time.Minute)))
	}},
	{"ChallengeIsSingleUseAndBound", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		c := newChallenge("login", "browser-a", "", at(5*time.Minute))
		mustOK(t, "create", s.CreateWebAuthnChallenge(ctx, c))
		wantErr(t, "create again", s.CreateWebAuthnChallenge(ctx, c), storage.ErrConflict)
		_, err := s.ConsumeWebAuthnChallenge(ctx, c.Hash, "login", "browser-b", at(0))
		wantErr(t, "another browser", err, storage.ErrNotFound)
		_, err = s.ConsumeWebAuthnChallenge(ctx, c.Hash, "register", "browser-a", at(0))
		wantErr(t, "another purpose", err, storage.ErrNotFound)
		got, err := s.ConsumeWebAuthnChallenge(ctx, c.Hash, "login", "browser-a", at(0).In(time.FixedZone("UTC+9", 9*3600)))
		mustOK(t, "consume", err)
		if diff := cmp.Diff(c, got); diff != "" {
			t.Fatalf("consumed (-want +got):\n%s", diff)
		}
		_, err = s.ConsumeWebAuthnChallenge(ctx, c.Hash, "login", "browser-a", at(0))
		wantErr(t, "replay", err, storage.ErrNotFound)

		expired := newChallenge("register", "session", "u1", at(time.Minute))
		mustOK(t, "create", s.CreateWebAuthnChallenge(ctx, expired))
		_, err = s.ConsumeWebAuthnChallenge(ctx, expired.Hash, "register", "session", at(time.Minute))
		wantErr(t, "expired", err, storage.ErrNotFound)
	}},
	{"RacingConsumesHaveOneWinner", func(t *testing.T, s storage.Store) {
		c := newChallenge("login", "browser", "", at(5*time.Minute))
		mustOK(t, "create", s.CreateWebAuthnChallenge(t.Context(), c))
		errs := race(8, func(int) error {
			_, err := s.ConsumeWebAuthnChallenge(context.Background(), c.Hash, "login", "browser", at(0))
			return err
		})
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("caller %d: %v", i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d callers consumed the challenge, want 1", wins)
		}
	}},
	{"ExpiredChallengesAreDeleted", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		old := newChallenge("login", "a", "", at(-time.Second))
		live := newChallenge("login", "a", "", at(time.Minute))
		mustOK(t, "create", s.CreateWebAuthnChallenge(ctx, old))
		mustOK(t, "create", s.CreateWebAuthnChallenge(ctx, live))
		_, err := s.DeleteExpired(ctx, at(0))
		mustOK(t, "DeleteExpired", err)
		_, err = s.ConsumeWebAuthnChallenge(ctx, old.Hash, "login", "a", at(-time.Minute))
		wantErr(t, "expired one after cleanup", err, storage.ErrNotFound)
		_, err = s.ConsumeWebAuthnChallenge(ctx, live.Hash, "login", "a", at(0))
		mustOK(t, "live one after cleanup", err)
	}},
	{"ResetMFARemovesPasskeys", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		mustCreatePasskey(t, s, newPasskey(alice, "Laptop", at(0)))
		mustCreatePasskey(t, s, newPasskey(alice, "Phone", at(0)))
		kept := mustCreatePasskey(t, s, newPasskey(bob, "Key", at(0)))
		mustOK(t, "ResetMFA", s.ResetMFA(ctx, alice.ID))
		if got, err := s.ListPasskeys(ctx, alice.ID); err != nil || len(got) != 0 {
			t.Fatalf("passkeys after ResetMFA = %v (%v), want none", got, err)
		}
		if got, err := s.ListPasskeys(ctx, bob.ID); err != nil || len(got) != 1 || got[0].ID != kept.ID {
			t.Fatalf("another user's passkeys after ResetMFA = %v (%v), want %q", got, err, kept.ID)
		}
	}},
	{"DeletedWithUser", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		p := mustCreatePasskey(t, s, newPasskey(u, "Key", at(0)))
		mustOK(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
		_, err := s.GetPasskeyByCredentialID(ctx, p.CredentialID)
		wantErr(t, "passkey of a deleted user", err, storage.ErrNotFound)
	}},
}
