package conformance

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/storage"
)

var emailTests = []test{
	{"SetAndFindVerifiedEmail", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		mustOK(t, "SetUserEmail", s.SetUserEmail(ctx, u.ID, "Alice@Example.com", false))
		got, err := s.GetUser(ctx, u.ID)
		mustOK(t, "GetUser", err)
		if got.Email != "Alice@Example.com" || got.EmailVerified {
			t.Fatalf("after SetUserEmail: %q verified=%v", got.Email, got.EmailVerified)
		}
		_, err = s.GetUserByVerifiedEmail(ctx, "alice@example.com")
		wantErr(t, "GetUserByVerifiedEmail before verifying", err, storage.ErrNotFound)
		mustOK(t, "VerifyUserEmail", s.VerifyUserEmail(ctx, u.ID, "ALICE@example.COM"))
		got, err = s.GetUserByVerifiedEmail(ctx, "aLiCe@example.com")
		mustOK(t, "GetUserByVerifiedEmail", err)
		if got.ID != u.ID || !got.EmailVerified {
			t.Fatalf("GetUserByVerifiedEmail = %+v", got)
		}
		wantErr(t, "SetUserEmail unknown", s.SetUserEmail(ctx, "nobody", "x@example.com", false), storage.ErrNotFound)
	}},
	{"VerifyNeedsTheSameAddress", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		wantErr(t, "VerifyUserEmail without address", s.VerifyUserEmail(ctx, u.ID, ""), storage.ErrNotFound)
		mustOK(t, "SetUserEmail", s.SetUserEmail(ctx, u.ID, "new@example.com", false))
		wantErr(t, "VerifyUserEmail old address", s.VerifyUserEmail(ctx, u.ID, "old@example.com"), storage.ErrNotFound)
	}},
	{"VerifiedAddressesAreUnique", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		a, b := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		mustOK(t, "SetUserEmail a", s.SetUserEmail(ctx, a.ID, "shared@example.com", true))
		// An unverified copy claims nothing and is allowed.
		mustOK(t, "SetUserEmail b", s.SetUserEmail(ctx, b.ID, "SHARED@example.com", false))
		wantErr(t, "VerifyUserEmail b", s.VerifyUserEmail(ctx, b.ID, "shared@example.com"), storage.ErrConflict)
		wantErr(t, "SetUserEmail b verified", s.SetUserEmail(ctx, b.ID, "Shared@Example.com", true), storage.ErrConflict)
	}},
	{"SetUserPassword", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		mustOK(t, "SetUserPassword", s.SetUserPassword(ctx, u.ID, "new-hash"))
		got, err := s.GetUser(ctx, u.ID)
		mustOK(t, "GetUser", err)
		if got.PasswordHash != "new-hash" {
			t.Fatalf("hash = %q", got.PasswordHash)
		}
		wantErr(t, "SetUserPassword unknown", s.SetUserPassword(ctx, "nobody", "h"), storage.ErrNotFound)
	}},
	{"ReplacePasswordHash", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		mustOK(t, "ReplacePasswordHash", s.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, "rehashed"))
		wantErr(t, "ReplacePasswordHash stale", s.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, "other"), storage.ErrNotFound)
		got, err := s.GetUser(ctx, u.ID)
		mustOK(t, "GetUser", err)
		if got.PasswordHash != "rehashed" {
			t.Fatalf("hash = %q, want the first replacement only", got.PasswordHash)
		}
		wantErr(t, "ReplacePasswordHash unknown", s.ReplacePasswordHash(ctx, "nobody", "rehashed", "h"), storage.ErrNotFound)
	}},
	{"EmailTokensAreSingleUse", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		tok := storage.EmailToken{Hash: "h1", Purpose: storage.PurposeReset, UserID: u.ID, Email: "a@example.com",
			CreatedAt: base, ExpiresAt: at(30 * time.Minute)}
		mustOK(t, "CreateEmailToken", s.CreateEmailToken(ctx, tok))
		wantErr(t, "CreateEmailToken again", s.CreateEmailToken(ctx, tok), storage.ErrConflict)
		got, err := s.GetEmailToken(ctx, "h1")
		mustOK(t, "GetEmailToken", err)
		if diff := cmp.Diff(tok, got); diff != "" {
			t.Fatalf("GetEmailToken (-want +got):\n%s", diff)
		}
		mustOK(t, "UseEmailToken", s.UseEmailToken(ctx, "h1", at(time.Minute)))
		wantErr(t, "UseEmailToken twice", s.UseEmailToken(ctx, "h1", at(2*time.Minute)), storage.ErrInactive)
		wantErr(t, "UseEmailToken unknown", s.UseEmailToken(ctx, "h2", at(time.Minute)), storage.ErrNotFound)
		got, err = s.GetEmailToken(ctx, "h1")
		mustOK(t, "GetEmailToken used", err)
		if got.UsedAt == nil || !got.UsedAt.Equal(at(time.Minute)) {
			t.Fatalf("UsedAt = %v", got.UsedAt)
		}
		_, err = s.GetEmailToken(ctx, "h2")
		wantErr(t, "GetEmailToken unknown", err, storage.ErrNotFound)
	}},
	{"ExpiredEmailTokensAreDeleted", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		for _, h := range []string{"old", "new"} {
			exp := at(time.Minute)
			if h == "new" {
				exp = at(time.Hour)
			}
			mustOK(t, "CreateEmailToken", s.CreateEmailToken(ctx, storage.EmailToken{Hash: h, Purpose: storage.PurposeVerify,
				UserID: u.ID, Email: "a@example.com", CreatedAt: base, ExpiresAt: exp}))
		}
		if _, err := s.DeleteExpired(ctx, at(10*time.Minute)); err != nil {
			t.Fatalf("DeleteExpired: %v", err)
		}
		_, err := s.GetEmailToken(ctx, "old")
		wantErr(t, "GetEmailToken old", err, storage.ErrNotFound)
		_, err = s.GetEmailToken(ctx, "new")
		mustOK(t, "GetEmailToken new", err)
	}},
}
