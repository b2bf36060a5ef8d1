package oauth

import (
	"context"
	"crypto/sha512"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"gatehouse/storage"
)

// benchConfig is fosite's configuration as New builds it, for the parts
// the token strategy reads.
func benchConfig() *fosite.Config {
	return &fosite.Config{
		AccessTokenLifespan: time.Hour,
		GlobalSecret:        []byte("0123456789abcdef0123456789abcdef"),
		HMACHasher:          sha512.New512_256,
	}
}

// BenchmarkAccessTokenGenerate is minting one opaque access token: 256
// random bits and their HMAC-SHA512/256.
func BenchmarkAccessTokenGenerate(b *testing.B) {
	strategy := compose.NewOAuth2HMACStrategy(benchConfig())
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := strategy.GenerateAccessToken(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccessTokenValidate is the HMAC check of a presented token, the
// part of validation before the database.
func BenchmarkAccessTokenValidate(b *testing.B) {
	strategy := compose.NewOAuth2HMACStrategy(benchConfig())
	ctx := context.Background()
	token, _, err := strategy.GenerateAccessToken(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest()
	for b.Loop() {
		if err := strategy.ValidateAccessToken(ctx, req, token); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRequest is an access token's request after a code exchange with
// an ID token, as stored.
func benchRequest() *fosite.Request {
	now := time.Now().UTC()
	sess := newSession()
	sess.Subject, sess.Username = storage.NewID(), "alice"
	sess.Claims.Subject, sess.Claims.Issuer = sess.Subject, "https://gatehouse.example"
	sess.Claims.AuthTime, sess.Claims.RequestedAt = now, now
	sess.SetExpiresAt(fosite.AccessToken, now.Add(time.Hour))
	sess.SetExpiresAt(fosite.RefreshToken, now.Add(720*time.Hour))
	scopes := fosite.Arguments{"openid", "offline_access", "books:read", "books:write"}
	return &fosite.Request{
		ID: storage.NewID(), RequestedAt: now,
		Client:         client{storage.Client{ID: storage.NewID()}},
		RequestedScope: scopes, GrantedScope: scopes,
		Form:    url.Values{"grant_type": {"authorization_code"}},
		Session: sess,
	}
}

// BenchmarkMarshalRequest is encoding the request stored with every token.
func BenchmarkMarshalRequest(b *testing.B) {
	req := benchRequest()
	for b.Loop() {
		if _, err := marshalRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalRequest is decoding it again, as every token check
// does.
func BenchmarkUnmarshalRequest(b *testing.B) {
	data, err := marshalRequest(benchRequest())
	if err != nil {
		b.Fatal(err)
	}
	s := &fositeStore{}
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.unmarshalRequest(ctx, data, newSession()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionClone is the copy fosite makes of a refresh token's
// session for the tokens it issues.
func BenchmarkSessionClone(b *testing.B) {
	sess := benchRequest().Session
	for b.Loop() {
		sess.Clone()
	}
}
