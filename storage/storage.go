// Package storage defines Gatehouse's records, the sentinel errors every
// backend maps its driver errors to, and the Store interface that the SQL
// backends implement. It knows nothing of HTTP, OAuth libraries or templates:
// OAuth requests arrive here already serialized by the oauth package.
package storage

import (
	"context"
	"errors"
	"time"
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
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Grant is a remembered consent: the scopes a user allowed a client.
type Grant struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
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
}

// SigningKey is a private key for ID tokens, shared by every instance.
type SigningKey struct {
	ID         string
	Algorithm  string // "RS256"
	PrivateKey []byte // PKCS#8 DER
	CreatedAt  time.Time
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

	// Mailed links. UseEmailToken marks one used: ErrInactive when it
	// already was, ErrNotFound when there is none, so of two racing
	// callers exactly one gets nil. DeleteExpired removes expired ones.
	CreateEmailToken(ctx context.Context, t EmailToken) error           // ErrConflict
	GetEmailToken(ctx context.Context, hash string) (EmailToken, error) // ErrNotFound
	UseEmailToken(ctx context.Context, hash string, at time.Time) error

	// Clients. DeleteClient also deletes the client's grants and tokens.
	CreateClient(ctx context.Context, c Client) error                                 // ErrConflict
	GetClient(ctx context.Context, id string) (Client, error)                         // ErrNotFound
	UpdateClient(ctx context.Context, c Client) error                                 // ErrNotFound; name, redirect URIs, scopes, grant types, updated_at
	SetClientSecret(ctx context.Context, id string, hash []byte, now time.Time) error // ErrNotFound
	DeleteClient(ctx context.Context, id string) error                                // ErrNotFound
	ListClients(ctx context.Context) ([]Client, error)                                // by created_at
	ListClientsByOwner(ctx context.Context, ownerID string) ([]Client, error)

	// Grants (remembered consent).
	PutGrant(ctx context.Context, g Grant) error                          // insert or replace scopes/updated_at
	GetGrant(ctx context.Context, userID, clientID string) (Grant, error) // ErrNotFound
	ListGrants(ctx context.Context, userID string) ([]Grant, error)       // newest first
	// RevokeGrant forgets the grant and deletes every token the client holds
	// for the user, in one transaction. ErrNotFound when there was neither.
	RevokeGrant(ctx context.Context, userID, clientID string) error

	// Tokens.
	CreateToken(ctx context.Context, t Token) error                                // ErrConflict
	GetToken(ctx context.Context, kind TokenKind, signature string) (Token, error) // ErrNotFound; inactive rows are returned with Active=false
	// DeactivateToken marks an active row inactive. It returns ErrInactive
	// when the row exists but is already inactive and ErrNotFound when there
	// is no row, so of two racing callers exactly one gets nil.
	DeactivateToken(ctx context.Context, kind TokenKind, signature string) error
	DeleteToken(ctx context.Context, kind TokenKind, signature string) error // ErrNotFound
	// DeleteTokensByRequest deletes every row of kind in a grant family.
	DeleteTokensByRequest(ctx context.Context, kind TokenKind, requestID string) error
	// DeleteExpired removes tokens whose ExpiresAt is before now and login
	// failures older than LoginFailureRetention, and returns how many rows
	// went. Safe to run from several instances at once.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)

	// Failed sign-ins, counted per key (an account or a client address) so
	// that every instance throttles on the same figures.
	RecordLoginFailure(ctx context.Context, key string, at time.Time) error
	// CountLoginFailures returns how many failures of key happened after
	// since, and when the oldest of them did (zero when there are none).
	CountLoginFailures(ctx context.Context, key string, since time.Time) (n int, oldest time.Time, err error)
	// ClearLoginFailures forgets every failure of key; a key without any
	// is not an error.
	ClearLoginFailures(ctx context.Context, key string) error

	// Books. Reads and writes are scoped to the owner: another user's book
	// is ErrNotFound.
	CreateBook(ctx context.Context, b Book) error
	GetBook(ctx context.Context, userID, id string) (Book, error)
	// ListBooks returns up to limit books with ID greater than afterID, by ID.
	ListBooks(ctx context.Context, userID, afterID string, limit int) ([]Book, error)
	UpdateBook(ctx context.Context, b Book) error            // ErrNotFound; title, author, year, updated_at
	DeleteBook(ctx context.Context, userID, id string) error // ErrNotFound

	// Signing keys, newest first. CreateSigningKey returns ErrConflict for
	// a taken ID.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	CreateSigningKey(ctx context.Context, k SigningKey) error

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}
