package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"gatehouse/storage"
)

const (
	parPrefix = "urn:ietf:params:oauth:request_uri:"
	// parLifetime is the request_uri's expires_in: long enough for a
	// redirect to the authorization endpoint, not for a stolen one.
	parLifetime = 60 * time.Second
)

// parParams are the parameters a pushed request may carry: an
// authorization request's and client authentication's.
var parParams = slices.Concat(authorizeParams, []string{"client_secret", "client_assertion", "client_assertion_type"})

// par is POST /oauth2/par (RFC 9126): the client authenticates and pushes
// its authorization request, validated exactly as the authorization
// endpoint would, and gets a one-time request_uri for it.
func (h *Handler) par(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := h.pushedRequest(w, r)
	if err != nil {
		rfc := fosite.ErrorToRFC6749Error(err)
		h.logFailure(ctx, "pushed authorization request", err)
		h.challenge(w, r, rfc)
		h.provider.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	resp, err := h.provider.NewPushedAuthorizeResponse(ctx, ar, newSession())
	if err != nil {
		h.logFailure(ctx, "pushed authorization request", err)
		h.provider.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	h.setNonce(w)
	h.provider.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

func (h *Handler) pushedRequest(w http.ResponseWriter, r *http.Request) (fosite.AuthorizeRequester, error) {
	if err := readForm(w, r, parParams); err != nil {
		return nil, err
	}
	if r.URL.RawQuery != "" {
		// RFC 9126 §2.1: the parameters travel in the body only.
		return nil, fosite.ErrInvalidRequest.WithHint("Send the pushed authorization request's parameters in the body, not the query.")
	}
	if err := clientAuthProblem(r); err != nil {
		return nil, err
	}
	// A DPoP proof here binds the code to its key (RFC 9449 §10.1), as
	// dpop_jkt would.
	if headers := r.Header.Values("DPoP"); len(headers) > 0 {
		jkt, err := VerifyDPoP(r.Context(), headers, h.dpopCheck(r, ""), h.Store)
		if err != nil {
			return nil, dpopFailure(w, h, err)
		}
		if sent := r.PostForm.Get("dpop_jkt"); sent != "" && sent != jkt {
			return nil, dpopFailure(w, h, badProof("The dpop_jkt differs from the thumbprint of the DPoP proof's key."))
		}
		r.PostForm.Set("dpop_jkt", jkt)
		r.Form.Set("dpop_jkt", jkt)
	}
	ar, err := h.provider.NewPushedAuthorizeRequest(r.Context(), r)
	if err != nil {
		return ar, err
	}
	if err := h.checkAuthorizeExtras(ar); err != nil {
		return ar, err
	}
	return ar, nil
}

// checkAuthorizeExtras is what Gatehouse checks of every authorization
// request beyond fosite, pushed or not.
func (h *Handler) checkAuthorizeExtras(ar fosite.AuthorizeRequester) error {
	if err := h.checkPKCE(ar); err != nil {
		return err
	}
	if jkt := ar.GetRequestForm().Get("dpop_jkt"); jkt != "" {
		if b, err := base64.RawURLEncoding.DecodeString(jkt); err != nil || len(b) != sha256.Size {
			return fosite.ErrInvalidRequest.WithHint("The dpop_jkt must be a base64url SHA-256 JWK thumbprint.")
		}
	}
	return nil
}

// checkPushed refuses a client that must push its authorization requests
// (require_pushed_authorization_requests) but sent one directly.
func (h *Handler) checkPushed(r *http.Request, ar fosite.AuthorizeRequester) error {
	if strings.HasPrefix(r.URL.Query().Get("request_uri"), parPrefix) {
		return nil
	}
	if clientRecord(ar.GetClient()).RequirePAR {
		return fosite.ErrInvalidRequest.WithHint("This client must push its authorization requests to " + h.cfg.Issuer + "/oauth2/par first.")
	}
	return nil
}

// consumePAR makes a request_uri used once a code (or a denial) was issued
// from it. It is not spent when the request is first shown: the consent
// page posts the same request back, and a person may reload it (RFC 9126
// §4 allows that).
func (h *Handler) consumePAR(ctx context.Context, ar fosite.AuthorizeRequester) error {
	uri := ar.GetRequestForm().Get("request_uri")
	if !strings.HasPrefix(uri, parPrefix) {
		return nil
	}
	err := h.Store.DeactivateToken(ctx, storage.KindPAR, parSignature(uri))
	if errors.Is(err, storage.ErrInactive) || errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidRequestURI.WithHint("The request_uri has already been used.")
	}
	return err
}

func parSignature(requestURI string) string {
	sum := sha256.Sum256([]byte(requestURI))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var _ fosite.PARStorage = (*fositeStore)(nil)

// parRecord is a pushed request as stored: the request and the fields of
// an authorization request that fosite reads back besides it.
type parRecord struct {
	Request       json.RawMessage `json:"request"`
	RedirectURI   string          `json:"redirect_uri"`
	ResponseTypes []string        `json:"response_types"`
	State         string          `json:"state"`
	ResponseMode  string          `json:"response_mode"`
}

// CreatePARSession stores the pushed request under its request_uri's hash,
// so the database holds nothing that could be replayed.
func (s *fositeStore) CreatePARSession(ctx context.Context, requestURI string, ar fosite.AuthorizeRequester) error {
	// Only the authorization parameters: never the client's secret or
	// assertion.
	data, err := marshalRequest(ar.Sanitize(authorizeParams))
	if err != nil {
		return err
	}
	rec, err := json.Marshal(parRecord{
		Request:       data,
		RedirectURI:   ar.GetRedirectURI().String(),
		ResponseTypes: ar.GetResponseTypes(),
		State:         ar.GetState(),
		ResponseMode:  string(ar.GetResponseMode()),
	})
	if err != nil {
		return fmt.Errorf("marshal pushed request: %w", err)
	}
	now := time.Now().UTC()
	return s.db.CreateToken(ctx, storage.Token{
		Kind:        storage.KindPAR,
		Signature:   parSignature(requestURI),
		RequestID:   ar.GetID(),
		ClientID:    ar.GetClient().GetID(),
		Active:      true,
		RequestedAt: now,
		ExpiresAt:   now.Add(parLifetime),
		Data:        rec,
	})
}

// GetPARSession returns the pushed request only while it is unused and
// unexpired, and only to the client that pushed it.
func (s *fositeStore) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	t, err := s.db.GetToken(ctx, storage.KindPAR, parSignature(requestURI))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, errors.New("unknown request_uri")
	case err != nil:
		return nil, err
	case !t.Active:
		return nil, errors.New("request_uri already used")
	case time.Now().After(t.ExpiresAt):
		return nil, errors.New("request_uri expired")
	}
	if r, ok := ctx.Value(fosite.RequestContextKey).(*http.Request); !ok || r.Form.Get("client_id") != t.ClientID {
		return nil, errors.New("request_uri pushed by another client")
	}
	var rec parRecord
	if err := json.Unmarshal(t.Data, &rec); err != nil {
		return nil, fmt.Errorf("unmarshal pushed request: %w", err)
	}
	req, err := s.unmarshalRequest(ctx, rec.Request, nil)
	if err != nil {
		return nil, err
	}
	c, err := s.GetClient(ctx, t.ClientID)
	if err != nil {
		return nil, err
	}
	req.Client = c
	redirect, err := url.Parse(rec.RedirectURI)
	if err != nil {
		return nil, fmt.Errorf("pushed redirect_uri: %w", err)
	}
	ar := fosite.NewAuthorizeRequest()
	ar.Request = *req
	ar.RedirectURI = redirect
	ar.ResponseTypes = rec.ResponseTypes
	ar.State = rec.State
	ar.ResponseMode = fosite.ResponseModeType(rec.ResponseMode)
	return ar, nil
}

// DeletePARSession keeps the row: fosite calls it when the request is
// first shown, but the request_uri is spent only when a code or denial is
// issued from it (consumePAR), and expires after a minute regardless.
func (s *fositeStore) DeletePARSession(context.Context, string) error { return nil }

// pushedQuery is the query an authorization request stands for: for a
// request_uri from POST /oauth2/par, the pushed request's parameters, so
// that the client, redirect URI and parameter checks see what the client
// pushed. Its errors are never redirected: until the pushed request is
// found, its redirect URI is unknown.
func (h *Handler) pushedQuery(r *http.Request, query url.Values) (url.Values, error) {
	uri := query.Get("request_uri")
	if !strings.HasPrefix(uri, parPrefix) {
		return query, nil
	}
	if name := repeatedParam(query, []string{"client_id", "request_uri"}); name != "" {
		return nil, fosite.ErrInvalidRequest.WithHintf("The %q parameter must not be repeated.", name)
	}
	ctx := context.WithValue(r.Context(), fosite.RequestContextKey, formOnly(r, query))
	pushed, err := h.fs.GetPARSession(ctx, uri)
	if err != nil {
		return nil, fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown, expired, used, or was pushed by another client.").WithWrap(err)
	}
	q := url.Values{}
	for k, v := range pushed.GetRequestForm() {
		q[k] = slices.Clone(v)
	}
	q.Set("client_id", pushed.GetClient().GetID())
	q.Set("request_uri", uri)
	return q, nil
}
