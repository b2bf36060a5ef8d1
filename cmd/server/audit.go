package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/accounts"
	"gatehouse/audit"
	"gatehouse/storage"
)

// newAuditLog is the server's recorder: each event goes to the database
// and is counted on /metrics.
func newAuditLog(store storage.Store, logger *slog.Logger, m *metrics) *audit.Log {
	return &audit.Log{Store: store, Logger: logger, NewID: storage.NewID, Now: time.Now, Recorded: m.auditCounter()}
}

// auditCounter registers gatehouse_audit_events_total and returns what
// counts one event. Every type is there from the start, at zero, so a rate
// over it never starts from nothing.
func (m *metrics) auditCounter() func(audit.Type) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_audit_events_total",
		Help: "Security events recorded in the audit log, by type.",
	}, []string{"type"})
	byType := map[audit.Type]prometheus.Counter{}
	for _, t := range audit.Types {
		byType[t] = vec.WithLabelValues(string(t))
	}
	m.registry.MustRegister(vec)
	return func(t audit.Type) {
		if c, ok := byType[t]; ok {
			c.Inc()
		}
	}
}

// cliAudit records what an operator does at the command line; failures
// to keep an event are reported on stderr.
func cliAudit(store storage.Store, stderr io.Writer) audit.Recorder {
	return &audit.Log{Store: store, Logger: slog.New(slog.NewTextHandler(stderr, nil)), NewID: storage.NewID, Now: time.Now, Actor: audit.ActorCLI}
}

// auditKeyRotation records that keyID became the signing key. `server keys
// rotate` calls it with cliAudit's recorder.
func auditKeyRotation(ctx context.Context, rec audit.Recorder, keyID string) {
	audit.Record(ctx, rec, audit.Event{Type: audit.SigningKeyRotated, Detail: map[string]string{"key_id": keyID}})
}

// withAuditRequest gives every request's context the id withLogging chose
// and the client's address, for the events recorded while serving it.
func withAuditRequest(trustedProxies []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := audit.WithRequest(r.Context(), w.Header().Get("X-Request-Id"), accounts.ClientAddress(r, trustedProxies))
		inner := r.WithContext(ctx)
		next.ServeHTTP(w, inner)
		// The mux records the route on the request it was given, which
		// withLogging outside reads for its line and metrics.
		r.Pattern = inner.Pattern
	})
}
