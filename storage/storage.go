// Package storage defines Gatehouse's records, the sentinel errors every
// backend maps its driver errors to, and the Store interface that the SQL
// backends implement. It knows nothing of HTTP, OAuth libraries or templates:
// OAuth requests arrive here already serialized by the oauth package.
package storage

import (
	"context"
	"errors"
	"time"

	"gatehouse/audit"
)

// Sentinel errors. Backends wrap driver errors into these; callers test with
// errors.Is.
var (
	// ErrNotFound: no row matched.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a unique value (username, client id, signature) is taken.
	ErrConflict = errors.New("storage: conflict")
	// ErrInactive: the code or token exists but was already used, rotated
	// or revoked. It is what a racing second redemption gets.
	ErrInactive = errors.New("storage: inactive")
	// ErrLastPasskey: the passkey is the only way left to sign in to an
	// account without a password, so it is not removed.
	ErrLastPasskey = errors.New("storage: last passkey of an account without a password")
)

// User is an end user who signs in with a username and password.
type User struct {
	ID           string
	Username     string // lower-case, unique
	PasswordHash string // argon2id PHC string
	CreatedAt    time.Time
	// Email is optional ("" for none), kept as typed; verified addresses
	// are unique whatever their case.
	Email         string
	EmailVerified bool
	// DisabledAt is when an operator disabled the account (nil while it is
	// in use): it then signs in no more, by any method.
	DisabledAt *time.Time
}

// EmailPurpose says what a mailed link does.
type EmailPurpose string

const (
	PurposeVerify EmailPurpose = "verify"
	PurposeReset  EmailPurpose = "reset"
)

