package conformance

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"gatehouse/audit"
	"gatehouse/storage"
)

var userAdminTests = []test{
	{"ListOldestFirst", func(t *testing.T, s storage.Store) {
		a := mustCreateUser(t, s, "older")
		b := newUser("newer")
		b.CreatedAt = at(time.Minute)
		mustOK(t, "CreateUser", s.CreateUser(t.Context(), b))
		got, err := s.ListUsers(t.Context())
		mustOK(t, "ListUsers", err)
		if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
			t.Fatalf("ListUsers = %+v, want older then newer", got)
		}
	}},
	{"DeleteTakesGrantsTokensAndClients", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "leaving")
		other := mustCreateUser(t, s, "staying")
		owned := mustCreateClient(t, s, u.ID)
		cli := mustCreateClient(t, s, "")
		mustOK(t, "PutGrant", s.PutGrant(ctx, storage.Grant{UserID: u.ID, ClientID: cli.ID, Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}))
		gone := mustCreateToken(t, s, newToken(storage.KindRefresh, cli.ID, u.ID, "r1"))
		kept := mustCreateToken(t, s, newToken(storage.KindRefresh, cli.ID, other.ID, "r2"))

		mustOK(t, "DeleteUser", s.DeleteUser(ctx, u.ID))
		_, err := s.GetUser(ctx, u.ID)
		wantErr(t, "GetUser", err, storage.ErrNotFound)
		_, err = s.GetGrant(ctx, u.ID, cli.ID)
		wantErr(t, "GetGrant", err, storage.ErrNotFound)
		_, err = s.GetClient(ctx, owned.ID)
		wantErr(t, "GetClient(owned)", err, storage.ErrNotFound)
		mustTokens(t, s, []storage.Token{kept}, []storage.Token{gone})
		wantErr(t, "DeleteUser again", s.DeleteUser(ctx, u.ID), storage.ErrNotFound)
	}},
	{"DisableEndsSessionsAndTokens", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "leaving")
		other := mustCreateUser(t, s, "staying")
		cli := mustCreateClient(t, s, "")
		mustOK(t, "PutGrant", s.PutGrant(ctx, storage.Grant{UserID: u.ID, ClientID: cli.ID, Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}))
		mustCreateSession(t, s, newSession(u, base))
		mustCreateSession(t, s, newSession(u, at(time.Minute)))
		kept := mustCreateSession(t, s, newSession(other, base))
		var gone []storage.Token
		for _, kind := range []storage.TokenKind{storage.KindCode, storage.KindAccess, storage.KindRefresh} {
			gone = append(gone, mustCreateToken(t, s, newToken(kind, cli.ID, u.ID, "r1")))
		}
		keptToken := mustCreateToken(t, s, newToken(storage.KindRefresh, cli.ID, other.ID, "r2"))
		grace := storage.RefreshGrace{Signature: storage.NewID(), ClientID: cli.ID, RequestID: "r1", RotatedAt: base, ExpiresAt: at(time.Minute)}
		mustOK(t, "CreateRefreshGrace", s.CreateRefreshGrace(ctx, grace))
		approved := newDeviceCode(cli.ID)
		mustOK(t, "CreateDeviceCode", s.CreateDeviceCode(ctx, approved))
		mustOK(t, "DecideDeviceCode", s.DecideDeviceCode(ctx, approved.Signature, storage.DeviceApproved, u.ID, approved.Data))

		sessions, tokens, err := s.DisableUser(ctx, u.ID, at(time.Hour))
		mustOK(t, "DisableUser", err)
		if sessions != 2 || tokens != 3 {
			t.Errorf("DisableUser ended %d sessions and %d tokens, want 2 and 3", sessions, tokens)
		}
		got, err := s.GetUser(ctx, u.ID)
		mustOK(t, "GetUser", err)
		if got.DisabledAt == nil || !got.DisabledAt.Equal(at(time.Hour)) {
			t.Fatalf("DisabledAt = %v, want %v", got.DisabledAt, at(time.Hour))
		}
		mustSessions(t, s, u.ID)
		mustSessions(t, s, other.ID, kept)
		mustTokens(t, s, []storage.Token{keptToken}, gone)
		_, err = s.GetRefreshGrace(ctx, grace.Signature)
		wantErr(t, "GetRefreshGrace of a disabled user's token", err, storage.ErrNotFound)
		_, err = s.GetDeviceCode(ctx, approved.Signature)
		wantErr(t, "GetDeviceCode approved by a disabled user", err, storage.ErrNotFound)
		if _, err := s.GetGrant(ctx, u.ID, cli.ID); err != nil {
			t.Errorf("GetGrant after DisableUser: %v; consent stays for when the account is enabled again", err)
		}

		// A session written after (a sign-in racing the disabling) signs
		// no one in.
		late := mustCreateSession(t, s, newSession(u, at(2*time.Hour)))
		_, err = s.GetSession(ctx, late.IDHash)
		wantErr(t, "GetSession of a disabled user", err, storage.ErrNotFound)
		if _, _, err := s.DisableUser(ctx, u.ID, at(3*time.Hour)); err != nil {
			t.Fatalf("DisableUser again: %v", err)
		}
		if got, _ := s.GetUser(ctx, u.ID); got.DisabledAt == nil || !got.DisabledAt.Equal(at(time.Hour)) {
			t.Errorf("DisabledAt after disabling again = %v, want the first time %v", got.DisabledAt, at(time.Hour))
		}

		mustOK(t, "EnableUser", s.EnableUser(ctx, u.ID))
		if got, _ := s.GetUserByUsername(ctx, u.Username); got.DisabledAt != nil {
			t.Errorf("DisabledAt after EnableUser = %v, want nil", got.DisabledAt)
		}
		again := mustCreateSession(t, s, newSession(u, at(4*time.Hour)))
		if _, err := s.GetSession(ctx, again.IDHash); err != nil {
			t.Errorf("GetSession after EnableUser: %v", err)
		}
		_, _, err = s.DisableUser(ctx, "nobody", base)
		wantErr(t, "DisableUser unknown", err, storage.ErrNotFound)
		wantErr(t, "EnableUser unknown", s.EnableUser(ctx, "nobody"), storage.ErrNotFound)
	}},
}

