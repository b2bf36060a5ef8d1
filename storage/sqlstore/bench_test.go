package sqlstore

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/storage"
	"gatehouse/storage/storagetest"
)

// The benchmarks run in parallel, as requests do: ns/op is the wall time per
// operation across all goroutines, the inverse of throughput. Reads take
// b.Context(), which can be cancelled as a request's context can: the
// database layers watch such a context, and that has its own cost.

var backends = []struct {
	name   string
	newDSN func(testing.TB) string
}{
	{"sqlite", storagetest.SQLitePath},
	{"postgres", storagetest.PostgresDSN},
}

func newBenchStore(b *testing.B, newDSN func(testing.TB) string) (*Store, storage.Client) {
	s := mustOpen(b, newDSN(b))
	c := storage.Client{ID: storage.NewID(), Name: "bench", Public: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateClient(b.Context(), c); err != nil {
		b.Fatal(err)
	}
	return s, c
}

// benchToken is a token row of a realistic size: fosite's serialized
// request with its session is about 1 KB.
func benchToken(kind storage.TokenKind, clientID, requestID string) storage.Token {
	now := time.Now()
	return storage.Token{
		Kind: kind, Signature: storage.NewID() + storage.NewID(), RequestID: requestID,
		ClientID: clientID, Subject: "user", Active: true,
		RequestedAt: now, ExpiresAt: now.Add(time.Hour), Data: make([]byte, 1024),
	}
}

func BenchmarkGetToken(b *testing.B) {
	benchGetToken(b, (*Store).GetToken)
}

// BenchmarkGetTokenClaims is the read of a bearer check: the row without
// its data.
func BenchmarkGetTokenClaims(b *testing.B) {
	benchGetToken(b, (*Store).GetTokenClaims)
}

func benchGetToken(b *testing.B, get func(*Store, context.Context, storage.TokenKind, string) (storage.Token, error)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, c := newBenchStore(b, be.newDSN)
			sigs := make([]string, 1000)
			err := s.InTx(b.Context(), func(ctx context.Context) error {
				for i := range sigs {
					tok := benchToken(storage.KindAccess, c.ID, strconv.Itoa(i))
					if err := s.CreateToken(ctx, tok); err != nil {
						return err
					}
					sigs[i] = tok.Signature
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					sig := sigs[next.Add(1)%int64(len(sigs))]
					if _, err := get(s, b.Context(), storage.KindAccess, sig); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkClientThenTokenClaims is an introspection's two reads: the
// caller's client, then the token's claims. "checked" reads client_changes
// for the lookup; "deferred" looks up under a storage.ClientCheck, which the
// claims' read confirms.
func BenchmarkClientThenTokenClaims(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, c := newBenchStore(b, be.newDSN)
			tok := benchToken(storage.KindAccess, c.ID, "req")
			if err := s.CreateToken(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
			if _, err := s.GetClient(b.Context(), c.ID); err != nil { // fills the cache
				b.Fatal(err)
			}
			for _, step := range []struct {
				name string
				ctx  func() (context.Context, *storage.ClientCheck)
			}{
				{"checked", func() (context.Context, *storage.ClientCheck) { return b.Context(), nil }},
				{"deferred", func() (context.Context, *storage.ClientCheck) { return storage.DeferClientCheck(b.Context()) }},
			} {
				b.Run(step.name, func(b *testing.B) {
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							ctx, check := step.ctx()
							if _, err := s.GetClient(ctx, c.ID); err != nil {
								b.Error(err)
								return
							}
							if _, err := s.GetTokenClaims(ctx, tok.Kind, tok.Signature); err != nil || check.Stale() {
								b.Errorf("GetTokenClaims: %v, stale %v", err, check.Stale())
								return
							}
						}
					})
				})
			}
		})
	}
}

