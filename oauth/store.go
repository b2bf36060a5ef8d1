package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"

	"gatehouse/audit"
	"gatehouse/storage"
)

// Store is what the oauth package needs from the database.
type Store interface {
	BeginTx(ctx context.Context) (context.Context, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
	InTx(ctx context.Context, fn func(ctx context.Context) error) error

	GetUser(ctx context.Context, id string) (storage.User, error)
	GetClient(ctx context.Context, id string) (storage.Client, error)
	// CreateClient and UpdateClient keep the rows of clients described by
	// metadata documents.
	CreateClient(ctx context.Context, c storage.Client) error // storage.ErrConflict
	UpdateClient(ctx context.Context, c storage.Client) error // storage.ErrNotFound

	PutGrant(ctx context.Context, g storage.Grant) error
	GetGrant(ctx context.Context, userID, clientID string) (storage.Grant, error)
	ListGrants(ctx context.Context, userID string) ([]storage.Grant, error)
	LockGrant(ctx context.Context, userID, clientID string) error
	RevokeGrant(ctx context.Context, userID, clientID string) error

	CreateToken(ctx context.Context, t storage.Token) error
	GetToken(ctx context.Context, kind storage.TokenKind, signature string) (storage.Token, error)
	GetTokenClaims(ctx context.Context, kind storage.TokenKind, signature string) (storage.Token, error)
	DeactivateToken(ctx context.Context, kind storage.TokenKind, signature string) error
	DeleteToken(ctx context.Context, kind storage.TokenKind, signature string) error
	DeleteTokensByRequest(ctx context.Context, kind storage.TokenKind, requestID string) error

	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	CreateSigningKey(ctx context.Context, k storage.SigningKey) error
	UpdateSigningKey(ctx context.Context, k storage.SigningKey) error

	deviceStore
	graceStore

	// UseOnce is the replay cache of DPoP proofs and client assertions.
	UseOnce(ctx context.Context, key string, expires time.Time) error
}

// fositeStore adapts Store to the storage interfaces fosite's handlers
// type-assert at run time. compose.Compose only discovers a missing method
// when a flow runs, hence the assertions.
type fositeStore struct {
	db Store
	// codeSignature maps a code to its HMAC signature: fosite keys the
	// OpenID Connect state by the code itself, which must not be stored.
	codeSignature func(ctx context.Context, code string) string
	audit         audit.Recorder
	// grace is the refresh-token grace window; zero turns it off.
	grace time.Duration
}

var (
	_ fosite.ClientManager               = (*fositeStore)(nil)
	_ oauth2.AuthorizeCodeStorage        = (*fositeStore)(nil)
	_ oauth2.AccessTokenStorage          = (*fositeStore)(nil)
	_ oauth2.RefreshTokenStorage         = (*fositeStore)(nil)
	_ oauth2.TokenRevocationStorage      = (*fositeStore)(nil)
	_ pkce.PKCERequestStorage            = (*fositeStore)(nil)
	_ openid.OpenIDConnectRequestStorage = (*fositeStore)(nil)
	_ fositestorage.Transactional        = (*fositeStore)(nil)
)

// storedRequest is a fosite.Requester as kept in storage.Token.Data. The
// client is stored by id and read again when needed (see storedClient), so
// a changed client takes effect on its existing tokens at once.
type storedRequest struct {
	ID                string     `json:"id"`
	RequestedAt       time.Time  `json:"requested_at"`
	ClientID          string     `json:"client_id"`
	RequestedScope    []string   `json:"requested_scope"`
	GrantedScope      []string   `json:"granted_scope"`
	RequestedAudience []string   `json:"requested_audience,omitempty"`
	GrantedAudience   []string   `json:"granted_audience,omitempty"`
	Form              url.Values `json:"form"`
	// Session is the fosite.Session itself, encoded and decoded in the
	// same pass as the request: a json.RawMessage would cost a second
	// pass over the bytes each way.
	Session any `json:"session"`
}

func (s *fositeStore) BeginTX(ctx context.Context) (context.Context, error) { return s.db.BeginTx(ctx) }
func (s *fositeStore) Commit(ctx context.Context) error                     { return s.db.Commit(ctx) }
func (s *fositeStore) Rollback(ctx context.Context) error                   { return s.db.Rollback(ctx) }

func (s *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.db.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return client{c}, nil
}

// ClientAssertionJWTValid and SetClientAssertionJWT belong to fosite's own
// private_key_jwt, which never runs: authenticateClient checks assertions
// and records their jti itself, in one step (see clientauth.go).
func (s *fositeStore) ClientAssertionJWTValid(context.Context, string) error { return nil }
func (s *fositeStore) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return nil
}