func newEvent(typ audit.Type, d time.Duration, subject, client string) audit.Event {
	return audit.Event{ID: storage.NewID(), Time: at(d), Type: typ, Actor: subject, Subject: subject, Client: client,
		Address: "192.0.2.1", RequestID: "req", Detail: map[string]string{"scope": "openid"}}
}

var auditTests = []test{
	{"AppendAndListNewestFirst", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		first := newEvent(audit.SignIn, 0, "u1", "")
		second := newEvent(audit.ConsentGranted, time.Second, "u1", "c1")
		second.Detail = nil
		for _, e := range []audit.Event{first, second} {
			mustOK(t, "AppendAuditEvent", s.AppendAuditEvent(ctx, e))
		}
		got, err := s.ListAuditEvents(ctx, audit.Filter{})
		mustOK(t, "ListAuditEvents", err)
		if diff := cmp.Diff([]audit.Event{second, first}, got, equateEmpty); diff != "" {
			t.Errorf("ListAuditEvents (-want +got):\n%s", diff)
		}
	}},
	{"Filters", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		old := newEvent(audit.SignIn, 0, "u1", "")
		byActor := newEvent(audit.ClientCreated, time.Minute, "", "c1")
		byActor.Actor = "u1"
		other := newEvent(audit.SignIn, 2*time.Minute, "u2", "c2")
		for _, e := range []audit.Event{old, byActor, other} {
			mustOK(t, "AppendAuditEvent", s.AppendAuditEvent(ctx, e))
		}
		ids := func(f audit.Filter) []string {
			got, err := s.ListAuditEvents(ctx, f)
			mustOK(t, "ListAuditEvents", err)
			var ids []string
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			return ids
		}
		for name, tc := range map[string]struct {
			f    audit.Filter
			want []string
		}{
			"user as subject or actor": {audit.Filter{User: "u1"}, []string{byActor.ID, old.ID}},
			"client":                   {audit.Filter{Client: "c2"}, []string{other.ID}},
			"since":                    {audit.Filter{Since: at(time.Minute)}, []string{other.ID, byActor.ID}},
			"limit":                    {audit.Filter{Limit: 1}, []string{other.ID}},
			"user and since":           {audit.Filter{User: "u1", Since: at(30 * time.Second)}, []string{byActor.ID}},
		} {
			if diff := cmp.Diff(tc.want, ids(tc.f), equateEmpty); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
	}},
	{"Retention", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		old := newEvent(audit.SignIn, 0, "u1", "")
		recent := newEvent(audit.SignIn, time.Hour, "u1", "")
		for _, e := range []audit.Event{old, recent} {
			mustOK(t, "AppendAuditEvent", s.AppendAuditEvent(ctx, e))
		}
		n, err := s.DeleteAuditEventsBefore(ctx, at(time.Minute))
		mustOK(t, "DeleteAuditEventsBefore", err)
		got, err := s.ListAuditEvents(ctx, audit.Filter{})
		mustOK(t, "ListAuditEvents", err)
		if n != 1 || len(got) != 1 || got[0].ID != recent.ID {
			t.Fatalf("after retention: deleted %d, kept %+v; want 1 deleted and the recent event kept", n, got)
		}
	}},
	{"DuplicateID", func(t *testing.T, s storage.Store) {
		e := newEvent(audit.SignIn, 0, "u1", "")
		mustOK(t, "AppendAuditEvent", s.AppendAuditEvent(t.Context(), e))
		wantErr(t, "AppendAuditEvent again", s.AppendAuditEvent(t.Context(), e), storage.ErrConflict)
	}},
}
