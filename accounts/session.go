package accounts

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
)

// Identity is who a session cookie says is signed in.
type Identity struct {
	UserID   string
	Username string
	// AuthTime is when the user last entered their password; it becomes
	// the ID token's auth_time.
	AuthTime time.Time
}

// Sessions reads and writes the signed-in user in an encrypted, signed
// cookie. Nothing is kept on the server, so any instance can read a cookie
// another one wrote as long as they share the system secret.
type Sessions struct {
	store *sessions.CookieStore
	name  string
}

// SessionLifetime is how long a sign-in lasts.
const SessionLifetime = 12 * time.Hour

// NewSessions takes hash/encryption key pairs, current first: gorilla tries
// each pair in turn when decoding, so cookies written under a former system
// secret stay valid while it is listed in --old-secrets. secure marks the
// cookie Secure (https issuers); it then also gets the __Host- prefix, which
// browsers accept only from a secure origin with Path=/ and no Domain.
func NewSessions(keyPairs [][]byte, secure bool) *Sessions {
	store := sessions.NewCookieStore(keyPairs...)
	store.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(SessionLifetime / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	name := "gatehouse_session"
	if secure {
		name = "__Host-gatehouse_session"
	}
	return &Sessions{store: store, name: name}
}

// Identity returns the signed-in user, if any. A cookie that fails to
// decode (tampered, expired, or from a retired secret) counts as signed out.
func (s *Sessions) Identity(r *http.Request) (Identity, bool) {
	c, err := r.Cookie(s.name)
	if err != nil || c.Value == "" {
		return Identity{}, false
	}
	sess, err := s.store.Get(r, s.name)
	if err != nil {
		return Identity{}, false
	}
	uid, _ := sess.Values["uid"].(string)
	name, _ := sess.Values["username"].(string)
	at, _ := sess.Values["auth_time"].(int64)
	if uid == "" {
		return Identity{}, false
	}
	return Identity{UserID: uid, Username: name, AuthTime: time.Unix(at, 0).UTC()}, true
}

// SignIn starts a fresh session: a new cookie with a new random id, never a
// continuation of whatever cookie the browser sent.
func (s *Sessions) SignIn(w http.ResponseWriter, r *http.Request, id Identity) error {
	sess := sessions.NewSession(s.store, s.name)
	opts := *s.store.Options
	sess.Options = &opts
	sess.IsNew = true
	var sid [16]byte
	rand.Read(sid[:])
	sess.Values["sid"] = hex.EncodeToString(sid[:])
	sess.Values["uid"] = id.UserID
	sess.Values["username"] = id.Username
	sess.Values["auth_time"] = id.AuthTime.Unix()
	return s.store.Save(r, w, sess)
}

// SignOut clears the session cookie.
func (s *Sessions) SignOut(w http.ResponseWriter) {
	opts := *s.store.Options
	opts.MaxAge = -1
	http.SetCookie(w, sessions.NewCookie(s.name, "", &opts))
}
