package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gatehouse/storage"
)

var usedOnceTests = []test{
	{"SecondUseConflicts", func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		mustOK(t, "first use", s.UseOnce(ctx, "dpop:abc", at(0)))
		wantErr(t, "second use", s.UseOnce(ctx, "dpop:abc", at(0)), storage.ErrConflict)
		mustOK(t, "other key", s.UseOnce(ctx, "dpop:abd", at(0)))
	}},
	{"RacersHaveOneWinner", func(t *testing.T, s storage.Store) {
		errs := race(8, func(int) error { return s.UseOnce(context.Background(), "jti:race", at(0)) })
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, storage.ErrConflict):
				t.Fatalf("caller %d: %v, want nil or ErrConflict", i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d callers succeeded, want 1", wins)
		}
	}},
	{"ClientKeysRoundTrip", func(t *testing.T, s storage.Store) {
		c := storage.Client{ID: "pkjwt", Name: "Bank", RedirectURIs: []string{"https://bank.example/cb"},
			Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"},
			AuthMethod: "private_key_jwt", JWKS: `{"keys":[]}`, JWKSURI: "https://bank.example/jwks",
			RequirePAR: true, DPoPBound: true, CreatedAt: at(0), UpdatedAt: at(0)}
		mustOK(t, "create client", s.CreateClient(context.Background(), c))
		got, err := s.GetClient(context.Background(), "pkjwt")
		mustOK(t, "get client", err)
		if got.AuthMethod != c.AuthMethod || got.JWKS != c.JWKS || got.JWKSURI != c.JWKSURI || !got.RequirePAR || !got.DPoPBound {
			t.Fatalf("got %+v, want the high-assurance fields of %+v", got, c)
		}
	}},
	{"ExpiredKeysAreDeleted", func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		for i := range 3 {
			mustOK(t, "use", s.UseOnce(ctx, fmt.Sprint("old", i), at(0)))
		}
		mustOK(t, "use", s.UseOnce(ctx, "young", at(2*60e9)))
		n, err := s.DeleteExpired(ctx, at(60e9))
		mustOK(t, "delete expired", err)
		if n != 3 {
			t.Errorf("DeleteExpired removed %d rows, want 3", n)
		}
		wantErr(t, "young reused", s.UseOnce(ctx, "young", at(0)), storage.ErrConflict)
		mustOK(t, "old reused after expiry", s.UseOnce(ctx, "old0", at(0)))
	}},
	{"ExpiredKeysAmongLiveOnesAreDeleted", func(t *testing.T, s storage.Store) {
		// More than one cleanup batch, expired keys between live ones: the
		// cleanup may find them by a scan rather than an index.
		ctx := context.Background()
		const n = 2500
		err := s.InTx(ctx, func(ctx context.Context) error {
			for i := range n {
				expires := at(0)
				if i%2 == 1 {
					expires = at(2 * 60e9)
				}
				if err := s.UseOnce(ctx, fmt.Sprint("k", i), expires); err != nil {
					return err
				}
			}
			return nil
		})
		mustOK(t, "use", err)
		deleted, err := s.DeleteExpired(ctx, at(60e9))
		mustOK(t, "delete expired", err)
		if deleted != n/2 {
			t.Errorf("DeleteExpired removed %d rows, want %d", deleted, n/2)
		}
		for i := range n {
			err := s.UseOnce(ctx, fmt.Sprint("k", i), at(2*60e9))
			if i%2 == 1 {
				wantErr(t, "live key reused", err, storage.ErrConflict)
			} else {
				mustOK(t, "expired key reused", err)
			}
		}
	}},
}
