package conformance

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/storage"
)

func mustRecoveryCount(t *testing.T, s storage.Store, userID string, want int) {
	t.Helper()
	n, err := s.CountRecoveryCodes(t.Context(), userID)
	mustOK(t, "CountRecoveryCodes", err)
	if n != want {
		t.Errorf("CountRecoveryCodes = %d, want %d", n, want)
	}
}

var twoStepTests = []test{
	{"EnableGetDisable", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		_, err := s.GetTOTP(ctx, alice.ID)
		wantErr(t, "GetTOTP before enabling", err, storage.ErrNotFound)
		want := storage.TOTP{UserID: alice.ID, Sealed: []byte{0, 1, 2, 0xff}, LastStep: 42, CreatedAt: base}
		mustOK(t, "EnableTOTP", s.EnableTOTP(ctx, want, []string{"h1", "h2", "h3"}))
		wantErr(t, "EnableTOTP twice", s.EnableTOTP(ctx, want, []string{"h4"}), storage.ErrConflict)
		got, err := s.GetTOTP(ctx, alice.ID)
		mustOK(t, "GetTOTP", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetTOTP (-want +got):\n%s", diff)
		}
		// The refused second EnableTOTP left the first codes alone.
		mustRecoveryCount(t, s, alice.ID, 3)
		mustRecoveryCount(t, s, bob.ID, 0)

		mustOK(t, "DisableTOTP", s.DisableTOTP(ctx, alice.ID))
		wantErr(t, "DisableTOTP again", s.DisableTOTP(ctx, alice.ID), storage.ErrNotFound)
		_, err = s.GetTOTP(ctx, alice.ID)
		wantErr(t, "GetTOTP after DisableTOTP", err, storage.ErrNotFound)
		mustRecoveryCount(t, s, alice.ID, 0)
		// Turned on again, it starts from a fresh set of codes.
		mustOK(t, "EnableTOTP after DisableTOTP", s.EnableTOTP(ctx, want, []string{"h1"}))
		mustRecoveryCount(t, s, alice.ID, 1)
		wantErr(t, "UseRecoveryCode of a dropped code", s.UseRecoveryCode(ctx, alice.ID, "h2", base), storage.ErrNotFound)
	}},
	{"StepsOnlyMoveForward", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		wantErr(t, "UseTOTPStep without an app", s.UseTOTPStep(ctx, u.ID, 1), storage.ErrNotFound)
		mustOK(t, "EnableTOTP", s.EnableTOTP(ctx, storage.TOTP{UserID: u.ID, Sealed: []byte("x"), LastStep: 100, CreatedAt: base}, nil))
		wantErr(t, "UseTOTPStep of the confirmation's step", s.UseTOTPStep(ctx, u.ID, 100), storage.ErrInactive)
		wantErr(t, "UseTOTPStep of an older step", s.UseTOTPStep(ctx, u.ID, 99), storage.ErrInactive)
		mustOK(t, "UseTOTPStep", s.UseTOTPStep(ctx, u.ID, 101))
		wantErr(t, "UseTOTPStep replayed", s.UseTOTPStep(ctx, u.ID, 101), storage.ErrInactive)
		mustOK(t, "UseTOTPStep later", s.UseTOTPStep(ctx, u.ID, 103))
		got, err := s.GetTOTP(ctx, u.ID)
		mustOK(t, "GetTOTP", err)
		if got.LastStep != 103 {
			t.Errorf("LastStep = %d, want 103", got.LastStep)
		}
	}},
	{"RacingStepsOneWins", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		mustOK(t, "EnableTOTP", s.EnableTOTP(ctx, storage.TOTP{UserID: u.ID, Sealed: []byte("x"), LastStep: 1, CreatedAt: base}, nil))
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = s.UseTOTPStep(ctx, u.ID, 2) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			default:
				wantErr(t, "racing UseTOTPStep", err, storage.ErrInactive)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d racing UseTOTPStep calls with one code succeeded, want 1", won, n)
		}
	}},
	{"RecoveryCodesOnce", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		wantErr(t, "ReplaceRecoveryCodes without an app", s.ReplaceRecoveryCodes(ctx, alice.ID, []string{"h1"}), storage.ErrNotFound)
		mustOK(t, "EnableTOTP", s.EnableTOTP(ctx, storage.TOTP{UserID: alice.ID, Sealed: []byte("x"), CreatedAt: base}, []string{"h1", "h2"}))
		wantErr(t, "UseRecoveryCode of another user", s.UseRecoveryCode(ctx, bob.ID, "h1", base), storage.ErrNotFound)
		mustOK(t, "UseRecoveryCode", s.UseRecoveryCode(ctx, alice.ID, "h1", base))
		wantErr(t, "UseRecoveryCode again", s.UseRecoveryCode(ctx, alice.ID, "h1", at(time.Second)), storage.ErrInactive)
		wantErr(t, "UseRecoveryCode unknown", s.UseRecoveryCode(ctx, alice.ID, "nope", base), storage.ErrNotFound)
		mustRecoveryCount(t, s, alice.ID, 1)

		mustOK(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, alice.ID, []string{"n1", "n2", "n3"}))
		mustRecoveryCount(t, s, alice.ID, 3)
		wantErr(t, "UseRecoveryCode of a replaced code", s.UseRecoveryCode(ctx, alice.ID, "h2", base), storage.ErrNotFound)
		mustOK(t, "UseRecoveryCode of a new code", s.UseRecoveryCode(ctx, alice.ID, "n2", base))
	}},
	{"ListAndReseal", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		list, err := s.ListTOTP(ctx)
		mustOK(t, "ListTOTP", err)
		if len(list) != 0 {
			t.Fatalf("ListTOTP without apps = %v", list)
		}
		a := storage.TOTP{UserID: alice.ID, Sealed: []byte("old-a"), LastStep: 7, CreatedAt: base}
		b := storage.TOTP{UserID: bob.ID, Sealed: []byte("old-b"), LastStep: 9, CreatedAt: at(time.Second)}
		mustOK(t, "EnableTOTP", s.EnableTOTP(ctx, a, nil))
		mustOK(t, "EnableTOTP", s.EnableTOTP(ctx, b, nil))
		list, err = s.ListTOTP(ctx)
		mustOK(t, "ListTOTP", err)
		want := []storage.TOTP{a, b}
		if alice.ID > bob.ID {
			want = []storage.TOTP{b, a}
		}
		if diff := cmp.Diff(want, list); diff != "" {
			t.Errorf("ListTOTP (-want +got):\n%s", diff)
		}
		mustOK(t, "ResealTOTP", s.ResealTOTP(ctx, alice.ID, []byte("old-a"), []byte("new-a")))
		wantErr(t, "ResealTOTP from a secret no longer there", s.ResealTOTP(ctx, alice.ID, []byte("old-a"), []byte("newer-a")), storage.ErrNotFound)
		got, err := s.GetTOTP(ctx, alice.ID)
		mustOK(t, "GetTOTP", err)
		if string(got.Sealed) != "new-a" || got.LastStep != 7 {
			t.Errorf("after ResealTOTP: %+v", got)
		}
	}},
	{"ResetMFA", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		mustOK(t, "ResetMFA with nothing to remove", s.ResetMFA(ctx, alice.ID))
		for _, u := range []storage.User{alice, bob} {
			mustOK(t, "EnableTOTP", s.EnableTOTP(ctx, storage.TOTP{UserID: u.ID, Sealed: []byte("x"), CreatedAt: base}, []string{"h1", "h2"}))
		}
		mustOK(t, "ResetMFA", s.ResetMFA(ctx, alice.ID))
		_, err := s.GetTOTP(ctx, alice.ID)
		wantErr(t, "GetTOTP after ResetMFA", err, storage.ErrNotFound)
		mustRecoveryCount(t, s, alice.ID, 0)
		// Another user's factors stay.
		if _, err := s.GetTOTP(ctx, bob.ID); err != nil {
			t.Errorf("GetTOTP of another user after ResetMFA: %v", err)
		}
		mustRecoveryCount(t, s, bob.ID, 2)
		// Deleting a user takes the factors along.
		mustOK(t, "DeleteUser", s.DeleteUser(ctx, bob.ID))
		mustRecoveryCount(t, s, bob.ID, 0)
	}},
}