// BenchmarkListBooks is the page of 20 books a GET /api/books reads (21
// rows: one more tells whether another page follows).
func BenchmarkListBooks(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := mustOpen(b, be.newDSN(b))
			ctx := b.Context()
			now := time.Now()
			var user string
			for u := range 3 {
				id := storage.NewID()
				if err := s.CreateUser(ctx, storage.User{ID: id, Username: "u" + strconv.Itoa(u), PasswordHash: "x", CreatedAt: now}); err != nil {
					b.Fatal(err)
				}
				for i := range 30 {
					year := 1900 + i
					bk := storage.Book{ID: storage.NewID(), UserID: id, Title: "A book of some length " + strconv.Itoa(i), Author: "Someone Wrote-It", Year: &year, CreatedAt: now, UpdatedAt: now}
					if err := s.CreateBook(ctx, bk); err != nil {
						b.Fatal(err)
					}
				}
				user = id
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if bs, err := s.ListBooks(b.Context(), user, "", 21); err != nil || len(bs) != 21 {
						b.Errorf("ListBooks: %d books, %v", len(bs), err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkBookChanges is the read before every GET /api/books: the count
// that tells whether a cached page is still the user's books.
func BenchmarkBookChanges(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := mustOpen(b, be.newDSN(b))
			u := storage.User{ID: storage.NewID(), Username: "reader", PasswordHash: "x", CreatedAt: time.Now()}
			if err := s.CreateUser(b.Context(), u); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.BookChanges(b.Context(), u.ID); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkCodeExchangeTx is the storage side of redeeming an authorization
// code: use the code, store an access and a refresh token, in one
// transaction.
func BenchmarkCodeExchangeTx(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, c := newBenchStore(b, be.newDSN)
			codes := make(chan storage.Token, b.N)
			err := s.InTx(b.Context(), func(ctx context.Context) error {
				for i := range b.N {
					code := benchToken(storage.KindCode, c.ID, strconv.Itoa(i))
					if err := s.CreateToken(ctx, code); err != nil {
						return err
					}
					codes <- code
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			close(codes)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					code := <-codes
					err := s.InTx(context.Background(), func(ctx context.Context) error {
						if err := s.DeactivateToken(ctx, storage.KindCode, code.Signature); err != nil {
							return err
						}
						if err := s.CreateToken(ctx, benchToken(storage.KindAccess, c.ID, code.RequestID)); err != nil {
							return err
						}
						return s.CreateToken(ctx, benchToken(storage.KindRefresh, c.ID, code.RequestID))
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGetClient is a client lookup while tokens are being written, as
// under load: "cached" is GetClient, the change count and then memory;
// "row" reads and decodes the client's row each time, as GetClient did
// before the cache.
func BenchmarkGetClient(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, c := newBenchStore(b, be.newDSN)
			c.ID, c.Public = storage.NewID(), false
			c.SecretHash = make([]byte, 32)
			c.RedirectURIs = []string{"https://app.example/callback"}
			c.Scopes = []string{"openid", "offline_access", "books:read", "books:write"}
			c.GrantTypes = []string{"authorization_code", "refresh_token"}
			if err := s.CreateClient(b.Context(), c); err != nil {
				b.Fatal(err)
			}
			for _, lookup := range []struct {
				name string
				get  func(context.Context, string) (storage.Client, error)
			}{{"cached", s.GetClient}, {"row", s.getClient}} {
				b.Run(lookup.name, func(b *testing.B) {
					// A writer beside the readers keeps SQLite's
					// readers from reusing their page caches, as
					// token inserts do under load.
					stop := make(chan struct{})
					done := make(chan struct{})
					go func() {
						defer close(done)
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							if err := s.CreateToken(context.Background(), benchToken(storage.KindAccess, c.ID, strconv.Itoa(i))); err != nil {
								b.Error(err)
								return
							}
							time.Sleep(100 * time.Microsecond)
						}
					}()
					b.ReportAllocs()
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := lookup.get(context.Background(), c.ID); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.StopTimer()
					close(stop)
					<-done
				})
			}
		})
	}
}