// EmailToken is a link sent by mail, keyed by the SHA-256 of its token; the
// token itself is never stored. Email is the address it was sent to.
type EmailToken struct {
	Hash      string
	Purpose   EmailPurpose
	UserID    string
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// Client is a registered OAuth client (an "app").
type Client struct {
	ID           string
	OwnerID      string // the user who registered it; "" when created from the CLI
	Name         string
	SecretHash   []byte // nil for public clients
	Public       bool
	RedirectURIs []string
	Scopes       []string
	GrantTypes   []string
	// AuthMethod is "private_key_jwt" for a client that authenticates with
	// signed assertions, checked against JWKS (a JSON Web Key Set) or the
	// set at JWKSURI; "" for a client secret, or none for public clients.
	AuthMethod string
	JWKS       string
	JWKSURI    string
	// RequirePAR: authorization requests must come through POST /oauth2/par.
	RequirePAR bool
	// DPoPBound: every access token of this client must be DPoP-bound.
	DPoPBound bool
	// IDTokenAlg is the JWS algorithm of the client's ID tokens
	// (id_token_signed_response_alg): RS256, ES256 or EdDSA; "" is RS256.
	IDTokenAlg string
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser afterwards.
	PostLogoutRedirectURIs []string
	Origin                 ClientOrigin
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

// ClientOrigin records how a client was registered, which says who vouches
// for it.
type ClientOrigin string

const (
	OriginConsole ClientOrigin = "console" // by its owner, a signed-in user, on /apps
	OriginCLI     ClientOrigin = "cli"     // by the operator, with server clients create
	OriginDynamic ClientOrigin = "dynamic" // by anyone, through RFC 7591 registration
	// OriginMetadata: a client ID metadata document, fetched from the URL
	// that is its client_id.
	OriginMetadata ClientOrigin = "metadata"
	// OriginUnknown: an ownerless client from before origins were recorded,
	// made from the CLI or by dynamic registration.
	OriginUnknown ClientOrigin = "unknown"
)

// Grant is a remembered consent: the scopes a user allowed a client, and
// the registered redirect URIs the user was shown when allowing them.
type Grant struct {
	UserID       string
	ClientID     string
	Scopes       []string
	RedirectURIs []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Book is one entry of the sample books API.
type Book struct {
	ID        string
	UserID    string
	Title     string
	Author    string
	Year      *int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TokenKind says which protocol artefact a Token row is.
type TokenKind string

const (
	KindCode    TokenKind = "code"
	KindAccess  TokenKind = "access"
	KindRefresh TokenKind = "refresh"
	KindPKCE    TokenKind = "pkce"
	KindOIDC    TokenKind = "oidc"
	// KindPAR is a pushed authorization request, keyed by its request_uri's
	// signature; inactive once a code was issued from it.
	KindPAR TokenKind = "par"
)

// Token is an authorization code, access token, refresh token or the PKCE /
// OpenID Connect state of a code, keyed by the token's HMAC signature. The
// token itself is never stored.
type Token struct {
	Kind      TokenKind
	Signature string
	RequestID string // shared by every token of one grant (a family)
	ClientID  string
	Subject   string // user id; "" for client credentials
	Active    bool
	// AccessSignature links a refresh token to the access token issued with
	// it, so rotation can retire that access token.
	AccessSignature string
	RequestedAt     time.Time
	ExpiresAt       time.Time
	Data            []byte // the serialized OAuth request; opaque to storage
	// Claims repeats what a resource needs of Data, so that checking an
	// access token need not decode it; nil when the row does not keep them
	// (rows written before it could, among others).
	Claims *TokenClaims
	// SubjectBookChanges is the subject's BookChanges, which GetTokenClaims
	// reads with the row; nil when there is no such user, and from GetToken.
	SubjectBookChanges *int64
}

// TokenClaims is what a resource or an introspection needs of an access
// token beside the Token's own columns. No scope or audience value may be
// empty or contain a space.
type TokenClaims struct {
	Username string
	Scopes   []string
	Audience []string
	JKT      string // the DPoP key's thumbprint; "" for a bearer token
}

// DeviceStatus is where a device authorization stands.
type DeviceStatus string

const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
	DeviceUsed     DeviceStatus = "used"
)

// DeviceCode is one device authorization (RFC 8628), keyed by the device
// code's HMAC signature and found from the browser by a keyed digest of the
// user code. Neither code is stored.
type DeviceCode struct {
	Signature    string
	UserCodeHash string
	ClientID     string
	Status       DeviceStatus
	Subject      string // the user who approved or denied; "" while pending
	Interval     time.Duration
	LastPolledAt time.Time // zero until the device first polls
	RequestedAt  time.Time
	ExpiresAt    time.Time
	Data         []byte // the serialized OAuth request; opaque to storage
}

// RefreshGrace remembers a rotated refresh token for a short while, with
// the answer its rotation got, sealed by the oauth package.
type RefreshGrace struct {
	Signature string // of the rotated refresh token
	ClientID  string
	RequestID string
	RotatedAt time.Time
	ExpiresAt time.Time
	Sealed    []byte // nil until the answer is stored
}

// SigningKey is a private key for ID tokens, shared by every instance.
type SigningKey struct {
	ID        string
	Algorithm string // "RS256"
	// PrivateKey is PKCS#8 DER sealed with AES-GCM (see package oauth) when
	// Sealed, and in clear only in rows written before sealing existed.
	PrivateKey []byte
	Sealed     bool
	CreatedAt  time.Time
}

// Passkey is a WebAuthn credential a user registered to sign in with.
// CredentialID and PublicKey (COSE) are the authenticator's; ID is
// Gatehouse's name for the row in URLs.
type Passkey struct {
	ID           string
	UserID       string
	Name         string
	CredentialID []byte
	PublicKey    []byte
	SignCount    uint32
	AAGUID       []byte
	Transports   []string
	// BackupEligible says the credential may be synced to other devices
	// (it cannot change); BackupState that it is backed up now.
	BackupEligible bool
	BackupState    bool
	CreatedAt      time.Time
	LastUsedAt     *time.Time // nil until first used to sign in
}

// WebAuthnChallenge is a registration or sign-in ceremony begun and not yet
// finished: single-use, short-lived, and bound to the browser that began
// it (Binding, a digest of its session or pre-login cookie). Data is the
// ceremony's state, opaque to storage.
type WebAuthnChallenge struct {
	Hash      string // SHA-256 of the challenge
	Purpose   string // "register" or "login"
	Binding   string
	UserID    string // the registering user; "" for a sign-in
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Session is a signed-in browser. The session id itself is never stored,
// only its SHA-256 digest, so a copy of the table signs no one in.
type Session struct {
	IDHash     string
	UserID     string
	Username   string    // read from users by GetSession; not stored
	CreatedAt  time.Time // when the user signed in
	LastSeenAt time.Time
	// ExpiresAt is when DeleteExpired may remove the row: the end of the
	// absolute lifetime the session was created with.
	ExpiresAt time.Time
	UserAgent string
	Address   string
	// AMR are the RFC 8176 methods the user signed in with ("pwd", "otp",
	// "mfa"...); nil for sessions from before they were recorded.
	AMR []string
}

// TOTP is a user's authenticator app (RFC 6238). Sealed is the shared
// secret as the accounts package sealed it; storage never sees it in clear.
// LastStep is the time step of the last code accepted.
type TOTP struct {
	UserID    string
	Sealed    []byte
	LastStep  int64
	CreatedAt time.Time
}

// LoginLimit is one count a sign-in attempt must stay under: fewer than Max
// failures of Key after Since.
type LoginLimit struct {
	Key   string
	Max   int
	Since time.Time
}

// LoginAttempt is what ReserveLoginAttempt decided.
type LoginAttempt struct {
	// IDs are the rows recorded for the attempt, one per limit; nil when
	// it was refused.
	IDs []int64
	// Oldest[i] is, when limit i was full, the oldest of its failures
	// after Since; zero for limits with room.
	Oldest []time.Time
}

// LoginFailureRetention is how long DeleteExpired keeps a failed sign-in. A
// limiter counting failures over a longer window would see fewer than
// happened.
const LoginFailureRetention = 24 * time.Hour

// Store is everything a backend provides. Consumers declare the subset they
// use.
type Store interface {
	// Transactions. BeginTx returns a context carrying the transaction;
	// every method called with that context runs inside it.
	BeginTx(ctx context.Context) (context.Context, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
	// InTx runs fn in a transaction, committing when it returns nil.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error

	// Users. CreateUser returns ErrConflict for a taken username.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)                 // ErrNotFound
	GetUserByUsername(ctx context.Context, username string) (User, error) // ErrNotFound
	CountUsers(ctx context.Context) (int, error)
	// GetUserByVerifiedEmail finds the user whose verified address is
	// email, whatever its case. ErrNotFound.
	GetUserByVerifiedEmail(ctx context.Context, email string) (User, error)
	// SetUserEmail replaces the address ("" removes it). ErrNotFound;
	// ErrConflict when verified and another user has verified it.
	SetUserEmail(ctx context.Context, userID, email string, verified bool) error
	// VerifyUserEmail marks the user's address verified if it still is
	// email (whatever its case): ErrNotFound when it is not, ErrConflict
	// when another user has verified it first.
	VerifyUserEmail(ctx context.Context, userID, email string) error
	SetUserPassword(ctx context.Context, userID, hash string) error // ErrNotFound
	// ReplacePasswordHash swaps old for hash, a new hash of the same
	// password; ErrNotFound when the user is gone or the hash is no longer
	// old, so an upgrade never overwrites a password changed meanwhile.
	ReplacePasswordHash(ctx context.Context, userID, old, hash string) error

	// Mailed links. UseEmailToken marks one used: ErrInactive when it
	// already was, ErrNotFound when there is none, so of two racing
	// callers exactly one gets nil. DeleteExpired removes expired ones.
	CreateEmailToken(ctx context.Context, t EmailToken) error           // ErrConflict
	GetEmailToken(ctx context.Context, hash string) (EmailToken, error) // ErrNotFound
	UseEmailToken(ctx context.Context, hash string, at time.Time) error
	ListUsers(ctx context.Context) ([]User, error) // by created_at
	// DeleteUser deletes the user, their grants, books, tokens and the
	// clients they own. ErrNotFound.
	DeleteUser(ctx context.Context, id string) error
	// DisableUser sets the user's DisabledAt (a user disabled already
	// keeps the first time) and, in one transaction, ends every session of
	// theirs and deletes every code and token issued for them, approved
	// device codes included; it returns how many sessions and tokens went.
	// GetSession then finds none of the user's sessions until EnableUser.
	// ErrNotFound.
	DisableUser(ctx context.Context, id string, at time.Time) (sessions, tokens int64, err error)
	EnableUser(ctx context.Context, id string) error // ErrNotFound

	// Clients. DeleteClient also deletes the client's grants and tokens.
	CreateClient(ctx context.Context, c Client) error                                 // ErrConflict
	GetClient(ctx context.Context, id string) (Client, error)                         // ErrNotFound
	UpdateClient(ctx context.Context, c Client) error                                 // ErrNotFound; name, redirect URIs, scopes, grant types, post-logout redirect URIs, ID token alg, updated_at
	SetClientSecret(ctx context.Context, id string, hash []byte, now time.Time) error // ErrNotFound
	DeleteClient(ctx context.Context, id string) error                                // ErrNotFound
	ListClients(ctx context.Context) ([]Client, error)                                // by created_at
	ListClientsByOwner(ctx context.Context, ownerID string) ([]Client, error)

	// Grants (remembered consent).
	PutGrant(ctx context.Context, g Grant) error                          // insert or replace scopes/redirect URIs/updated_at
	GetGrant(ctx context.Context, userID, clientID string) (Grant, error) // ErrNotFound
	ListGrants(ctx context.Context, userID string) ([]Grant, error)       // newest first
	// LockGrant holds the grant until the transaction in ctx ends, so a
	// RevokeGrant waits for tokens issued under it; ErrNotFound when the
	// grant is gone.
	LockGrant(ctx context.Context, userID, clientID string) error
	// RevokeGrant forgets the grant and deletes every token the client holds
	// for the user, in one transaction. ErrNotFound when there was neither.
	RevokeGrant(ctx context.Context, userID, clientID string) error

	// Tokens.
	CreateToken(ctx context.Context, t Token) error                                // ErrConflict
	GetToken(ctx context.Context, kind TokenKind, signature string) (Token, error) // ErrNotFound; inactive rows are returned with Active=false
	// GetTokenClaims is GetToken for the checks that find what they need
	// in Claims: it leaves out Data, RequestID and AccessSignature, and
	// adds SubjectBookChanges.
	GetTokenClaims(ctx context.Context, kind TokenKind, signature string) (Token, error) // ErrNotFound
	// DeactivateToken marks an active row inactive. It returns ErrInactive
	// when the row exists but is already inactive and ErrNotFound when there
	// is no row, so of two racing callers exactly one gets nil.
	DeactivateToken(ctx context.Context, kind TokenKind, signature string) error
	DeleteToken(ctx context.Context, kind TokenKind, signature string) error // ErrNotFound
	// DeleteTokensByRequest deletes every row of kind in a grant family.
	DeleteTokensByRequest(ctx context.Context, kind TokenKind, requestID string) error
	// DeleteExpired removes tokens, sessions and every other row with a
	// lifetime once it has passed (login failures and request counts after
	// LoginFailureRetention), and returns how many rows went. Safe to run
	// from several instances at once.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)

	// UseOnce records key as used until expires. It returns ErrConflict
	// when key was recorded before, so of several instances seeing the same
	// DPoP proof or client assertion exactly one gets nil.
	UseOnce(ctx context.Context, key string, expires time.Time) error

	// Failed sign-ins, counted per key (an account or a client address) so
	// that every instance throttles on the same figures.
	RecordLoginFailure(ctx context.Context, key string, at time.Time) error
	// CountLoginFailures returns how many failures of key happened after
	// since, and when the oldest of them did (zero when there are none).
	CountLoginFailures(ctx context.Context, key string, since time.Time) (n int, oldest time.Time, err error)
	// ClearLoginFailures forgets every failure of key; a key without any
	// is not an error.
	ClearLoginFailures(ctx context.Context, key string) error
	// ReserveLoginAttempt, in one transaction serialized with every other
	// reservation of the same keys, records a failure at at under each
	// limit's key, unless one of them already holds Max failures after its
	// Since: then it records nothing. Recording before the password is
	// checked is what keeps concurrent attempts from all passing the count.
	ReserveLoginAttempt(ctx context.Context, at time.Time, limits []LoginLimit) (LoginAttempt, error)
	// ReleaseLoginAttempt deletes the rows of a reservation, for an
	// attempt that succeeded; rows already gone are not an error.
	ReleaseLoginAttempt(ctx context.Context, ids []int64) error

	// Sessions. CreateSession returns ErrConflict for a taken IDHash;
	// GetSession, TouchSession and DeleteSession ErrNotFound when there is
	// no such session (of that user); GetSession also for a session of a
	// disabled user.
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, idHash string) (Session, error)
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	DeleteSession(ctx context.Context, userID, idHash string) error
	// ListSessions returns userID's sessions, newest first.
	ListSessions(ctx context.Context, userID string) ([]Session, error)
	// DeleteUserSessions ends every session of userID but the one whose
	// digest is exceptIDHash ("" keeps none) and returns how many ended.
	DeleteUserSessions(ctx context.Context, userID, exceptIDHash string) (int64, error)

	// Second factors. EnableTOTP stores the authenticator app and
	// replaces the recovery codes (their SHA-256 digests) in one
	// transaction; ErrConflict when the user already has one.
	EnableTOTP(ctx context.Context, t TOTP, recoveryHashes []string) error
	GetTOTP(ctx context.Context, userID string) (TOTP, error) // ErrNotFound
	// UseTOTPStep records step as the last accepted one if it is later
	// than the one recorded: ErrInactive when it is not (a replayed or
	// older code), ErrNotFound when the user has no authenticator app, so
	// of two racing callers with the same code exactly one gets nil.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// DisableTOTP removes the authenticator app and the recovery codes;
	// ErrNotFound when there was no app.
	DisableTOTP(ctx context.Context, userID string) error
	// ReplaceRecoveryCodes drops every recovery code of the user for the
	// new ones; ErrNotFound when the user has no authenticator app.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error
	// UseRecoveryCode marks one used: ErrInactive when it already was,
	// ErrNotFound when the user has no such code.
	UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error
	// ListTOTP returns every authenticator app, to seal them again after
	// the system secret changed.
	ListTOTP(ctx context.Context) ([]TOTP, error)
	// ResealTOTP replaces the sealed secret of the user's app if it still
	// is old: ErrNotFound when it is not (the app was replaced or removed
	// meanwhile).
	ResealTOTP(ctx context.Context, userID string, old, sealed []byte) error
	// CountRecoveryCodes returns how many unused codes the user has.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)
	// ResetMFA removes every second factor of the user and their
	// passkeys, for an operator helping someone who lost theirs; nothing
	// to remove is not an error.
	ResetMFA(ctx context.Context, userID string) error

	// CountRequest counts one more request of key (a dynamic registration
	// from a client address) in the fixed window of length window that
	// holds now, and returns its number in the window and when the window
	// began. Concurrent requests get distinct numbers, on every instance.
	// Windows must not exceed LoginFailureRetention, after which
	// DeleteExpired forgets them.
	CountRequest(ctx context.Context, key string, now time.Time, window time.Duration) (n int, windowStart time.Time, err error)

	// Books. Reads and writes are scoped to the owner: another user's book
	// is ErrNotFound.
	CreateBook(ctx context.Context, b Book) error
	GetBook(ctx context.Context, userID, id string) (Book, error)
	// ListBooks returns up to limit books with ID greater than afterID, by ID.
	ListBooks(ctx context.Context, userID, afterID string, limit int) ([]Book, error)
	UpdateBook(ctx context.Context, b Book) error            // ErrNotFound; title, author, year, updated_at
	DeleteBook(ctx context.Context, userID, id string) error // ErrNotFound
	// BookChanges counts the writes to userID's books, from any instance
	// or process: two equal counts mean the same books. ErrNotFound when
	// there is no such user.
	BookChanges(ctx context.Context, userID string) (int64, error)

	// Signing keys, newest first. CreateSigningKey returns ErrConflict for
	// a taken ID.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// UpdateSigningKey replaces the private key and Sealed of the key
	// k.ID, to seal or reseal it; ErrNotFound.
	UpdateSigningKey(ctx context.Context, k SigningKey) error

	// Audit events (package audit), append-only.
	audit.Store
	// DeleteAuditEventsBefore removes events older than t (retention) and
	// returns how many went.
	DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error)

	// Device authorizations. DecideDeviceCode and ConsumeDeviceCode change
	// a row only from the state they expect (pending, approved) and return
	// ErrInactive otherwise, so of racing callers exactly one gets nil.
	CreateDeviceCode(ctx context.Context, d DeviceCode) error                                                       // ErrConflict
	GetDeviceCode(ctx context.Context, signature string) (DeviceCode, error)                                        // ErrNotFound
	GetDeviceCodeByUserCode(ctx context.Context, userCodeHash string) (DeviceCode, error)                           // ErrNotFound
	DecideDeviceCode(ctx context.Context, signature string, status DeviceStatus, subject string, data []byte) error // ErrNotFound, ErrInactive
	PollDeviceCode(ctx context.Context, signature string, at time.Time, interval time.Duration) error               // ErrNotFound
	ConsumeDeviceCode(ctx context.Context, signature string) error                                                  // ErrNotFound, ErrInactive

	// Refresh grace. CreateRefreshGrace returns ErrConflict for a taken
	// signature; SealRefreshGrace ErrNotFound when there is no row.
	CreateRefreshGrace(ctx context.Context, g RefreshGrace) error
	SealRefreshGrace(ctx context.Context, signature string, sealed []byte) error
	GetRefreshGrace(ctx context.Context, signature string) (RefreshGrace, error) // ErrNotFound

	// Passkeys. CreatePasskey returns ErrConflict for a credential ID
	// already registered (to anyone). ListPasskeys is oldest first.
	CreatePasskey(ctx context.Context, p Passkey) error
	ListPasskeys(ctx context.Context, userID string) ([]Passkey, error)
	GetPasskeyByCredentialID(ctx context.Context, credentialID []byte) (Passkey, error) // ErrNotFound
	RenamePasskey(ctx context.Context, userID, id, name string) error                   // ErrNotFound
	// DeletePasskey removes one of the user's passkeys: ErrNotFound when
	// there is none, ErrLastPasskey when the user has no password and no
	// other passkey.
	DeletePasskey(ctx context.Context, userID, id string) error
	// UsePasskey records a sign-in: the new sign count, backup state and
	// last use. The count only moves forward (a count of 0 means the
	// authenticator keeps none): ErrInactive when another sign-in already
	// stored this count or a later one, ErrNotFound when there is no such
	// credential.
	UsePasskey(ctx context.Context, credentialID []byte, signCount uint32, backupState bool, at time.Time) error

	// WebAuthn challenges. ConsumeWebAuthnChallenge deletes and returns
	// the unexpired challenge of that hash, purpose and binding; of two
	// racing callers exactly one gets it, the other ErrNotFound, as does a
	// replay, another browser's binding or an expired challenge.
	// DeleteExpired removes expired ones.
	CreateWebAuthnChallenge(ctx context.Context, c WebAuthnChallenge) error // ErrConflict
	ConsumeWebAuthnChallenge(ctx context.Context, hash, purpose, binding string, now time.Time) (WebAuthnChallenge, error)

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}
