// Package audit is Gatehouse's record of security events: who signed in,
// who allowed which app, who changed a client or a key. Packages that see
// such an event accept a Recorder and call Record; storage keeps the events
// in an append-only table that users read on /account/security and
// operators with `server audit`.
//
// An event never carries a secret: no password, token, code, client
// secret or key material, in any field, Detail included.
package audit

import (
	"context"
	"log/slog"
	"time"
)

// Type names what happened. The values are stored and printed; they do not
// change once shipped.
type Type string

const (
	SignIn              Type = "sign_in"
	SignInFailed        Type = "sign_in_failed"
	ConsentGranted      Type = "consent_granted"
	ConsentRevoked      Type = "consent_revoked"
	ClientCreated       Type = "client_created"
	ClientUpdated       Type = "client_updated"
	ClientSecretRotated Type = "client_secret_rotated"
	ClientDeleted       Type = "client_deleted"
	RefreshTokenReused  Type = "refresh_token_reused"
	SigningKeyRotated   Type = "signing_key_rotated"
	UserCreated         Type = "user_created"
	UserDeleted         Type = "user_deleted"
	UserDisabled        Type = "user_disabled"
	EmailChanged        Type = "email_changed"
	EmailVerified       Type = "email_verified"
	PasswordReset       Type = "password_reset"
	PasswordChanged     Type = "password_changed"
	SessionsEnded       Type = "sessions_ended"
	UserEnabled         Type = "user_enabled"
	PasskeyAdded        Type = "passkey_added"
	PasskeyRemoved      Type = "passkey_removed"
	// An authenticator app turned on or off by its user; reset by the
	// operator (server users reset-mfa) is MFAReset.
	MFAEnabled               Type = "mfa_enabled"
	MFADisabled              Type = "mfa_disabled"
	MFAReset                 Type = "mfa_reset"
	RecoveryCodesRegenerated Type = "recovery_codes_regenerated"
)

// Types lists every Type, for metrics that show a zero before the first
// event.
var Types = []Type{SignIn, SignInFailed, ConsentGranted, ConsentRevoked, ClientCreated, ClientUpdated,
	ClientSecretRotated, ClientDeleted, RefreshTokenReused, SigningKeyRotated, UserCreated, UserDeleted, UserDisabled,
	EmailChanged, EmailVerified, PasswordReset, PasswordChanged, SessionsEnded, UserEnabled,
	PasskeyAdded, PasskeyRemoved, MFAEnabled, MFADisabled, MFAReset, RecoveryCodesRegenerated}

// Actors that are not a user id.
const (
	// ActorCLI is an operator at the server's command line.
	ActorCLI = "cli"
	// ActorAnonymous is a request that identified nobody, such as an RFC
	// 7591 registration without a token.
	ActorAnonymous = "anonymous"
)

// Event is one security event.
type Event struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Type Type      `json:"type"`
	// Actor did it: a user id, ActorCLI, ActorAnonymous or "client:" and
	// a client id.
	Actor string `json:"actor,omitempty"`
	// Subject is the user it concerns, when there is one.
	Subject string `json:"subject,omitempty"`
	// Client is the OAuth client it concerns, when there is one.
	Client string `json:"client,omitempty"`
	// Address and RequestID come from the HTTP request (see WithRequest).
	Address   string `json:"address,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Detail holds a few facts worth keeping, such as the scopes allowed
	// or the fields a client update changed.
	Detail map[string]string `json:"detail,omitempty"`
}

// Recorder is what packages reporting events accept. Record does not fail
// from the caller's point of view: the action already happened, and a
// recorder that cannot keep the event reports that itself.
type Recorder interface {
	Record(ctx context.Context, e Event)
}

// Record gives e to r, which may be nil (a handler built without one, as
// in a package's own tests).
func Record(ctx context.Context, r Recorder, e Event) {
	if r != nil {
		r.Record(ctx, e)
	}
}

// Filter selects events; zero fields select everything.
type Filter struct {
	Since time.Time
	// User matches events whose subject or actor is this user id.
	User   string
	Client string
	// Limit caps how many events come back (newest first); 0 means no cap.
	Limit int
}

// Store keeps events. Append never changes an event already kept.
type Store interface {
	AppendAuditEvent(ctx context.Context, e Event) error
	// ListAuditEvents returns the matching events, newest first.
	ListAuditEvents(ctx context.Context, f Filter) ([]Event, error)
}

type requestKey struct{}

type request struct{ id, address string }

// WithRequest returns ctx carrying the request's id and the client's
// address, which Log adds to every event recorded under it.
func WithRequest(ctx context.Context, requestID, address string) context.Context {
	return context.WithValue(ctx, requestKey{}, request{requestID, address})
}

// Log is the Recorder the server runs: it stamps the time, the request id
// and the address, keeps the event in Store, and counts it.
type Log struct {
	Store  Store
	Logger *slog.Logger
	// NewID makes event ids.
	NewID func() string
	Now   func() time.Time
	// Actor, when set, is the actor of events that name none (the CLI's
	// recorder sets ActorCLI).
	Actor string
	// Recorded, when set, is called with each event kept.
	Recorded func(Type)
}

// Record keeps e. A failure is logged at error level, with the event's
// type and ids, since the event itself is lost.
func (l *Log) Record(ctx context.Context, e Event) {
	if e.ID == "" {
		e.ID = l.NewID()
	}
	if e.Time.IsZero() {
		e.Time = l.Now()
	}
	e.Time = e.Time.UTC()
	if e.Actor == "" {
		e.Actor = l.Actor
	}
	if req, ok := ctx.Value(requestKey{}).(request); ok {
		if e.RequestID == "" {
			e.RequestID = req.id
		}
		if e.Address == "" {
			e.Address = req.address
		}
	}
	// The event belongs to the action that already happened, whether or
	// not the request that caused it is still waiting.
	if err := l.Store.AppendAuditEvent(context.WithoutCancel(ctx), e); err != nil {
		l.Logger.ErrorContext(ctx, "audit event lost", "err", err, "type", string(e.Type), "actor", e.Actor, "subject", e.Subject, "client", e.Client)
		return
	}
	if l.Recorded != nil {
		l.Recorded(e.Type)
	}
}
