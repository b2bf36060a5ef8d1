package oauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/token/jwt"

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

// BenchmarkIDTokenSign is signing an ID token with RS256 and a 2048-bit
// key, the largest single cost of a code exchange that asks for openid.
func BenchmarkIDTokenSign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	signer := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return key, nil }}
	claims := benchRequest().Session.(interface{ IDTokenClaims() *jwt.IDTokenClaims }).IDTokenClaims()
	claims.ExpiresAt = time.Now().Add(time.Hour)
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := signer.Generate(ctx, claims.ToMapClaims(), &jwt.Headers{}); err != nil {
			b.Fatal(err)
		}
	}
}
