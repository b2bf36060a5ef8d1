package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/securecookie"

	"gatehouse/storage"
)

// Identity is who a session says is signed in.
type Identity struct {
	UserID   string
	Username string
	// AuthTime is when the user last entered their password; it becomes
	// the ID token's auth_time.
	AuthTime time.Time
	// SessionID names the session among the user's sessions (the digest
	// of its id, never the id itself): what EndSession and
	// EndOtherSessions take.
	SessionID string
	// AMR are the RFC 8176 methods of the sign-in, the ID token's amr:
	// ["pwd"] for a password, ["pwd", "otp", "mfa"] with an authenticator
	// app's code.
	AMR []string
}

// Authentication methods (RFC 8176 §2) that Identity.AMR holds.
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
	AMRMFA      = "mfa"
)

// SessionStore keeps the server-side session records; storage.Store is one.
type SessionStore interface {
	// GetUser lets SignIn refuse a disabled account.
	GetUser(ctx context.Context, id string) (storage.User, error)
	CreateSession(ctx context.Context, s storage.Session) error
	GetSession(ctx context.Context, idHash string) (storage.Session, error)
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	DeleteSession(ctx context.Context, userID, idHash string) error
	ListSessions(ctx context.Context, userID string) ([]storage.Session, error)
	DeleteUserSessions(ctx context.Context, userID, exceptIDHash string) (int64, error)
}

// SessionConfig are the lifetimes and surroundings of sessions. Zero fields
// take the defaults: DefaultSessionLifetime, DefaultSessionIdleTimeout,
// time.Now, and a logger that discards.
type SessionConfig struct {
	// Secure marks the cookies Secure (https issuers); they then also get
	// the __Host- prefix, which browsers accept only from a secure origin
	// with Path=/ and no Domain.
	Secure bool
	// Lifetime is how long a sign-in lasts however active the user is;
	// IdleTimeout how long it lasts without a request.
	Lifetime    time.Duration
	IdleTimeout time.Duration
	// TrustedProxies name the client address recorded with a session, as
	// for the sign-in limits.
	TrustedProxies []netip.Prefix
	Now            func() time.Time
	Logger         *slog.Logger
}

// Defaults of SessionConfig's lifetimes.
const (
	DefaultSessionLifetime    = 12 * time.Hour
	DefaultSessionIdleTimeout = 2 * time.Hour
)

// touchEvery bounds the writes sessions cost: last_seen_at moves at most
// once per interval, so the idle timeout is exact to within it.
const touchEvery = time.Minute

// deviceLifetime is how long a browser stays known to an account after it
// last signed in to it.
const deviceLifetime = 90 * 24 * time.Hour

// Sessions keeps the signed-in user of each browser: a record in the
// database, named by a random id that only the browser's cookie holds. The
// cookie is also sealed with keys derived from the system secret, so a
// rotated secret still ends every session it signed. Every request reads the
// record, so a session ended on one instance ends on all of them.
type Sessions struct {
	store      SessionStore
	cfg        SessionConfig
	codecs     []securecookie.Codec
	name       string
	devices    []securecookie.Codec
	deviceName string
	pending    []securecookie.Codec
	pendName   string
}

// NewSessions takes hash/encryption key pairs, current first: each pair is
// tried in turn when decoding, so cookies written under a former system
// secret stay valid while it is listed in --old-secrets.
func NewSessions(store SessionStore, keyPairs [][]byte, cfg SessionConfig) *Sessions {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultSessionLifetime
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sessions{
		store:      store,
		cfg:        cfg,
		codecs:     securecookie.CodecsFromPairs(keyPairs...),
		devices:    securecookie.CodecsFromPairs(keyPairs...),
		name:       "gatehouse_session",
		deviceName: "gatehouse_device",
		pending:    securecookie.CodecsFromPairs(keyPairs...),
		pendName:   "gatehouse_pending",
	}
	if cfg.Secure {
		s.name, s.deviceName, s.pendName = "__Host-"+s.name, "__Host-"+s.deviceName, "__Host-"+s.pendName
	}
	for _, c := range s.pending {
		c.(*securecookie.SecureCookie).MaxAge(int(pendingLifetime / time.Second)).SetSerializer(securecookie.JSONEncoder{})
	}
	for _, c := range s.codecs {
		c.(*securecookie.SecureCookie).MaxAge(int(cfg.Lifetime / time.Second))
	}
	for _, c := range s.devices {
		c.(*securecookie.SecureCookie).MaxAge(int(deviceLifetime / time.Second)).SetSerializer(securecookie.JSONEncoder{})
	}
	return s
}

// memoKey holds, in a request's context, the session already looked up for
// it; see Middleware.
type memoKey struct{}

type memo struct {
	done bool
	id   Identity
	ok   bool
}

// Middleware lets every Identity call of one request share one database
// read.
func (s *Sessions) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), memoKey{}, &memo{})))
	})
}