func (s *fositeStore) create(ctx context.Context, kind storage.TokenKind, signature, accessSignature string, req fosite.Requester) error {
	data, err := memoFrom(ctx).marshal(kind, req)
	if err != nil {
		return err
	}
	tokenType := fosite.AccessToken
	switch kind {
	case storage.KindRefresh:
		tokenType = fosite.RefreshToken
	case storage.KindCode, storage.KindPKCE, storage.KindOIDC:
		tokenType = fosite.AuthorizeCode
	}
	expires := req.GetSession().GetExpiresAt(tokenType)
	if expires.IsZero() {
		// A refresh token without a lifetime still must not outlive the
		// cleanup forever; the grant's refresh TTL is the longest anything
		// lives.
		expires = time.Now().Add(maxTokenLifetime)
	}
	t := storage.Token{
		Kind:            kind,
		Signature:       signature,
		RequestID:       req.GetID(),
		ClientID:        req.GetClient().GetID(),
		Subject:         req.GetSession().GetSubject(),
		Active:          true,
		AccessSignature: accessSignature,
		RequestedAt:     req.GetRequestedAt(),
		ExpiresAt:       expires,
		Data:            data,
	}
	if kind == storage.KindAccess {
		t.Claims = accessClaims(req)
	}
	return s.db.CreateToken(ctx, t)
}

// accessClaims is what checking the access token of req needs beyond the
// row's own columns (see checkAccessToken), or nil when the token must be
// checked by fosite from the stored request: a session of another type,
// or one without expiry, which fosite reckons from its configured
// lifespan rather than the row's. No scope or audience can contain a
// space, as fosite splits them on spaces, but one that did would not fit
// the columns.
func accessClaims(req fosite.Requester) *storage.TokenClaims {
	sess, ok := req.GetSession().(*session)
	if !ok || sess.GetExpiresAt(fosite.AccessToken).IsZero() {
		return nil
	}
	scopes, aud := req.GetGrantedScopes(), req.GetGrantedAudience()
	for _, v := range slices.Concat(scopes, aud) {
		if v == "" || strings.Contains(v, " ") {
			return nil
		}
	}
	return &storage.TokenClaims{Username: sess.Username, Scopes: scopes, Audience: aud, JKT: sess.JKT}
}

// maxTokenLifetime bounds rows whose session carries no expiry.
const maxTokenLifetime = 90 * 24 * time.Hour

// get loads a row and rebuilds its request into session. It returns the
// request together with inactiveErr when the row is inactive, as fosite
// needs the request to revoke the grant's family.
func (s *fositeStore) get(ctx context.Context, kind storage.TokenKind, signature string, session fosite.Session, inactiveErr error) (fosite.Requester, error) {
	t, err := s.db.GetToken(ctx, kind, signature)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	req, err := s.unmarshalRequest(ctx, t.Data, session)
	if err != nil {
		return nil, err
	}
	if kind == storage.KindRefresh {
		memoFrom(ctx).remember(t)
	}
	if !t.Active {
		if kind == storage.KindRefresh {
			// A retired refresh token presented again: its family is revoked next.
			audit.Record(ctx, s.audit, audit.Event{Type: audit.RefreshTokenReused, Actor: "client:" + t.ClientID, Subject: t.Subject, Client: t.ClientID})
		}
		return req, inactiveErr
	}
	return req, nil
}

