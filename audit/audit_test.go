package audit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeStore keeps appended events, or fails with err.
type fakeStore struct {
	events []Event
	err    error
}

func (f *fakeStore) AppendAuditEvent(_ context.Context, e Event) error {
	if f.err != nil {
		return f.err
	}
	f.events = append(f.events, e)
	return nil
}

func (f *fakeStore) ListAuditEvents(context.Context, Filter) ([]Event, error) { return f.events, nil }

var _ Store = (*fakeStore)(nil)

func TestLogStampsEvents(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	store := &fakeStore{}
	var counted []Type
	l := &Log{Store: store, Logger: slog.New(slog.DiscardHandler), NewID: func() string { return "id1" }, Now: func() time.Time { return now },
		Actor: ActorCLI, Recorded: func(t Type) { counted = append(counted, t) }}
	ctx := WithRequest(t.Context(), "req1", "192.0.2.7")
	l.Record(ctx, Event{Type: ClientDeleted, Client: "c1"})
	l.Record(ctx, Event{Type: SignIn, Actor: "u1", Address: "198.51.100.1"})
	if len(store.events) != 2 {
		t.Fatalf("kept %d events, want 2", len(store.events))
	}
	e := store.events[0]
	if e.ID != "id1" || !e.Time.Equal(now) || e.Time.Location() != time.UTC || e.Actor != ActorCLI || e.RequestID != "req1" || e.Address != "192.0.2.7" {
		t.Errorf("first event = %+v; want id, UTC time, the default actor, the request's id and address", e)
	}
	if e := store.events[1]; e.Actor != "u1" || e.Address != "198.51.100.1" {
		t.Errorf("second event = %+v; the fields given must win", e)
	}
	if len(counted) != 2 || counted[0] != ClientDeleted {
		t.Errorf("Recorded saw %v", counted)
	}
}

func TestLogReportsLostEvents(t *testing.T) {
	var logs bytes.Buffer
	called := false
	l := &Log{Store: &fakeStore{err: errors.New("disk full")}, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		NewID: func() string { return "id" }, Now: time.Now, Recorded: func(Type) { called = true }}
	l.Record(t.Context(), Event{Type: ConsentGranted, Subject: "u1"})
	if !strings.Contains(logs.String(), "audit event lost") || !strings.Contains(logs.String(), "consent_granted") {
		t.Errorf("log = %q; want the lost event reported with its type", logs.String())
	}
	if called {
		t.Error("a lost event was counted")
	}
}

func TestRecordNilRecorder(t *testing.T) {
	Record(t.Context(), nil, Event{Type: SignIn}) // must not panic
}
