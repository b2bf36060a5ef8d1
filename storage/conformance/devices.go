package conformance

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/storage"
)

func newDeviceCode(clientID string) storage.DeviceCode {
	return storage.DeviceCode{
		Signature:    storage.NewID(),
		UserCodeHash: storage.NewID(),
		ClientID:     clientID,
		Status:       storage.DevicePending,
		Interval:     5 * time.Second,
		RequestedAt:  base,
		ExpiresAt:    at(10 * time.Minute),
		Data:         []byte(`{"id":"r"}`),
	}
}

var deviceTests = []test{
	{"CreateAndGet", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		c := mustCreateClient(t, s, "")
		d := newDeviceCode(c.ID)
		mustOK(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, d))
		got, err := s.GetDeviceCode(ctx, d.Signature)
		mustOK(t, "GetDeviceCode", err)
		if diff := cmp.Diff(d, got); diff != "" {
			t.Errorf("GetDeviceCode (-want +got):\n%s", diff)
		}
		got, err = s.GetDeviceCodeByUserCode(ctx, d.UserCodeHash)
		mustOK(t, "GetDeviceCodeByUserCode", err)
		if got.Signature != d.Signature {
			t.Errorf("GetDeviceCodeByUserCode found %q, want %q", got.Signature, d.Signature)
		}
		_, err = s.GetDeviceCode(ctx, "missing")
		wantErr(t, "GetDeviceCode(missing)", err, storage.ErrNotFound)
		_, err = s.GetDeviceCodeByUserCode(ctx, "missing")
		wantErr(t, "GetDeviceCodeByUserCode(missing)", err, storage.ErrNotFound)
		dup := newDeviceCode(c.ID)
		dup.UserCodeHash = d.UserCodeHash
		wantErr(t, "CreateDeviceCode(taken user code)", s.CreateDeviceCode(ctx, dup), storage.ErrConflict)
	}},
	{"PollKeepsTimeAndInterval", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		d := newDeviceCode(mustCreateClient(t, s, "").ID)
		mustOK(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, d))
		mustOK(t, "PollDeviceCode", s.PollDeviceCode(ctx, d.Signature, at(time.Second), 10*time.Second))
		got, err := s.GetDeviceCode(ctx, d.Signature)
		mustOK(t, "GetDeviceCode", err)
		if !got.LastPolledAt.Equal(at(time.Second)) || got.Interval != 10*time.Second {
			t.Errorf("after poll: last polled %v, interval %v", got.LastPolledAt, got.Interval)
		}
		wantErr(t, "PollDeviceCode(missing)", s.PollDeviceCode(ctx, "missing", base, time.Second), storage.ErrNotFound)
	}},
	{"DecideThenConsumeOnce", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		d := newDeviceCode(mustCreateClient(t, s, "").ID)
		mustOK(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, d))
		wantErr(t, "ConsumeDeviceCode(pending)", s.ConsumeDeviceCode(ctx, d.Signature), storage.ErrInactive)
		mustOneWinner(t, race(8, func(int) error {
			return s.DecideDeviceCode(ctx, d.Signature, storage.DeviceApproved, "user", []byte(`{"granted":true}`))
		}))
		got, err := s.GetDeviceCode(ctx, d.Signature)
		mustOK(t, "GetDeviceCode", err)
		if got.Status != storage.DeviceApproved || got.Subject != "user" || string(got.Data) != `{"granted":true}` {
			t.Errorf("after approval: %+v", got)
		}
		mustOneWinner(t, race(8, func(int) error { return s.ConsumeDeviceCode(ctx, d.Signature) }))
		if got, _ := s.GetDeviceCode(ctx, d.Signature); got.Status != storage.DeviceUsed {
			t.Errorf("status after consuming = %q", got.Status)
		}
		wantErr(t, "DecideDeviceCode(missing)", s.DecideDeviceCode(ctx, "missing", storage.DeviceDenied, "u", nil), storage.ErrNotFound)
		wantErr(t, "ConsumeDeviceCode(missing)", s.ConsumeDeviceCode(ctx, "missing"), storage.ErrNotFound)
	}},
	{"ExpiredAndClientDeletion", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		c := mustCreateClient(t, s, "")
		old, fresh := newDeviceCode(c.ID), newDeviceCode(c.ID)
		old.ExpiresAt = at(-time.Minute)
		mustOK(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, old))
		mustOK(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, fresh))
		_, err := s.DeleteExpired(ctx, base)
		mustOK(t, "DeleteExpired", err)
		_, err = s.GetDeviceCode(ctx, old.Signature)
		wantErr(t, "GetDeviceCode(expired)", err, storage.ErrNotFound)
		_, err = s.GetDeviceCode(ctx, fresh.Signature)
		mustOK(t, "GetDeviceCode(fresh)", err)
		mustOK(t, "DeleteClient", s.DeleteClient(ctx, c.ID))
		_, err = s.GetDeviceCode(ctx, fresh.Signature)
		wantErr(t, "GetDeviceCode(after client deletion)", err, storage.ErrNotFound)
	}},
}

var graceTests = []test{
	{"CreateSealGet", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		c := mustCreateClient(t, s, "")
		g := storage.RefreshGrace{Signature: storage.NewID(), ClientID: c.ID, RequestID: "r", RotatedAt: base, ExpiresAt: at(30 * time.Second)}
		mustOK(t, "CreateRefreshGrace", s.CreateRefreshGrace(ctx, g))
		wantErr(t, "CreateRefreshGrace(again)", s.CreateRefreshGrace(ctx, g), storage.ErrConflict)
		got, err := s.GetRefreshGrace(ctx, g.Signature)
		mustOK(t, "GetRefreshGrace", err)
		if diff := cmp.Diff(g, got); diff != "" {
			t.Errorf("before sealing (-want +got):\n%s", diff)
		}
		mustOK(t, "SealRefreshGrace", s.SealRefreshGrace(ctx, g.Signature, []byte("sealed")))
		g.Sealed = []byte("sealed")
		got, err = s.GetRefreshGrace(ctx, g.Signature)
		mustOK(t, "GetRefreshGrace", err)
		if diff := cmp.Diff(g, got); diff != "" {
			t.Errorf("after sealing (-want +got):\n%s", diff)
		}
		wantErr(t, "SealRefreshGrace(missing)", s.SealRefreshGrace(ctx, "missing", []byte("x")), storage.ErrNotFound)
		_, err = s.GetRefreshGrace(ctx, "missing")
		wantErr(t, "GetRefreshGrace(missing)", err, storage.ErrNotFound)
		_, err = s.DeleteExpired(ctx, at(time.Minute))
		mustOK(t, "DeleteExpired", err)
		_, err = s.GetRefreshGrace(ctx, g.Signature)
		wantErr(t, "GetRefreshGrace(expired)", err, storage.ErrNotFound)
	}},
}

var logoutTests = []test{
	{"PostLogoutRedirectURIsRoundTrip", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		c := mustCreateClient(t, s, "")
		c.PostLogoutRedirectURIs = []string{"https://app.example/bye"}
		c.UpdatedAt = at(time.Minute)
		mustOK(t, "UpdateClient", s.UpdateClient(ctx, c))
		got, err := s.GetClient(ctx, c.ID)
		mustOK(t, "GetClient", err)
		if diff := cmp.Diff(c.PostLogoutRedirectURIs, got.PostLogoutRedirectURIs); diff != "" {
			t.Errorf("post-logout redirect URIs (-want +got):\n%s", diff)
		}
	}},
}
