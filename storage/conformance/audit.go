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