func marshalRequest(r fosite.Requester) ([]byte, error) {
	if sess := ownSession(r.GetSession()); sess != nil {
		return appendRequest(make([]byte, 0, 1024), r, sess)
	}
	data, err := json.Marshal(storedRequest{
		ID:                r.GetID(),
		RequestedAt:       r.GetRequestedAt(),
		ClientID:          r.GetClient().GetID(),
		RequestedScope:    r.GetRequestedScopes(),
		GrantedScope:      r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Form:              r.GetRequestForm(),
		Session:           r.GetSession(),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal request: %w", err)
	}
	return data, nil
}

func (s *fositeStore) unmarshalRequest(ctx context.Context, data []byte, session fosite.Session) (*fosite.Request, error) {
	// A session pointer in the interface field is decoded into in place.
	sr := storedRequest{Session: session}
	if session == nil {
		sr.Session = new(json.RawMessage)
	}
	if own := ownSession(session); own == nil || decodeRequest(data, &sr, own) != nil {
		sr = storedRequest{Session: sr.Session}
		if err := json.Unmarshal(data, &sr); err != nil {
			return nil, fmt.Errorf("unmarshal request: %w", err)
		}
	}
	return &fosite.Request{
		ID:                sr.ID,
		RequestedAt:       sr.RequestedAt,
		Client:            &storedClient{id: sr.ClientID, load: func() (storage.Client, error) { return s.db.GetClient(ctx, sr.ClientID) }},
		RequestedScope:    sr.RequestedScope,
		GrantedScope:      sr.GrantedScope,
		RequestedAudience: sr.RequestedAudience,
		GrantedAudience:   sr.GrantedAudience,
		Form:              sr.Form,
		Session:           session,
	}, nil
}

// ownSession is sess when it is Gatehouse's session, which decodeRequest
// decodes, or nil.
func ownSession(sess fosite.Session) *session {
	if s, ok := sess.(*session); ok && s != nil && s.DefaultSession != nil {
		return s
	}
	return nil
}

func (s *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.create(ctx, storage.KindCode, signature, "", req)
}

func (s *fositeStore) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, storage.KindCode, signature, session, fosite.ErrInvalidatedAuthorizeCode)
}

// errGrantRevoked refuses a code exchange or refresh whose user revoked the
// app's access while the request was on its way; the token endpoint answers
// invalid_grant.
var errGrantRevoked = errors.New("the user revoked the app's access")

// lockGrant holds the user's grant to the client for the rest of the
// issuing transaction, so a revoke either waits and then deletes what the
// transaction issues, or has already deleted the grant and nothing is
// issued. It runs before any token row is touched, in the order RevokeGrant
// takes its locks (grant, then tokens), so the two cannot deadlock. Every
// token of a user rests on a grant, as a code is issued only with consent
// stored; client credentials have no user and no grant.
func (s *fositeStore) lockGrant(ctx context.Context, t storage.Token) error {
	if t.Subject == "" {
		return nil
	}
	err := s.db.LockGrant(ctx, t.Subject, t.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return errGrantRevoked
	}
	return err
}

// InvalidateAuthorizeCodeSession is the one-time check: fosite read the code
// before its transaction began, so two racing exchanges can both have seen it
// active. The conditional update lets exactly one through; the loser's error
// is turned into invalid_grant by the token endpoint. It is the first call of
// the exchange's transaction, so it takes the grant's lock.
func (s *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	t, err := s.db.GetToken(ctx, storage.KindCode, signature)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	if err != nil {
		return err
	}
	if err := s.lockGrant(ctx, t); err != nil {
		return err
	}
	err = s.db.DeactivateToken(ctx, storage.KindCode, signature)
	if errors.Is(err, storage.ErrInactive) || errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return err
}

func (s *fositeStore) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.create(ctx, storage.KindAccess, signature, "", req)
}

