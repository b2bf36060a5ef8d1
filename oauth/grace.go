package oauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ory/fosite"

	"gatehouse/storage"
)

// graceStore keeps rotated refresh tokens for the grace window.
type graceStore interface {
	CreateRefreshGrace(ctx context.Context, g storage.RefreshGrace) error
	SealRefreshGrace(ctx context.Context, signature string, sealed []byte) error
	GetRefreshGrace(ctx context.Context, signature string) (storage.RefreshGrace, error)
}

// MaxRefreshGrace bounds --refresh-grace: the window exists for a client's
// own racing threads and retries, which take seconds, while every second of
// it is a second in which a stolen refresh token passes unnoticed.
const MaxRefreshGrace = time.Minute

// errInGrace is what the store answers for a rotated refresh token inside
// its grace window instead of fosite.ErrInactiveToken, which would make
// fosite revoke the family. It wraps fosite.ErrNotFound, so fosite stops
// with invalid_grant and the token endpoint answers from the grace record.
var errInGrace = fmt.Errorf("refresh token rotated within the grace window: %w", fosite.ErrNotFound)

// sealWait bounds how long a request inside the window waits for a racing
// rotation to store its answer.
const (
	sealWait = 3 * time.Second
	sealPoll = 20 * time.Millisecond
)

// inGrace reports whether signature's rotation is still inside the window.
func (s *fositeStore) inGrace(ctx context.Context, signature string) bool {
	if s.grace <= 0 {
		return false
	}
	g, err := s.db.GetRefreshGrace(ctx, signature)
	return err == nil && time.Now().Before(g.ExpiresAt)
}

// openGrace records a rotation, in the rotation's own transaction: a
// second request for the same token finds either the token active or this
// row, never neither.
func (s *fositeStore) openGrace(ctx context.Context, t storage.Token) error {
	now := time.Now().UTC()
	return s.db.CreateRefreshGrace(ctx, storage.RefreshGrace{
		Signature: t.Signature,
		ClientID:  t.ClientID,
		RequestID: t.RequestID,
		RotatedAt: now,
		ExpiresAt: now.Add(s.grace),
	})
}

// sealedAnswer is a token response as kept for the grace window.
type sealedAnswer struct {
	Body     map[string]any `json:"body"`
	IssuedAt time.Time      `json:"issued_at"`
}

// graceCipher is AES-GCM under a key derived from the system secret and
// the refresh token itself: the stored answer opens only for whoever
// presents that token again, and a copy of the database alone opens
// nothing.
func (h *Handler) graceCipher(refreshToken string) (cipher.AEAD, error) {
	base, err := hkdf.Key(sha256.New, h.cfg.TokenSecret, nil, "gatehouse/refresh-grace", 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, base)
	m.Write([]byte(refreshToken))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealGrace stores the answer a refresh just got, for the window.
func (h *Handler) sealGrace(ctx context.Context, refreshToken string, resp fosite.AccessResponder) error {
	plain, err := json.Marshal(sealedAnswer{Body: resp.ToMap(), IssuedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	aead, err := h.graceCipher(refreshToken)
	if err != nil {
		return err
	}
	signature := h.strategy.RefreshTokenSignature(ctx, refreshToken)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, plain, []byte(signature))
	return h.Store.SealRefreshGrace(ctx, signature, sealed)
}

// replayGrace answers a refresh token presented again inside its window
// with the answer its rotation got. Another client presenting it is reuse
// as ever and revokes the family.
func (h *Handler) replayGrace(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester) {
	ctx := r.Context()
	refreshToken := r.PostForm.Get("refresh_token")
	signature := h.strategy.RefreshTokenSignature(ctx, refreshToken)
	g, err := h.Store.GetRefreshGrace(ctx, signature)
	if err != nil {
		h.writeTokenError(w, r, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	if ar == nil || ar.GetClient() == nil || ar.GetClient().GetID() != g.ClientID {
		if err := h.revokeFamily(ctx, g.RequestID); err != nil {
			h.writeTokenError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		h.writeTokenError(w, r, ar, fosite.ErrInvalidGrant.WithHint("The refresh token was already used."))
		return
	}
	for deadline := time.Now().Add(sealWait); g.Sealed == nil && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return
		case <-time.After(sealPoll):
		}
		if g, err = h.Store.GetRefreshGrace(ctx, signature); err != nil {
			h.writeTokenError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
	}
	if g.Sealed == nil {
		// The rotation that won has not stored its answer; the client may
		// retry with the same token while the window lasts.
		h.writeTokenError(w, r, ar, fosite.ErrInvalidGrant.WithHint("The refresh token is being rotated by another request; retry shortly."))
		return
	}
	answer, err := h.openGrace(refreshToken, signature, g.Sealed)
	if err != nil {
		// Sealed under another system secret, by an instance not yet
		// rotated: the token is no less the client's, so no revocation.
		h.Logger.WarnContext(ctx, "open refresh grace answer", "err", err)
		h.writeTokenError(w, r, ar, fosite.ErrInvalidGrant.WithHint("The refresh token was already used."))
		return
	}
	// The same tokens, with the lifetime they have left.
	if exp, ok := answer.Body["expires_in"].(float64); ok {
		answer.Body["expires_in"] = max(int64(exp)-int64(time.Since(answer.IssuedAt)/time.Second), 0)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, answer.Body)
	if h.Metrics != nil {
		h.Metrics.TokenIssued("refresh_token")
	}
}

func (h *Handler) openGrace(refreshToken, signature string, sealed []byte) (sealedAnswer, error) {
	aead, err := h.graceCipher(refreshToken)
	if err != nil {
		return sealedAnswer{}, err
	}
	if len(sealed) < aead.NonceSize() {
		return sealedAnswer{}, errors.New("refresh grace: sealed answer too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(signature))
	if err != nil {
		return sealedAnswer{}, fmt.Errorf("refresh grace: open answer: %w", err)
	}
	var a sealedAnswer
	if err := json.Unmarshal(plain, &a); err != nil {
		return sealedAnswer{}, fmt.Errorf("refresh grace: decode answer: %w", err)
	}
	return a, nil
}

// revokeFamily deletes every access and refresh token of a grant, as
// fosite does on refresh token reuse.
func (h *Handler) revokeFamily(ctx context.Context, requestID string) error {
	return h.Store.InTx(ctx, func(ctx context.Context) error {
		if err := h.fs.RevokeRefreshToken(ctx, requestID); err != nil {
			return err
		}
		return h.fs.RevokeAccessToken(ctx, requestID)
	})
}