// Identity returns the signed-in user, if any. A cookie that fails to
// decode (tampered, too old, or from a retired secret), a session ended or
// past its lifetime or idle timeout, and a database that does not answer
// all count as signed out.
func (s *Sessions) Identity(r *http.Request) (Identity, bool) {
	m, _ := r.Context().Value(memoKey{}).(*memo)
	if m != nil && m.done {
		return m.id, m.ok
	}
	id, ok := s.lookup(r)
	if m != nil {
		*m = memo{done: true, id: id, ok: ok}
	}
	return id, ok
}

func (s *Sessions) lookup(r *http.Request) (Identity, bool) {
	idHash, ok := s.cookieID(r)
	if !ok {
		return Identity{}, false
	}
	ctx := r.Context()
	sess, err := s.store.GetSession(ctx, idHash)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.cfg.Logger.ErrorContext(ctx, "read session", "err", err)
		}
		return Identity{}, false
	}
	now := s.cfg.Now()
	if !now.Before(sess.CreatedAt.Add(s.cfg.Lifetime)) || !now.Before(sess.LastSeenAt.Add(s.cfg.IdleTimeout)) {
		return Identity{}, false
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		// A lost touch only brings the idle timeout a little closer.
		if err := s.store.TouchSession(ctx, idHash, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.cfg.Logger.WarnContext(ctx, "touch session", "err", err)
		}
	}
	amr := sess.AMR
	if len(amr) == 0 {
		// Sessions from before methods were recorded were all started
		// with a password alone.
		amr = []string{AMRPassword}
	}
	return Identity{UserID: sess.UserID, Username: sess.Username, AuthTime: sess.CreatedAt, SessionID: idHash, AMR: amr}, true
}

// cookieID is the digest of the session id in r's cookie.
func (s *Sessions) cookieID(r *http.Request) (string, bool) {
	c, err := r.Cookie(s.name)
	if err != nil || c.Value == "" {
		return "", false
	}
	var sid string
	if err := securecookie.DecodeMulti(s.name, c.Value, &sid, s.codecs...); err != nil || sid == "" {
		return "", false
	}
	return digest(sid), true
}

// ErrAccountDisabled is SignIn's answer for an account an operator
// disabled; callers say "This account is disabled." (DisabledMessage).
var ErrAccountDisabled = errors.New("the account is disabled")

// DisabledMessage is what a person is told when a disabled account proved
// who they are. It is said only after the proof (a right password, a
// passkey), so it tells nothing to someone guessing.
const DisabledMessage = "This account is disabled."

// SignedInToAccount returns the signed-in user of a page under
// /account/security; without one it sends the browser to sign in and come
// back to that page.
func (s *Sessions) SignedInToAccount(w http.ResponseWriter, r *http.Request) (Identity, bool) {
	id, ok := s.Identity(r)
	if !ok {
		http.Redirect(w, r, "/login?return_to=%2Faccount%2Fsecurity", http.StatusSeeOther)
	}
	return id, ok
}