func (s *fositeStore) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, err := s.get(ctx, storage.KindAccess, signature, session, fosite.ErrInactiveToken)
	if errors.Is(err, fosite.ErrInactiveToken) {
		return nil, fosite.ErrNotFound
	}
	return req, err
}

func (s *fositeStore) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return notFound(s.db.DeleteToken(ctx, storage.KindAccess, signature))
}

func (s *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	return s.create(ctx, storage.KindRefresh, signature, accessSignature, req)
}

func (s *fositeStore) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, err := s.get(ctx, storage.KindRefresh, signature, session, fosite.ErrInactiveToken)
	if errors.Is(err, fosite.ErrInactiveToken) && s.inGrace(ctx, signature) {
		return nil, errInGrace
	}
	return req, err
}

func (s *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return notFound(s.db.DeleteToken(ctx, storage.KindRefresh, signature))
}

// RotateRefreshToken retires the presented refresh token and the access token
// issued with it. The conditional deactivation makes one of several racing
// rotations the winner; the others fail with ErrInactiveToken. It is the
// first call of the refresh's transaction, so it takes the grant's lock.
func (s *fositeStore) RotateRefreshToken(ctx context.Context, _ string, signature string) error {
	t, err := s.refreshRow(ctx, signature)
	if err != nil {
		return err
	}
	if err := s.lockGrant(ctx, t); err != nil {
		return err
	}
	if err := s.db.DeactivateToken(ctx, storage.KindRefresh, signature); err != nil {
		if errors.Is(err, storage.ErrInactive) || errors.Is(err, storage.ErrNotFound) {
			return fosite.ErrInactiveToken
		}
		return err
	}
	if s.grace > 0 {
		if err := s.openGrace(ctx, t); err != nil {
			return err
		}
	}
	if t.AccessSignature == "" {
		return nil
	}
	if err := s.db.DeleteToken(ctx, storage.KindAccess, t.AccessSignature); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}

// refreshRow is the refresh token's row as GetRefreshTokenSession read it
// earlier in the request, or read now when it did not. The columns
// RotateRefreshToken uses never change once the row is written, so the
// earlier read is as good as a new one; whether the token is still active
// is decided by the conditional deactivation, not by this read.
func (s *fositeStore) refreshRow(ctx context.Context, signature string) (storage.Token, error) {
	if t, ok := memoFrom(ctx).refreshRow(signature); ok {
		return t, nil
	}
	t, err := s.db.GetToken(ctx, storage.KindRefresh, signature)
	return t, notFound(err)
}

func (s *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.db.DeleteTokensByRequest(ctx, storage.KindRefresh, requestID)
}

func (s *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.db.DeleteTokensByRequest(ctx, storage.KindAccess, requestID)
}

func (s *fositeStore) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.create(ctx, storage.KindPKCE, signature, "", req)
}

func (s *fositeStore) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.get(ctx, storage.KindPKCE, signature, session, fosite.ErrNotFound)
}

// DeletePKCERequestSession keeps the row. fosite deletes the PKCE state
// before it compares the verifier, so a failed attempt followed by a retry
// without any verifier would find no challenge and pass as a non-PKCE
// exchange. Keeping the row until it expires with its code means every
// retry still has to meet the challenge.
func (s *fositeStore) DeletePKCERequestSession(context.Context, string) error { return nil }

func (s *fositeStore) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.create(ctx, storage.KindOIDC, s.codeSignature(ctx, code), "", req)
}

func (s *fositeStore) GetOpenIDConnectSession(ctx context.Context, code string, _ fosite.Requester) (fosite.Requester, error) {
	return s.get(ctx, storage.KindOIDC, s.codeSignature(ctx, code), newSession(), fosite.ErrNotFound)
}

func (s *fositeStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return notFound(s.db.DeleteToken(ctx, storage.KindOIDC, s.codeSignature(ctx, code)))
}

func notFound(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrNotFound
	}
	return err
}
