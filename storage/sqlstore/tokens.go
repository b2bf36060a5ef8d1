package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse/storage"
)

const (
	tokenColumns      = `kind, signature, request_id, client_id, subject, active, access_signature, requested_at, expires_at, ` + tokenClaimColumns
	tokenClaimColumns = `has_claims, username, scopes, audience, dpop_jkt`
	// tokenCheckColumns are what a token check reads: the claims and, from
	// the subject's row, the book count the books API would read next,
	// which in the same statement costs an index probe, not a query.
	tokenCheckColumns = `client_id, subject, active, requested_at, expires_at, ` + tokenClaimColumns +
		`, (SELECT book_changes FROM users WHERE users.id = tokens.subject)`
)

var (
	qCreateToken    = newQuery(`INSERT INTO tokens (` + tokenColumns + `, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	qGetToken       = newQuery(`SELECT ` + tokenColumns + `, data FROM tokens WHERE kind = ? AND signature = ?`)
	qGetTokenClaims = newQuery(`SELECT ` + tokenCheckColumns + ` FROM tokens WHERE kind = ? AND signature = ?`)
	// The condition on active makes the update the arbiter between racing
	// redemptions: only one of them can change the row.
	qDeactivateToken = newQuery(`UPDATE tokens SET active = FALSE WHERE kind = ? AND signature = ? AND active`)
	qTokenExists     = newQuery(`SELECT COUNT(*) FROM tokens WHERE kind = ? AND signature = ?`)
	qDeleteToken     = newQuery(`DELETE FROM tokens WHERE kind = ? AND signature = ?`)
	qDeleteByRequest = newQuery(`DELETE FROM tokens WHERE kind = ? AND request_id = ?`)
	qDeleteExpired   = newQuery(`DELETE FROM tokens WHERE (kind, signature) IN
		(SELECT kind, signature FROM tokens WHERE expires_at < ? LIMIT ?)`)
)

// The statements of a pending storage.ClientCheck: each also reads
// client_changes.
var (
	// qCreateTokenCounted is qCreateToken that inserts only while
	// client_changes is at the count bound last.
	qCreateTokenCounted = newQuery(`INSERT INTO tokens (` + tokenColumns + `, data)
		SELECT ?::text, ?::text, ?::text, ?::text, ?::text, ?::boolean, ?::text, ?::timestamptz, ?::timestamptz,
			?::boolean, ?::text, ?::text, ?::text, ?::text, ?::bytea
		WHERE (SELECT n FROM client_changes WHERE id = 1) = ?`)
	// qGetTokenClaimsCounted is qGetTokenClaims with the count last.
	qGetTokenClaimsCounted = newQuery(`SELECT ` + tokenCheckColumns + `, (SELECT n FROM client_changes WHERE id = 1)
		FROM tokens WHERE kind = ? AND signature = ?`)
)

// CreateToken stores t. A taken kind and signature is storage.ErrConflict.
//
// Under a pending storage.ClientCheck the token is stored only while
// client_changes has not moved, which confirms the check; otherwise it is
// not stored and the error is storage.ErrClientChanged. The insert itself
// carries the condition (qCreateTokenCounted).
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	args, err := s.tokenArgs(t)
	if err != nil {
		return fmt.Errorf("create %s token: %w", t.Kind, err)
	}
	check := storage.ClientCheckFrom(ctx)
	n, counted := check.Pending()
	if counted {
		args = append(args, n)
	}
	switch {
	case s.group != nil && txFrom(ctx) == nil:
		err = s.group.insert(args, counted)
	case counted:
		err = execCounted(ctx, s.stmt(ctx, qCreateTokenCounted), args)
	default:
		_, err = s.exec(ctx, qCreateToken, args...)
	}
	if err != nil {
		return fmt.Errorf("create %s token: %w", t.Kind, s.d.translate(err))
	}
	if counted {
		check.Confirm(n)
	}
	return nil
}

// tokenArgs are qCreateToken's arguments for t.
func (s *Store) tokenArgs(t storage.Token) ([]any, error) {
	data := t.Data
	if data == nil {
		data = []byte{} // the column is NOT NULL; nil would bind as NULL
	}
	var c storage.TokenClaims
	if t.Claims != nil {
		c = *t.Claims
	}
	scopes, err := joinClaim("scope", c.Scopes)
	if err != nil {
		return nil, err
	}
	audience, err := joinClaim("audience", c.Audience)
	if err != nil {
		return nil, err
	}
	return []any{string(t.Kind), t.Signature, t.RequestID, t.ClientID, t.Subject, t.Active,
		t.AccessSignature, s.time(t.RequestedAt), s.time(t.ExpiresAt),
		t.Claims != nil, c.Username, scopes, audience, c.JKT, data}, nil
}

// GetToken returns the row, active or not.
func (s *Store) GetToken(ctx context.Context, kind storage.TokenKind, signature string) (storage.Token, error) {
	ctx = quickRead(ctx)
	var t storage.Token
	var c claimColumns
	err := s.stmt(ctx, qGetToken).QueryRowContext(ctx, string(kind), signature).Scan(
		&t.Kind, &t.Signature, &t.RequestID, &t.ClientID, &t.Subject, &t.Active,
		&t.AccessSignature, timeDest{&t.RequestedAt}, timeDest{&t.ExpiresAt},
		&c.has, &c.Username, &c.scopes, &c.audience, &c.JKT, &t.Data)
	if err != nil {
		return storage.Token{}, fmt.Errorf("get %s token: %w", kind, s.d.translate(err))
	}
	t.Claims = c.claims()
	return t, nil
}

// GetTokenClaims reads only what a token check needs, leaving out data,
// most of the row's bytes: neither they nor the BLOB's pages are read.
//
// Under a pending storage.ClientCheck the same statement reads
// client_changes and confirms the check when the count has not moved.
func (s *Store) GetTokenClaims(ctx context.Context, kind storage.TokenKind, signature string) (storage.Token, error) {
	check := storage.ClientCheckFrom(ctx)
	ctx = quickRead(ctx)
	t := storage.Token{Kind: kind, Signature: signature}
	var c claimColumns
	var bookChanges sql.NullInt64
	var changes int64
	dest := []any{&t.ClientID, &t.Subject, &t.Active, timeDest{&t.RequestedAt}, timeDest{&t.ExpiresAt},
		&c.has, &c.Username, &c.scopes, &c.audience, &c.JKT, &bookChanges, &changes}
	q := qGetTokenClaimsCounted
	_, pending := check.Pending()
	if !pending {
		q, dest = qGetTokenClaims, dest[:len(dest)-1]
	}
	if err := s.stmt(ctx, q).QueryRowContext(ctx, string(kind), signature).Scan(dest...); err != nil {
		return storage.Token{}, fmt.Errorf("get %s token: %w", kind, s.d.translate(err))
	}
	if pending {
		check.Confirm(changes)
	}
	if bookChanges.Valid {
		t.SubjectBookChanges = &bookChanges.Int64
	}
	t.Claims = c.claims()
	return t, nil
}

// claimColumns receives tokenClaimColumns.
type claimColumns struct {
	storage.TokenClaims
	has              bool
	scopes, audience string
}

func (c *claimColumns) claims() *storage.TokenClaims {
	if !c.has {
		return nil
	}
	c.Scopes, c.Audience = splitClaim(c.scopes), splitClaim(c.audience)
	return &c.TokenClaims
}

// joinClaim encodes a list of scopes or audiences as one column.
func joinClaim(what string, values []string) (string, error) {
	for _, v := range values {
		if v == "" || strings.Contains(v, " ") {
			return "", fmt.Errorf("the %s %q cannot be stored: it is empty or contains a space", what, v)
		}
	}
	return strings.Join(values, " "), nil
}

func splitClaim(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

// DeactivateToken marks an active row inactive: nil for the one caller that
// changed it, storage.ErrInactive for every other caller while the row
// exists, storage.ErrNotFound when it does not.
func (s *Store) DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	err := s.execOne(ctx, qDeactivateToken, string(kind), signature)
	if errors.Is(err, storage.ErrNotFound) {
		var n int
		if err := s.stmt(ctx, qTokenExists).QueryRowContext(ctx, string(kind), signature).Scan(&n); err != nil {
			return fmt.Errorf("deactivate %s token: %w", kind, err)
		}
		if n > 0 {
			err = storage.ErrInactive
		}
	}
	if err != nil {
		return fmt.Errorf("deactivate %s token: %w", kind, err)
	}
	return nil
}

func (s *Store) DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error {
	if err := s.execOne(ctx, qDeleteToken, string(kind), signature); err != nil {
		return fmt.Errorf("delete %s token: %w", kind, err)
	}
	return nil
}

// DeleteTokensByRequest deletes the rows of kind in the grant family
// requestID. A family without such rows is not an error.
func (s *Store) DeleteTokensByRequest(ctx context.Context, kind storage.TokenKind, requestID string) error {
	if _, err := s.exec(ctx, qDeleteByRequest, string(kind), requestID); err != nil {
		return fmt.Errorf("delete %s tokens of request %q: %w", kind, requestID, err)
	}
	return nil
}

// expiredBatch bounds the rows one DeleteExpired statement removes, so that
// a large backlog neither holds the SQLite writer nor PostgreSQL row locks
// for long.
const expiredBatch = 1000

// DeleteExpired deletes every expired or outdated row the cleanup owns (see
// expiredSets) and returns how many rows it deleted.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, set := range expiredSets(now) {
		n, err := s.deleteBatches(ctx, set.q, set.before)
		total += n
		if err != nil {
			return total, fmt.Errorf("delete %s: %w", set.what, err)
		}
	}
	return total, nil
}

// expiredSet is one kind of row the cleanup deletes: those older than before.
type expiredSet struct {
	what   string
	q      query
	before time.Time
}

// expiredSets lists what DeleteExpired removes; a feature that keeps rows
// with a lifetime adds its line here.
func expiredSets(now time.Time) []expiredSet {
	retention := now.Add(-storage.LoginFailureRetention)
	return []expiredSet{
		{"expired tokens", qDeleteExpired, now},
		{"old login failures", qDeleteOldLoginFailures, retention},
		{"expired sessions", qDeleteExpiredSessions, now},
		{"old request counts", qDeleteOldRequestCounts, retention},
		{"expired device codes", qDeleteExpiredDeviceCodes, now},
		{"expired refresh grace answers", qDeleteExpiredRefreshGrace, now},
		{"expired email tokens", qDeleteExpiredEmail, now},
		{"expired used-once values", qDeleteExpiredUsedOnce, now},
		{"expired webauthn challenges", qDeleteExpiredChallenges, now},
	}
}

// deleteBatches runs q, a delete of at most expiredBatch rows older than
// before, each time in its own transaction until a batch comes up short.
// Instances running it at once each delete a row at most once between them;
// a batch that PostgreSQL aborts on a deadlock with another instance is
// retried.
func (s *Store) deleteBatches(ctx context.Context, q query, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.InTx(ctx, func(ctx context.Context) error {
			res, err := s.exec(ctx, q, s.time(before), expiredBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < expiredBatch {
			return total, nil
		}
	}
}