// SignIn starts a fresh session: a new record with a new random id, never
// a continuation of whatever cookie the browser sent. The session that
// browser had before ends. The browser also becomes a known device of the
// account (see KnownDevice). The session's lifetime runs from id.AuthTime
// (now when zero). Every way of signing in ends here, so this is where a
// disabled account is refused, with ErrAccountDisabled.
func (s *Sessions) SignIn(w http.ResponseWriter, r *http.Request, id Identity) error {
	ctx := r.Context()
	u, err := s.store.GetUser(ctx, id.UserID)
	if err != nil {
		return fmt.Errorf("load the user signing in: %w", err)
	}
	if u.DisabledAt != nil {
		return ErrAccountDisabled
	}
	if old, ok := s.Identity(r); ok {
		if err := s.store.DeleteSession(ctx, old.UserID, old.SessionID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("end the previous session: %w", err)
		}
	}
	sid := randomID()
	now := s.cfg.Now()
	if id.AuthTime.IsZero() {
		id.AuthTime = now
	}
	err = s.store.CreateSession(ctx, storage.Session{
		IDHash:     digest(sid),
		UserID:     id.UserID,
		CreatedAt:  id.AuthTime,
		LastSeenAt: now,
		ExpiresAt:  id.AuthTime.Add(s.cfg.Lifetime),
		UserAgent:  userAgent(r),
		Address:    ClientAddress(r, s.cfg.TrustedProxies),
		AMR:        id.AMR,
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	value, err := securecookie.EncodeMulti(s.name, sid, s.codecs...)
	if err != nil {
		return fmt.Errorf("encode session cookie: %w", err)
	}
	http.SetCookie(w, s.cookie(s.name, value, s.cfg.Lifetime))
	s.rememberDevice(w, r, id.Username)
	if m, _ := ctx.Value(memoKey{}).(*memo); m != nil {
		*m = memo{}
	}
	return nil
}

// SignOut ends the browser's session on the server, so that a copy of the
// cookie stops working too, and clears the cookie.
func (s *Sessions) SignOut(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, s.cookie(s.name, "", -1))
	id, ok := s.Identity(r)
	if m, _ := r.Context().Value(memoKey{}).(*memo); m != nil {
		*m = memo{done: true}
	}
	if !ok {
		return nil
	}
	if err := s.store.DeleteSession(r.Context(), id.UserID, id.SessionID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// ListSessions returns the user's sessions, newest first, those past their
// lifetime or idle timeout left out.
func (s *Sessions) ListSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	all, err := s.store.ListSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	live := all[:0]
	for _, sess := range all {
		if now.Before(sess.CreatedAt.Add(s.cfg.Lifetime)) && now.Before(sess.LastSeenAt.Add(s.cfg.IdleTimeout)) {
			live = append(live, sess)
		}
	}
	return live, nil
}

// EndSession ends one session of the user (Identity.SessionID);
// storage.ErrNotFound when the user has no such session.
func (s *Sessions) EndSession(ctx context.Context, userID, sessionID string) error {
	return s.store.DeleteSession(ctx, userID, sessionID)
}

// EndOtherSessions ends every session of the user but keep (a
// SessionID; "" ends them all), as after a password change or for "sign
// out everywhere else", and returns how many ended.
func (s *Sessions) EndOtherSessions(ctx context.Context, userID, keep string) (int64, error) {
	return s.store.DeleteUserSessions(ctx, userID, keep)
}

// device is the known-device cookie: a random id of the browser and the
// account it last signed in to.
type device struct {
	ID       string `json:"d"`
	Username string `json:"u"`
}

// KnownDevice returns the id of r's browser when it has signed in to
// username before. The sign-in limit per account counts such a browser's
// failures apart from everyone else's, so guessers cannot lock the user out
// of a browser they have used.
func (s *Sessions) KnownDevice(r *http.Request, username string) (string, bool) {
	d, ok := s.device(r)
	return d.ID, ok && d.Username == username
}

func (s *Sessions) device(r *http.Request) (device, bool) {
	c, err := r.Cookie(s.deviceName)
	if err != nil {
		return device{}, false
	}
	var d device
	if err := securecookie.DecodeMulti(s.deviceName, c.Value, &d, s.devices...); err != nil || d.ID == "" {
		return device{}, false
	}
	return d, true
}

// rememberDevice marks the browser as a known device of username, keeping
// its id when it has one. It is a convenience: a browser that cannot keep
// it is only throttled like any other.
func (s *Sessions) rememberDevice(w http.ResponseWriter, r *http.Request, username string) {
	d, ok := s.device(r)
	if !ok {
		d.ID = randomID()
	}
	d.Username = username
	value, err := securecookie.EncodeMulti(s.deviceName, d, s.devices...)
	if err != nil {
		s.cfg.Logger.WarnContext(r.Context(), "encode device cookie", "err", err)
		return
	}
	http.SetCookie(w, s.cookie(s.deviceName, value, deviceLifetime))
}

// Pending is a sign-in waiting for its second step: the password was
// right (or, for StepUp, the user is signed in with it alone) and a code is
// due. It lives in a sealed cookie for pendingLifetime, bound to the user
// and to where the sign-in goes next; it signs no one in.
type Pending struct {
	UserID   string `json:"u"`
	Username string `json:"n"`
	ReturnTo string `json:"r"`
	// AuthTime is when the password was entered, Unix seconds: the
	// session's auth_time once the code is accepted.
	AuthTime int64 `json:"t"`
	// StepUp: a signed-in user asked for a second factor by an app
	// (acr_values); the session must still be theirs when the code comes.
	StepUp bool `json:"s,omitempty"`
}

// pendingLifetime bounds the time between the password and the code.
const pendingLifetime = 5 * time.Minute

// SetPending starts the wait for a code.
func (s *Sessions) SetPending(w http.ResponseWriter, p Pending) error {
	value, err := securecookie.EncodeMulti(s.pendName, p, s.pending...)
	if err != nil {
		return fmt.Errorf("encode pending sign-in: %w", err)
	}
	http.SetCookie(w, s.cookie(s.pendName, value, pendingLifetime))
	return nil
}

// Pending returns the sign-in waiting for a code, if one is and it is
// younger than pendingLifetime.
func (s *Sessions) Pending(r *http.Request) (Pending, bool) {
	c, err := r.Cookie(s.pendName)
	if err != nil {
		return Pending{}, false
	}
	var p Pending
	if err := securecookie.DecodeMulti(s.pendName, c.Value, &p, s.pending...); err != nil || p.UserID == "" {
		return Pending{}, false
	}
	return p, true
}

// ClearPending ends the wait for a code.
func (s *Sessions) ClearPending(w http.ResponseWriter) {
	http.SetCookie(w, s.cookie(s.pendName, "", -1))
}

// cookie is a cookie of this server; a negative maxAge deletes it.
func (s *Sessions) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		HttpOnly: true,
		Secure:   s.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	return c
}

func randomID() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// maxUserAgent bounds the user agent kept with a session: enough to tell
// browsers apart on a sessions page.
const maxUserAgent = 256

// userAgent is r's User-Agent as printable UTF-8 of bounded size, safe for
// any database column and any page.
func userAgent(r *http.Request) string {
	ua := strings.Map(func(c rune) rune {
		if !unicode.IsPrint(c) {
			return -1
		}
		return c
	}, strings.ToValidUTF8(r.UserAgent(), ""))
	for len(ua) > maxUserAgent {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	return ua
}
