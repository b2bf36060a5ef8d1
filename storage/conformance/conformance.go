// Package conformance is the test suite every storage.Store must pass. A
// backend's tests call RunTests with a function that opens an empty store.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"gatehouse/storage"
)

// RunTests runs the suite. newStore must return an empty store and arrange
// for its closing when t ends; every subtest gets its own.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	suites := []struct {
		name  string
		tests []test
	}{
		{"Users", userTests},
		{"Clients", clientTests},
		{"Grants", grantTests},
		{"Tokens", tokenTests},
		{"Books", bookTests},
		{"SigningKeys", signingKeyTests},
		{"LoginFailures", loginFailureTests},
		{"Email", emailTests},
		{"LoginReservations", loginReservationTests},
		{"Sessions", sessionTests},
		{"TwoStep", twoStepTests},
		{"DeviceCodes", deviceTests},
		{"RefreshGrace", graceTests},
		{"PostLogoutRedirectURIs", logoutTests},
		{"UsedOnce", usedOnceTests},
		{"Transactions", txTests},
		{"Misc", miscTests},
		{"UserAdmin", userAdminTests},
		{"Audit", auditTests},
		{"Passkeys", passkeyTests},
	}
	for _, suite := range suites {
		t.Run(suite.name, func(t *testing.T) {
			for _, tc := range suite.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, newStore(t))
				})
			}
		})
	}
}

type test struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// base is the suite's "now": a whole microsecond, as the stores keep.
var base = time.Date(2030, time.March, 4, 5, 6, 7, 123456000, time.UTC)

// at returns base moved by d.
func at(d time.Duration) time.Time { return base.Add(d) }

// equateEmpty lets a backend return nil or an empty slice alike.
var equateEmpty = cmpopts.EquateEmpty()

func wantErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", op, err, want)
	}
}

func mustOK(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

func newUser(username string) storage.User {
	return storage.User{ID: storage.NewID(), Username: username, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", CreatedAt: base}
}

// mustBookChanges returns userID's BookChanges as GetTokenClaims should.
func mustBookChanges(t *testing.T, s storage.Store, userID string) *int64 {
	t.Helper()
	n, err := s.BookChanges(t.Context(), userID)
	mustOK(t, "BookChanges", err)
	return &n
}

func mustCreateUser(t *testing.T, s storage.Store, username string) storage.User {
	t.Helper()
	u := newUser(username)
	mustOK(t, "CreateUser", s.CreateUser(t.Context(), u))
	return u
}

func mustCreateClient(t *testing.T, s storage.Store, ownerID string) storage.Client {
	t.Helper()
	c := storage.Client{
		ID:           storage.NewID(),
		OwnerID:      ownerID,
		Name:         "Reading list",
		SecretHash:   []byte("$2a$12$secret-hash"),
		RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/cb"},
		Scopes:       []string{"openid", "books:read"},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Origin:       storage.OriginCLI,
		CreatedAt:    base,
		UpdatedAt:    base,
	}
	mustOK(t, "CreateClient", s.CreateClient(t.Context(), c))
	return c
}

func newToken(kind storage.TokenKind, clientID, subject, requestID string) storage.Token {
	return storage.Token{
		Kind:        kind,
		Signature:   storage.NewID(),
		RequestID:   requestID,
		ClientID:    clientID,
		Subject:     subject,
		Active:      true,
		RequestedAt: base,
		ExpiresAt:   at(time.Hour),
		Data:        []byte(`{"id":"` + requestID + `"}`),
	}
}

func mustCreateToken(t *testing.T, s storage.Store, tok storage.Token) storage.Token {
	t.Helper()
	mustOK(t, "CreateToken", s.CreateToken(t.Context(), tok))
	return tok
}

func mustGetToken(t *testing.T, s storage.Store, kind storage.TokenKind, signature string) storage.Token {
	t.Helper()
	tok, err := s.GetToken(t.Context(), kind, signature)
	mustOK(t, "GetToken", err)
	return tok
}

// tokenExists reports whether the row is there, failing on other errors.
func tokenExists(t *testing.T, s storage.Store, tok storage.Token) bool {
	t.Helper()
	_, err := s.GetToken(t.Context(), tok.Kind, tok.Signature)
	if errors.Is(err, storage.ErrNotFound) {
		return false
	}
	mustOK(t, "GetToken", err)
	return true
}

// mustTokens checks which of the tokens exist.
func mustTokens(t *testing.T, s storage.Store, present, gone []storage.Token) {
	t.Helper()
	for _, tok := range present {
		if !tokenExists(t, s, tok) {
			t.Errorf("%s token of client %s, subject %q, request %s: gone, want present", tok.Kind, tok.ClientID, tok.Subject, tok.RequestID)
		}
	}
	for _, tok := range gone {
		if tokenExists(t, s, tok) {
			t.Errorf("%s token of client %s, subject %q, request %s: present, want gone", tok.Kind, tok.ClientID, tok.Subject, tok.RequestID)
		}
	}
}

// race runs fn n times at once and returns the errors, in call order.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// mustOneWinner checks that exactly one error is nil and every other is
// storage.ErrInactive, and returns the winner's index.
func mustOneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("callers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrInactive):
			t.Fatalf("caller %d: got error %v, want nil or %v", i, err, storage.ErrInactive)
		}
	}
	if winner < 0 {
		t.Fatal("no caller succeeded")
	}
	return winner
}

var userTests = []test{
	{"CreateAndGet", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "Alice")
		want := u
		want.Username = "alice"

		got, err := s.GetUser(ctx, u.ID)
		mustOK(t, "GetUser", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetUser (-want +got):\n%s", diff)
		}
		for _, name := range []string{"alice", "ALICE", "aLiCe"} {
			got, err := s.GetUserByUsername(ctx, name)
			mustOK(t, "GetUserByUsername "+name, err)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetUserByUsername(%q) (-want +got):\n%s", name, diff)
			}
		}
	}},
	{"UsernameTakenWhateverTheCase", func(t *testing.T, s storage.Store) {
		mustCreateUser(t, s, "bob")
		err := s.CreateUser(t.Context(), newUser("BoB"))
		wantErr(t, "CreateUser", err, storage.ErrConflict)
	}},
	{"IDTaken", func(t *testing.T, s storage.Store) {
		u := mustCreateUser(t, s, "carol")
		dup := newUser("dave")
		dup.ID = u.ID
		err := s.CreateUser(t.Context(), dup)
		wantErr(t, "CreateUser", err, storage.ErrConflict)
	}},
	{"NotFound", func(t *testing.T, s storage.Store) {
		_, err := s.GetUser(t.Context(), "missing")
		wantErr(t, "GetUser", err, storage.ErrNotFound)
		_, err = s.GetUserByUsername(t.Context(), "missing")
		wantErr(t, "GetUserByUsername", err, storage.ErrNotFound)
	}},
	{"Count", func(t *testing.T, s storage.Store) {
		for want := range 4 {
			got, err := s.CountUsers(t.Context())
			mustOK(t, "CountUsers", err)
			if got != want {
				t.Fatalf("CountUsers = %d, want %d", got, want)
			}
			mustCreateUser(t, s, fmt.Sprintf("user%d", want))
		}
	}},
}

var clientTests = []test{
	{"CreateAndGet", func(t *testing.T, s storage.Store) {
		owner := mustCreateUser(t, s, "owner")
		confidential := mustCreateClient(t, s, owner.ID)
		public := storage.Client{
			ID:           storage.NewID(),
			Name:         "CLI",
			Public:       true,
			RedirectURIs: []string{"com.example.app:/cb"},
			Scopes:       []string{"books:read"},
			GrantTypes:   []string{"authorization_code"},
			IDTokenAlg:   "ES256",
			CreatedAt:    at(time.Second),
			UpdatedAt:    at(2 * time.Second),
		}
		mustOK(t, "CreateClient", s.CreateClient(t.Context(), public))

		for _, want := range []storage.Client{confidential, public} {
			got, err := s.GetClient(t.Context(), want.ID)
			mustOK(t, "GetClient", err)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetClient(%s) (-want +got):\n%s", want.Name, diff)
			}
		}
	}},
	{"IDTaken", func(t *testing.T, s storage.Store) {
		c := mustCreateClient(t, s, "")
		wantErr(t, "CreateClient", s.CreateClient(t.Context(), c), storage.ErrConflict)
	}},
	{"NotFound", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		_, err := s.GetClient(ctx, "missing")
		wantErr(t, "GetClient", err, storage.ErrNotFound)
		err = s.UpdateClient(ctx, storage.Client{ID: "missing", Name: "x", UpdatedAt: base})
		wantErr(t, "UpdateClient", err, storage.ErrNotFound)
		err = s.SetClientSecret(ctx, "missing", []byte("hash"), base)
		wantErr(t, "SetClientSecret", err, storage.ErrNotFound)
		wantErr(t, "DeleteClient", s.DeleteClient(ctx, "missing"), storage.ErrNotFound)
	}},
	{"UpdateChangesOnlyEditableFields", func(t *testing.T, s storage.Store) {
		owner := mustCreateUser(t, s, "owner")
		c := mustCreateClient(t, s, owner.ID)
		update := storage.Client{
			ID:           c.ID,
			OwnerID:      "",
			Name:         "Renamed",
			SecretHash:   []byte("ignored"),
			Public:       true,
			RedirectURIs: []string{"https://new.example/cb"},
			Scopes:       []string{"books:write"},
			GrantTypes:   []string{"client_credentials"},
			IDTokenAlg:   "EdDSA",
			CreatedAt:    at(time.Hour),
			UpdatedAt:    at(time.Minute),
		}
		mustOK(t, "UpdateClient", s.UpdateClient(t.Context(), update))

		want := c
		want.Name, want.RedirectURIs, want.Scopes, want.GrantTypes, want.IDTokenAlg, want.UpdatedAt =
			update.Name, update.RedirectURIs, update.Scopes, update.GrantTypes, update.IDTokenAlg, update.UpdatedAt
		got, err := s.GetClient(t.Context(), c.ID)
		mustOK(t, "GetClient", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after UpdateClient (-want +got):\n%s", diff)
		}
	}},
	{"SetClientSecret", func(t *testing.T, s storage.Store) {
		c := mustCreateClient(t, s, "")
		mustOK(t, "SetClientSecret", s.SetClientSecret(t.Context(), c.ID, []byte("new-hash"), at(time.Hour)))
		want := c
		want.SecretHash, want.UpdatedAt = []byte("new-hash"), at(time.Hour)
		got, err := s.GetClient(t.Context(), c.ID)
		mustOK(t, "GetClient", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after SetClientSecret (-want +got):\n%s", diff)
		}
	}},
	{"ListByCreation", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		var all []storage.Client
		for i, owner := range []string{alice.ID, bob.ID, "", alice.ID} {
			c := storage.Client{
				ID: storage.NewID(), OwnerID: owner, Name: fmt.Sprintf("app %d", i), Public: true,
				// Created in the reverse of insertion order.
				CreatedAt: at(-time.Duration(i) * time.Minute), UpdatedAt: base,
			}
			mustOK(t, "CreateClient", s.CreateClient(ctx, c))
			all = append([]storage.Client{c}, all...)
		}

		got, err := s.ListClients(ctx)
		mustOK(t, "ListClients", err)
		if diff := cmp.Diff(all, got, equateEmpty); diff != "" {
			t.Errorf("ListClients (-want +got):\n%s", diff)
		}
		for _, tc := range []struct {
			owner string
			want  []storage.Client
		}{
			{alice.ID, []storage.Client{all[0], all[3]}},
			{bob.ID, []storage.Client{all[2]}},
			{"nobody", nil},
		} {
			got, err := s.ListClientsByOwner(ctx, tc.owner)
			mustOK(t, "ListClientsByOwner", err)
			if diff := cmp.Diff(tc.want, got, equateEmpty); diff != "" {
				t.Errorf("ListClientsByOwner(%s) (-want +got):\n%s", tc.owner, diff)
			}
		}
	}},
	{"ListEmpty", func(t *testing.T, s storage.Store) {
		got, err := s.ListClients(t.Context())
		mustOK(t, "ListClients", err)
		if len(got) != 0 {
			t.Errorf("ListClients = %v, want none", got)
		}
	}},
	{"DeleteTakesGrantsAndTokens", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "user")
		doomed, kept := mustCreateClient(t, s, ""), mustCreateClient(t, s, "")
		for _, c := range []storage.Client{doomed, kept} {
			mustOK(t, "PutGrant", s.PutGrant(ctx, storage.Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}))
		}
		gone := []storage.Token{
			mustCreateToken(t, s, newToken(storage.KindAccess, doomed.ID, u.ID, "r1")),
			mustCreateToken(t, s, newToken(storage.KindRefresh, doomed.ID, u.ID, "r1")),
			mustCreateToken(t, s, newToken(storage.KindAccess, doomed.ID, "", "r2")),
		}
		present := []storage.Token{
			mustCreateToken(t, s, newToken(storage.KindAccess, kept.ID, u.ID, "r3")),
		}

		mustOK(t, "DeleteClient", s.DeleteClient(ctx, doomed.ID))

		_, err := s.GetClient(ctx, doomed.ID)
		wantErr(t, "GetClient", err, storage.ErrNotFound)
		_, err = s.GetGrant(ctx, u.ID, doomed.ID)
		wantErr(t, "GetGrant of the deleted client", err, storage.ErrNotFound)
		_, err = s.GetGrant(ctx, u.ID, kept.ID)
		mustOK(t, "GetGrant of the other client", err)
		mustTokens(t, s, present, gone)
	}},
	// The next three read the client before changing it, so that a backend
	// answering from memory must notice the change.
	{"ChangesSeenAfterRead", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		owner := mustCreateUser(t, s, "owner")
		c := mustCreateClient(t, s, owner.ID)
		read := func(what string) storage.Client {
			t.Helper()
			got, err := s.GetClient(ctx, c.ID)
			mustOK(t, "GetClient "+what, err)
			return got
		}
		read("before the changes")
		read("again")

		mustOK(t, "SetClientSecret", s.SetClientSecret(ctx, c.ID, []byte("new-hash"), at(time.Hour)))
		if got := read("after SetClientSecret"); string(got.SecretHash) != "new-hash" {
			t.Errorf("after SetClientSecret the secret hash is %q", got.SecretHash)
		}
		update := c
		update.RedirectURIs, update.UpdatedAt = []string{"https://new.example/cb"}, at(2*time.Hour)
		mustOK(t, "UpdateClient", s.UpdateClient(ctx, update))
		if got := read("after UpdateClient"); !cmp.Equal(got.RedirectURIs, update.RedirectURIs) {
			t.Errorf("after UpdateClient the redirect URIs are %v", got.RedirectURIs)
		}
		// The client goes with its owner, by a cascade no client method
		// runs.
		mustOK(t, "DeleteUser", s.DeleteUser(ctx, owner.ID))
		_, err := s.GetClient(ctx, c.ID)
		wantErr(t, "GetClient after deleting its owner", err, storage.ErrNotFound)
	}},
	{"RolledBackChangeNotSeen", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		c, other := mustCreateClient(t, s, ""), mustCreateClient(t, s, "")
		_, err := s.GetClient(ctx, c.ID)
		mustOK(t, "GetClient", err)

		txCtx, err := s.BeginTx(ctx)
		mustOK(t, "BeginTx", err)
		update := c
		update.Name, update.UpdatedAt = "Never", at(time.Hour)
		mustOK(t, "UpdateClient", s.UpdateClient(txCtx, update))
		got, err := s.GetClient(txCtx, c.ID)
		mustOK(t, "GetClient in the transaction", err)
		if got.Name != "Never" {
			t.Errorf("GetClient in the transaction that renamed it: name %q", got.Name)
		}
		mustOK(t, "Rollback", s.Rollback(txCtx))

		// A later write to another client must not bring the rolled-back
		// state back.
		mustOK(t, "SetClientSecret", s.SetClientSecret(ctx, other.ID, []byte("other-hash"), at(time.Hour)))
		for _, what := range []string{"after the rollback", "again"} {
			got, err := s.GetClient(ctx, c.ID)
			mustOK(t, "GetClient "+what, err)
			if diff := cmp.Diff(c, got); diff != "" {
				t.Errorf("GetClient %s (-want +got):\n%s", what, diff)
			}
		}
	}},
	{"ReadClientIsACopy", func(t *testing.T, s storage.Store) {
		c := mustCreateClient(t, s, "")
		got, err := s.GetClient(t.Context(), c.ID)
		mustOK(t, "GetClient", err)
		got.RedirectURIs[0], got.Scopes[0], got.SecretHash[0] = "changed", "changed", 'x'
		again, err := s.GetClient(t.Context(), c.ID)
		mustOK(t, "GetClient", err)
		if diff := cmp.Diff(c, again); diff != "" {
			t.Errorf("a caller's change to a read client reached the next read (-want +got):\n%s", diff)
		}
	}},
}

var grantTests = []test{
	{"PutAndGet", func(t *testing.T, s storage.Store) {
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		want := storage.Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{"openid", "books:read"}, RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: base, UpdatedAt: base}
		mustOK(t, "PutGrant", s.PutGrant(t.Context(), want))
		got, err := s.GetGrant(t.Context(), u.ID, c.ID)
		mustOK(t, "GetGrant", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetGrant (-want +got):\n%s", diff)
		}
	}},
	{"PutAgainReplacesScopesAndRedirectURIs", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		first := storage.Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}
		mustOK(t, "PutGrant", s.PutGrant(ctx, first))
		second := storage.Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{"openid", "books:write"}, RedirectURIs: []string{"http://localhost/cb", "https://app.example/cb"}, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)}
		mustOK(t, "PutGrant", s.PutGrant(ctx, second))

		want := second
		want.CreatedAt = first.CreatedAt
		got, err := s.GetGrant(ctx, u.ID, c.ID)
		mustOK(t, "GetGrant", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetGrant (-want +got):\n%s", diff)
		}
	}},
	{"GetNotFound", func(t *testing.T, s storage.Store) {
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		_, err := s.GetGrant(t.Context(), u.ID, c.ID)
		wantErr(t, "GetGrant", err, storage.ErrNotFound)
	}},
	{"ListNewestFirst", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		c1, c2 := mustCreateClient(t, s, ""), mustCreateClient(t, s, "")
		older := storage.Grant{UserID: alice.ID, ClientID: c1.ID, Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}
		newer := storage.Grant{UserID: alice.ID, ClientID: c2.ID, Scopes: []string{"books:read"}, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)}
		other := storage.Grant{UserID: bob.ID, ClientID: c1.ID, Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}
		for _, g := range []storage.Grant{older, newer, other} {
			mustOK(t, "PutGrant", s.PutGrant(ctx, g))
		}
		for _, tc := range []struct {
			user string
			want []storage.Grant
		}{
			{alice.ID, []storage.Grant{newer, older}},
			{bob.ID, []storage.Grant{other}},
			{"nobody", nil},
		} {
			got, err := s.ListGrants(ctx, tc.user)
			mustOK(t, "ListGrants", err)
			if diff := cmp.Diff(tc.want, got, equateEmpty); diff != "" {
				t.Errorf("ListGrants(%s) (-want +got):\n%s", tc.user, diff)
			}
		}
	}},
	{"RevokeTakesOnlyThatUsersTokensOfThatClient", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		c1, c2 := mustCreateClient(t, s, ""), mustCreateClient(t, s, "")
		for _, pair := range [][2]string{{alice.ID, c1.ID}, {alice.ID, c2.ID}, {bob.ID, c1.ID}} {
			mustOK(t, "PutGrant", s.PutGrant(ctx, storage.Grant{UserID: pair[0], ClientID: pair[1], Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}))
		}
		gone := []storage.Token{
			mustCreateToken(t, s, newToken(storage.KindAccess, c1.ID, alice.ID, "a1")),
			mustCreateToken(t, s, newToken(storage.KindRefresh, c1.ID, alice.ID, "a1")),
			mustCreateToken(t, s, newToken(storage.KindAccess, c1.ID, alice.ID, "a2")),
		}
		present := []storage.Token{
			mustCreateToken(t, s, newToken(storage.KindAccess, c2.ID, alice.ID, "a3")),
			mustCreateToken(t, s, newToken(storage.KindAccess, c1.ID, bob.ID, "b1")),
			mustCreateToken(t, s, newToken(storage.KindAccess, c1.ID, "", "cc")),
		}

		mustOK(t, "RevokeGrant", s.RevokeGrant(ctx, alice.ID, c1.ID))

		_, err := s.GetGrant(ctx, alice.ID, c1.ID)
		wantErr(t, "GetGrant of the revoked grant", err, storage.ErrNotFound)
		for _, pair := range [][2]string{{alice.ID, c2.ID}, {bob.ID, c1.ID}} {
			_, err := s.GetGrant(ctx, pair[0], pair[1])
			mustOK(t, "GetGrant of another grant", err)
		}
		mustTokens(t, s, present, gone)
	}},
	{"RevokeTokensWithoutGrant", func(t *testing.T, s storage.Store) {
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		tok := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, u.ID, "r"))
		mustOK(t, "RevokeGrant", s.RevokeGrant(t.Context(), u.ID, c.ID))
		mustTokens(t, s, nil, []storage.Token{tok})
	}},
	{"RevokeNothing", func(t *testing.T, s storage.Store) {
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		wantErr(t, "RevokeGrant", s.RevokeGrant(t.Context(), u.ID, c.ID), storage.ErrNotFound)
	}},
	{"LockGrant", func(t *testing.T, s storage.Store) {
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		err := s.InTx(t.Context(), func(ctx context.Context) error { return s.LockGrant(ctx, u.ID, c.ID) })
		wantErr(t, "LockGrant without a grant", err, storage.ErrNotFound)
		mustOK(t, "PutGrant", s.PutGrant(t.Context(), storage.Grant{UserID: u.ID, ClientID: c.ID, Scopes: []string{"openid"}, CreatedAt: base, UpdatedAt: base}))
		mustOK(t, "LockGrant", s.InTx(t.Context(), func(ctx context.Context) error { return s.LockGrant(ctx, u.ID, c.ID) }))
		mustOK(t, "RevokeGrant after the lock's transaction", s.RevokeGrant(t.Context(), u.ID, c.ID))
		err = s.InTx(t.Context(), func(ctx context.Context) error { return s.LockGrant(ctx, u.ID, c.ID) })
		wantErr(t, "LockGrant after the revoke", err, storage.ErrNotFound)
	}},
}

var tokenTests = []test{
	{"CreateAndGet", func(t *testing.T, s storage.Store) {
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		for _, kind := range []storage.TokenKind{storage.KindCode, storage.KindAccess, storage.KindRefresh, storage.KindPKCE, storage.KindOIDC} {
			want := newToken(kind, c.ID, u.ID, "req")
			want.AccessSignature = "access-signature"
			mustCreateToken(t, s, want)
			got := mustGetToken(t, s, kind, want.Signature)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetToken(%s) (-want +got):\n%s", kind, diff)
			}
		}
	}},
	{"ClientCheck", func(t *testing.T, s storage.Store) {
		// A client looked up under a storage.ClientCheck may come from a
		// cache unchecked; the token read after it must confirm it while no
		// client was written, and never once one was.
		c := mustCreateClient(t, s, "")
		tok := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, "", "req"))
		lookUp := func(what string) (storage.Client, *storage.ClientCheck) {
			ctx, check := storage.DeferClientCheck(t.Context())
			got, err := s.GetClient(ctx, c.ID)
			mustOK(t, "GetClient under a check, "+what, err)
			if _, err := s.GetTokenClaims(ctx, tok.Kind, tok.Signature); err != nil {
				t.Fatalf("GetTokenClaims under a check, %s: %v", what, err)
			}
			return got, check
		}
		_, err := s.GetClient(t.Context(), c.ID) // fills a cache
		mustOK(t, "GetClient", err)
		if _, check := lookUp("no client written"); check.Stale() {
			t.Error("with no client written, the token read did not confirm the client")
		}
		mustOK(t, "SetClientSecret", s.SetClientSecret(t.Context(), c.ID, []byte("rotated"), at(time.Minute)))
		if got, check := lookUp("after a rotation"); string(got.SecretHash) != "rotated" && !check.Stale() {
			t.Error("after a rotation, the old secret was confirmed")
		}
	}},
	{"ClientCheckOnInsert", func(t *testing.T, s storage.Store) {
		// A token inserted under a storage.ClientCheck confirms the client
		// looked up unchecked, or is not stored when a client was written.
		c := mustCreateClient(t, s, "")
		_, err := s.GetClient(t.Context(), c.ID) // fills a cache
		mustOK(t, "GetClient", err)
		ctx, check := storage.DeferClientCheck(t.Context())
		_, err = s.GetClient(ctx, c.ID)
		mustOK(t, "GetClient under a check", err)
		want := newToken(storage.KindAccess, c.ID, "", "req")
		want.Claims = &storage.TokenClaims{Scopes: []string{"books:read"}, Audience: []string{"https://as.example/api/books"}, JKT: "jkt"}
		mustOK(t, "CreateToken under a check", s.CreateToken(ctx, want))
		if check.Stale() {
			t.Error("with no client written, the token insert did not confirm the client")
		}
		if diff := cmp.Diff(want, mustGetToken(t, s, want.Kind, want.Signature)); diff != "" {
			t.Errorf("GetToken of a token inserted under a check (-want +got):\n%s", diff)
		}

		mustOK(t, "SetClientSecret", s.SetClientSecret(t.Context(), c.ID, []byte("rotated"), at(time.Minute)))
		ctx, check = storage.DeferClientCheck(t.Context())
		got, err := s.GetClient(ctx, c.ID)
		mustOK(t, "GetClient under a check after a rotation", err)
		tok := newToken(storage.KindAccess, c.ID, "", "req")
		err = s.CreateToken(ctx, tok)
		if string(got.SecretHash) == "rotated" {
			mustOK(t, "CreateToken after a rotation, with the rotated secret read", err)
			return
		}
		wantErr(t, "CreateToken under a check of a client read before a rotation", err, storage.ErrClientChanged)
		if !check.Stale() {
			t.Error("after a rotation, the old secret was confirmed")
		}
		_, err = s.GetToken(t.Context(), tok.Kind, tok.Signature)
		wantErr(t, "GetToken of the token refused", err, storage.ErrNotFound)
	}},
	{"ClientCredentialsHaveNoSubject", func(t *testing.T, s storage.Store) {
		c := mustCreateClient(t, s, "")
		want := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, "", "req"))
		got := mustGetToken(t, s, want.Kind, want.Signature)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetToken (-want +got):\n%s", diff)
		}
	}},
	{"Claims", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		for _, claims := range []*storage.TokenClaims{
			{Username: "user", Scopes: []string{"books:read", "books:write"}, Audience: []string{"https://as.example/api/books", "https://as.example/mcp"}, JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
			{}, // a client's token without scope or audience
		} {
			want := newToken(storage.KindAccess, c.ID, u.ID, "req")
			want.Claims = claims
			mustCreateToken(t, s, want)
			got := mustGetToken(t, s, want.Kind, want.Signature)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetToken (-want +got):\n%s", diff)
			}
			got, err := s.GetTokenClaims(ctx, want.Kind, want.Signature)
			mustOK(t, "GetTokenClaims", err)
			want.Data, want.RequestID, want.AccessSignature = nil, "", ""
			want.SubjectBookChanges = mustBookChanges(t, s, u.ID)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetTokenClaims (-want +got):\n%s", diff)
			}
		}

		old := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, u.ID, "req"))
		got, err := s.GetTokenClaims(ctx, old.Kind, old.Signature)
		mustOK(t, "GetTokenClaims", err)
		if got.Claims != nil || got.Data != nil || !got.Active {
			t.Errorf("GetTokenClaims of a row without claims = %+v, want active, no claims, no data", got)
		}
		mustOK(t, "DeactivateToken", s.DeactivateToken(ctx, old.Kind, old.Signature))
		if got, err := s.GetTokenClaims(ctx, old.Kind, old.Signature); err != nil || got.Active {
			t.Errorf("GetTokenClaims after DeactivateToken = %+v, %v; want it inactive", got, err)
		}
		_, err = s.GetTokenClaims(ctx, storage.KindAccess, "missing")
		wantErr(t, "GetTokenClaims", err, storage.ErrNotFound)

		for _, bad := range [][]string{{"books:read", ""}, {"two words"}} {
			tok := newToken(storage.KindAccess, c.ID, u.ID, "req")
			tok.Claims = &storage.TokenClaims{Scopes: bad}
			if err := s.CreateToken(ctx, tok); err == nil {
				t.Errorf("CreateToken with the scopes %q succeeded; want an error", bad)
			}
			tok.Claims = &storage.TokenClaims{Audience: bad}
			if err := s.CreateToken(ctx, tok); err == nil {
				t.Errorf("CreateToken with the audience %q succeeded; want an error", bad)
			}
		}
	}},
	{"SignatureTaken", func(t *testing.T, s storage.Store) {
		c := mustCreateClient(t, s, "")
		tok := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, "", "req"))
		wantErr(t, "CreateToken", s.CreateToken(t.Context(), tok), storage.ErrConflict)

		other := tok
		other.Kind = storage.KindRefresh
		mustOK(t, "CreateToken of another kind with the same signature", s.CreateToken(t.Context(), other))
	}},
	{"NotFound", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		c := mustCreateClient(t, s, "")
		tok := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, "", "req"))
		_, err := s.GetToken(ctx, storage.KindAccess, "missing")
		wantErr(t, "GetToken", err, storage.ErrNotFound)
		_, err = s.GetToken(ctx, storage.KindRefresh, tok.Signature)
		wantErr(t, "GetToken of another kind", err, storage.ErrNotFound)
		wantErr(t, "DeactivateToken", s.DeactivateToken(ctx, storage.KindAccess, "missing"), storage.ErrNotFound)
		wantErr(t, "DeleteToken", s.DeleteToken(ctx, storage.KindAccess, "missing"), storage.ErrNotFound)
	}},
	{"CodeWorksOnce", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		code := mustCreateToken(t, s, newToken(storage.KindCode, c.ID, u.ID, "req"))

		mustOK(t, "first DeactivateToken", s.DeactivateToken(ctx, code.Kind, code.Signature))
		want := code
		want.Active = false
		got := mustGetToken(t, s, code.Kind, code.Signature)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetToken after use (-want +got):\n%s", diff)
		}
		wantErr(t, "second DeactivateToken", s.DeactivateToken(ctx, code.Kind, code.Signature), storage.ErrInactive)
	}},
	{"ConcurrentRedemptionHasOneWinner", func(t *testing.T, s storage.Store) {
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		code := mustCreateToken(t, s, newToken(storage.KindCode, c.ID, u.ID, "req"))
		errs := race(20, func(int) error {
			return s.DeactivateToken(t.Context(), code.Kind, code.Signature)
		})
		mustOneWinner(t, errs)
	}},
	{"ConcurrentRotationHasOneWinner", func(t *testing.T, s storage.Store) {
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		old := mustCreateToken(t, s, newToken(storage.KindRefresh, c.ID, u.ID, "req"))
		successors := make([]storage.Token, 20)
		for i := range successors {
			successors[i] = newToken(storage.KindRefresh, c.ID, u.ID, "req")
		}
		errs := race(len(successors), func(i int) error {
			return s.InTx(t.Context(), func(ctx context.Context) error {
				if err := s.DeactivateToken(ctx, old.Kind, old.Signature); err != nil {
					return err
				}
				return s.CreateToken(ctx, successors[i])
			})
		})
		winner := mustOneWinner(t, errs)
		mustTokens(t, s, successors[winner:winner+1], append(successors[:winner:winner], successors[winner+1:]...))
		if mustGetToken(t, s, old.Kind, old.Signature).Active {
			t.Error("rotated refresh token is still active")
		}
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		c := mustCreateClient(t, s, "")
		tok := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, "", "req"))
		other := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, "", "req"))
		mustOK(t, "DeleteToken", s.DeleteToken(t.Context(), tok.Kind, tok.Signature))
		mustTokens(t, s, []storage.Token{other}, []storage.Token{tok})
		wantErr(t, "second DeleteToken", s.DeleteToken(t.Context(), tok.Kind, tok.Signature), storage.ErrNotFound)
	}},
	{"DeleteByRequest", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u, c := mustCreateUser(t, s, "user"), mustCreateClient(t, s, "")
		gone := []storage.Token{
			mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, u.ID, "family")),
			mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, u.ID, "family")),
		}
		present := []storage.Token{
			mustCreateToken(t, s, newToken(storage.KindRefresh, c.ID, u.ID, "family")),
			mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, u.ID, "other")),
		}
		mustOK(t, "DeleteTokensByRequest", s.DeleteTokensByRequest(ctx, storage.KindAccess, "family"))
		mustTokens(t, s, present, gone)
		mustOK(t, "DeleteTokensByRequest of an empty family", s.DeleteTokensByRequest(ctx, storage.KindAccess, "family"))
	}},
	{"DeleteExpired", func(t *testing.T, s storage.Store) {
		c := mustCreateClient(t, s, "")
		now := at(100 * time.Millisecond)
		expiring := func(exp time.Time) storage.Token {
			tok := newToken(storage.KindAccess, c.ID, "", "req")
			tok.ExpiresAt = exp
			return mustCreateToken(t, s, tok)
		}
		gone := []storage.Token{
			expiring(now.Add(-time.Hour)),
			expiring(now.Add(-time.Microsecond)),
			// Whole and fractional seconds: a text encoding of variable
			// width would order "…:07Z" after "…:07.1Z".
			expiring(base.Truncate(time.Second)),
			expiring(now.Add(-90 * time.Millisecond).In(time.FixedZone("UTC-7", -7*3600))),
		}
		present := []storage.Token{
			expiring(now),
			expiring(now.Add(time.Microsecond)),
			expiring(now.Add(time.Hour)),
		}

		n, err := s.DeleteExpired(t.Context(), now.In(time.FixedZone("UTC+9", 9*3600)))
		mustOK(t, "DeleteExpired", err)
		if n != int64(len(gone)) {
			t.Errorf("DeleteExpired = %d, want %d", n, len(gone))
		}
		mustTokens(t, s, present, gone)
	}},
	{"ConcurrentDeleteExpired", func(t *testing.T, s storage.Store) {
		const expired = 2500
		c := mustCreateClient(t, s, "")
		mustOK(t, "InTx", s.InTx(t.Context(), func(ctx context.Context) error {
			for range expired {
				tok := newToken(storage.KindAccess, c.ID, "", "req")
				tok.ExpiresAt = at(-time.Minute)
				if err := s.CreateToken(ctx, tok); err != nil {
					return err
				}
			}
			return nil
		}))
		live := mustCreateToken(t, s, newToken(storage.KindAccess, c.ID, "", "req"))

		counts := make([]int64, 4)
		errs := race(len(counts), func(i int) error {
			var err error
			counts[i], err = s.DeleteExpired(t.Context(), base)
			return err
		})
		var total int64
		for i, err := range errs {
			mustOK(t, fmt.Sprintf("DeleteExpired %d", i), err)
			total += counts[i]
		}
		if total != expired {
			t.Errorf("DeleteExpired calls deleted %d rows together (%v), want %d", total, counts, expired)
		}
		mustTokens(t, s, []storage.Token{live}, nil)
	}},
}

var bookTests = []test{
	{"CRUD", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "reader")
		b := storage.Book{ID: storage.NewID(), UserID: u.ID, Title: "Dune", Author: "Frank Herbert", CreatedAt: base, UpdatedAt: base}
		mustOK(t, "CreateBook", s.CreateBook(ctx, b))
		got, err := s.GetBook(ctx, u.ID, b.ID)
		mustOK(t, "GetBook", err)
		if diff := cmp.Diff(b, got); diff != "" {
			t.Errorf("GetBook (-want +got):\n%s", diff)
		}

		year := 1965
		update := b
		update.Title, update.Author, update.Year, update.UpdatedAt = "Dune (50th anniversary)", "F. Herbert", &year, at(time.Hour)
		update.CreatedAt = at(time.Hour)
		mustOK(t, "UpdateBook", s.UpdateBook(ctx, update))
		want := update
		want.CreatedAt = b.CreatedAt
		got, err = s.GetBook(ctx, u.ID, b.ID)
		mustOK(t, "GetBook", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetBook after UpdateBook (-want +got):\n%s", diff)
		}

		update.Year = nil
		mustOK(t, "UpdateBook", s.UpdateBook(ctx, update))
		got, err = s.GetBook(ctx, u.ID, b.ID)
		mustOK(t, "GetBook", err)
		if got.Year != nil {
			t.Errorf("Year = %d after clearing it, want nil", *got.Year)
		}

		mustOK(t, "DeleteBook", s.DeleteBook(ctx, u.ID, b.ID))
		_, err = s.GetBook(ctx, u.ID, b.ID)
		wantErr(t, "GetBook after DeleteBook", err, storage.ErrNotFound)
		wantErr(t, "second DeleteBook", s.DeleteBook(ctx, u.ID, b.ID), storage.ErrNotFound)
		wantErr(t, "UpdateBook after DeleteBook", s.UpdateBook(ctx, update), storage.ErrNotFound)
	}},
	{"AnotherUsersBookIsNotFound", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		owner, other := mustCreateUser(t, s, "owner"), mustCreateUser(t, s, "other")
		b := storage.Book{ID: storage.NewID(), UserID: owner.ID, Title: "Emma", Author: "Jane Austen", CreatedAt: base, UpdatedAt: base}
		mustOK(t, "CreateBook", s.CreateBook(ctx, b))

		_, err := s.GetBook(ctx, other.ID, b.ID)
		wantErr(t, "GetBook", err, storage.ErrNotFound)
		hijack := b
		hijack.UserID, hijack.Title = other.ID, "Mine now"
		wantErr(t, "UpdateBook", s.UpdateBook(ctx, hijack), storage.ErrNotFound)
		wantErr(t, "DeleteBook", s.DeleteBook(ctx, other.ID, b.ID), storage.ErrNotFound)

		got, err := s.GetBook(ctx, owner.ID, b.ID)
		mustOK(t, "GetBook by its owner", err)
		if diff := cmp.Diff(b, got); diff != "" {
			t.Errorf("owner's book changed (-want +got):\n%s", diff)
		}
	}},
	{"ListPages", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		books := map[string][]storage.Book{}
		// Inserted out of order, interleaved between the two users.
		for _, n := range []int{3, 1, 5, 2, 4} {
			for _, u := range []storage.User{alice, bob} {
				b := storage.Book{ID: fmt.Sprintf("%s-%02d", u.Username[:1], n), UserID: u.ID, Title: fmt.Sprintf("Volume %d", n), CreatedAt: base, UpdatedAt: base}
				mustOK(t, "CreateBook", s.CreateBook(ctx, b))
			}
		}
		for _, id := range []string{"a-01", "a-02", "a-03", "a-04", "a-05"} {
			b, err := s.GetBook(ctx, alice.ID, id)
			mustOK(t, "GetBook", err)
			books[alice.ID] = append(books[alice.ID], b)
		}

		var pages [][]storage.Book
		after := ""
		for range 5 {
			page, err := s.ListBooks(ctx, alice.ID, after, 2)
			mustOK(t, "ListBooks", err)
			pages = append(pages, page)
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].ID
		}
		a := books[alice.ID]
		want := [][]storage.Book{a[0:2], a[2:4], a[4:5]}
		if diff := cmp.Diff(want, pages, equateEmpty); diff != "" {
			t.Errorf("pages of 2 (-want +got):\n%s", diff)
		}

		got, err := s.ListBooks(ctx, alice.ID, "a-05", 2)
		mustOK(t, "ListBooks past the end", err)
		if len(got) != 0 {
			t.Errorf("ListBooks past the end = %v, want none", got)
		}
		got, err = s.ListBooks(ctx, bob.ID, "", 100)
		mustOK(t, "ListBooks", err)
		for _, b := range got {
			if b.UserID != bob.ID {
				t.Errorf("ListBooks for bob returned %s of user %s", b.ID, b.UserID)
			}
		}
		if len(got) != 5 {
			t.Errorf("ListBooks for bob returned %d books, want 5", len(got))
		}
	}},
	{"BookChangesMoveWithEveryWrite", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		changes := func(u storage.User) int64 {
			t.Helper()
			n, err := s.BookChanges(ctx, u.ID)
			mustOK(t, "BookChanges", err)
			return n
		}
		b := storage.Book{ID: storage.NewID(), UserID: alice.ID, Title: "Dune", CreatedAt: base, UpdatedAt: base}
		steps := []struct {
			what  string
			write func() error
		}{
			{"CreateBook", func() error { return s.CreateBook(ctx, b) }},
			{"UpdateBook", func() error { b.Title = "Dune Messiah"; return s.UpdateBook(ctx, b) }},
			{"DeleteBook", func() error { return s.DeleteBook(ctx, alice.ID, b.ID) }},
		}
		seen := map[int64]bool{changes(alice): true}
		for _, st := range steps {
			bobBefore := changes(bob)
			mustOK(t, st.what, st.write())
			n := changes(alice)
			if seen[n] {
				t.Errorf("after %s, BookChanges = %d, a count already seen", st.what, n)
			}
			seen[n] = true
			if got := changes(bob); got != bobBefore {
				t.Errorf("%s of alice's book moved bob's count from %d to %d", st.what, bobBefore, got)
			}
		}
		mustOK(t, "CreateBook", s.CreateBook(ctx, storage.Book{ID: storage.NewID(), UserID: alice.ID, Title: "Emma", CreatedAt: base, UpdatedAt: base}))
		mustOK(t, "DeleteUser", s.DeleteUser(ctx, alice.ID))
		_, err := s.BookChanges(ctx, alice.ID)
		wantErr(t, "BookChanges of a deleted user", err, storage.ErrNotFound)
	}},
	{"TokenClaimsCarryTheSubjectsBookChanges", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u, c := mustCreateUser(t, s, "reader"), mustCreateClient(t, s, "")
		user := newToken(storage.KindAccess, c.ID, u.ID, "req")
		user.Claims = &storage.TokenClaims{Username: "reader"}
		service := newToken(storage.KindAccess, c.ID, "", "req")
		service.Claims = &storage.TokenClaims{}
		mustCreateToken(t, s, user)
		mustCreateToken(t, s, service)
		for range 2 {
			want := mustBookChanges(t, s, u.ID)
			got, err := s.GetTokenClaims(ctx, user.Kind, user.Signature)
			mustOK(t, "GetTokenClaims", err)
			if got.SubjectBookChanges == nil || *got.SubjectBookChanges != *want {
				t.Fatalf("GetTokenClaims read the book count %v, want %d", got.SubjectBookChanges, *want)
			}
			mustOK(t, "CreateBook", s.CreateBook(ctx, storage.Book{ID: storage.NewID(), UserID: u.ID, Title: "Dune", CreatedAt: base, UpdatedAt: base}))
		}
		got, err := s.GetTokenClaims(ctx, service.Kind, service.Signature)
		mustOK(t, "GetTokenClaims", err)
		if got.SubjectBookChanges != nil {
			t.Errorf("a client's own token has the book count %d, want none", *got.SubjectBookChanges)
		}
	}},
	{"ListEmpty", func(t *testing.T, s storage.Store) {
		u := mustCreateUser(t, s, "reader")
		got, err := s.ListBooks(t.Context(), u.ID, "", 10)
		mustOK(t, "ListBooks", err)
		if len(got) != 0 {
			t.Errorf("ListBooks = %v, want none", got)
		}
	}},
}

var signingKeyTests = []test{
	{"CreateAndListNewestFirst", func(t *testing.T, s storage.Store) {
		keys := []storage.SigningKey{
			{ID: "k1", Algorithm: "RS256", PrivateKey: []byte{0x30, 0x82, 0x01}, CreatedAt: base},
			{ID: "k3", Algorithm: "RS256", PrivateKey: []byte{0x30, 0x82, 0x03}, Sealed: true, CreatedAt: at(2 * time.Hour)},
			{ID: "k2", Algorithm: "RS256", PrivateKey: []byte{0x30, 0x82, 0x02}, CreatedAt: at(time.Hour)},
		}
		for _, k := range keys {
			mustOK(t, "CreateSigningKey", s.CreateSigningKey(t.Context(), k))
		}
		got, err := s.ListSigningKeys(t.Context())
		mustOK(t, "ListSigningKeys", err)
		want := []storage.SigningKey{keys[1], keys[2], keys[0]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListSigningKeys (-want +got):\n%s", diff)
		}
	}},
	{"IDTaken", func(t *testing.T, s storage.Store) {
		k := storage.SigningKey{ID: "k1", Algorithm: "RS256", PrivateKey: []byte{1}, CreatedAt: base}
		mustOK(t, "CreateSigningKey", s.CreateSigningKey(t.Context(), k))
		wantErr(t, "CreateSigningKey", s.CreateSigningKey(t.Context(), k), storage.ErrConflict)
	}},
	{"Update", func(t *testing.T, s storage.Store) {
		k := storage.SigningKey{ID: "k1", Algorithm: "RS256", PrivateKey: []byte{0x30, 1}, CreatedAt: base}
		mustOK(t, "CreateSigningKey", s.CreateSigningKey(t.Context(), k))
		k.PrivateKey, k.Sealed = []byte{9, 8, 7}, true
		mustOK(t, "UpdateSigningKey", s.UpdateSigningKey(t.Context(), k))
		got, err := s.ListSigningKeys(t.Context())
		mustOK(t, "ListSigningKeys", err)
		if diff := cmp.Diff([]storage.SigningKey{k}, got); diff != "" {
			t.Errorf("ListSigningKeys after the update (-want +got):\n%s", diff)
		}
		wantErr(t, "UpdateSigningKey", s.UpdateSigningKey(t.Context(), storage.SigningKey{ID: "none", PrivateKey: []byte{1}}), storage.ErrNotFound)
	}},
	{"ListEmpty", func(t *testing.T, s storage.Store) {
		got, err := s.ListSigningKeys(t.Context())
		mustOK(t, "ListSigningKeys", err)
		if len(got) != 0 {
			t.Errorf("ListSigningKeys = %v, want none", got)
		}
	}},
}

// errAbort makes InTx roll back in the tests.
var errAbort = errors.New("abort")

var txTests = []test{
	{"RollbackDiscards", func(t *testing.T, s storage.Store) {
		ctx, err := s.BeginTx(t.Context())
		mustOK(t, "BeginTx", err)
		u := newUser("ghost")
		mustOK(t, "CreateUser", s.CreateUser(ctx, u))
		mustOK(t, "Rollback", s.Rollback(ctx))
		_, err = s.GetUser(t.Context(), u.ID)
		wantErr(t, "GetUser after Rollback", err, storage.ErrNotFound)
	}},
	{"CommitKeeps", func(t *testing.T, s storage.Store) {
		ctx, err := s.BeginTx(t.Context())
		mustOK(t, "BeginTx", err)
		u := newUser("kept")
		mustOK(t, "CreateUser", s.CreateUser(ctx, u))
		mustOK(t, "Commit", s.Commit(ctx))
		mustOK(t, "Rollback after Commit", s.Rollback(ctx))
		_, err = s.GetUser(t.Context(), u.ID)
		mustOK(t, "GetUser after Commit", err)
	}},
	{"ReadsSeeTheirWrites", func(t *testing.T, s storage.Store) {
		c := mustCreateClient(t, s, "")
		code := mustCreateToken(t, s, newToken(storage.KindCode, c.ID, "", "req"))
		err := s.InTx(t.Context(), func(ctx context.Context) error {
			if err := s.CreateUser(ctx, newUser("new")); err != nil {
				return err
			}
			if _, err := s.GetUserByUsername(ctx, "new"); err != nil {
				return fmt.Errorf("user written in the transaction: %w", err)
			}
			if n, err := s.CountUsers(ctx); err != nil || n != 1 {
				return fmt.Errorf("CountUsers in the transaction = %d, %v; want 1", n, err)
			}
			if err := s.DeactivateToken(ctx, code.Kind, code.Signature); err != nil {
				return err
			}
			tok, err := s.GetToken(ctx, code.Kind, code.Signature)
			if err != nil {
				return err
			}
			if tok.Active {
				return errors.New("code deactivated in the transaction still reads as active")
			}
			return nil
		})
		mustOK(t, "InTx", err)
	}},
	{"InTxRollsBackOnError", func(t *testing.T, s storage.Store) {
		u := newUser("ghost")
		err := s.InTx(t.Context(), func(ctx context.Context) error {
			if err := s.CreateUser(ctx, u); err != nil {
				return err
			}
			return errAbort
		})
		wantErr(t, "InTx", err, errAbort)
		_, err = s.GetUser(t.Context(), u.ID)
		wantErr(t, "GetUser", err, storage.ErrNotFound)
	}},
	{"NestedInTxJoinsTheOuter", func(t *testing.T, s storage.Store) {
		u := newUser("inner")
		err := s.InTx(t.Context(), func(ctx context.Context) error {
			err := s.InTx(ctx, func(ctx context.Context) error {
				return s.CreateUser(ctx, u)
			})
			if err != nil {
				return err
			}
			return errAbort
		})
		wantErr(t, "InTx", err, errAbort)
		_, err = s.GetUser(t.Context(), u.ID)
		wantErr(t, "GetUser of the inner write", err, storage.ErrNotFound)
	}},
}

// mustCountFailures checks CountLoginFailures(key, since).
func mustCountFailures(t *testing.T, s storage.Store, key string, since time.Time, wantN int, wantOldest time.Time) {
	t.Helper()
	n, oldest, err := s.CountLoginFailures(t.Context(), key, since)
	mustOK(t, "CountLoginFailures", err)
	if n != wantN || !oldest.Equal(wantOldest) {
		t.Errorf("CountLoginFailures(%q, %v) = %d, %v; want %d, %v", key, since, n, oldest, wantN, wantOldest)
	}
	if !oldest.IsZero() && oldest.Location() != time.UTC {
		t.Errorf("CountLoginFailures oldest is in %v, want UTC", oldest.Location())
	}
}

var loginFailureTests = []test{
	{"CountAfterSince", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		zone := time.FixedZone("UTC-7", -7*3600)
		for _, d := range []time.Duration{-20 * time.Minute, -15 * time.Minute, -10 * time.Minute, -time.Microsecond} {
			mustOK(t, "RecordLoginFailure", s.RecordLoginFailure(ctx, "user:alice", at(d).In(zone)))
		}
		mustOK(t, "RecordLoginFailure", s.RecordLoginFailure(ctx, "addr:192.0.2.1", at(-time.Minute)))

		// A failure exactly at since is out of the window.
		mustCountFailures(t, s, "user:alice", at(-15*time.Minute), 2, at(-10*time.Minute))
		mustCountFailures(t, s, "user:alice", at(-time.Hour), 4, at(-20*time.Minute))
		mustCountFailures(t, s, "user:alice", base, 0, time.Time{})
		mustCountFailures(t, s, "addr:192.0.2.1", at(-time.Hour), 1, at(-time.Minute))
		mustCountFailures(t, s, "user:nobody", at(-time.Hour), 0, time.Time{})
	}},
	{"SameInstant", func(t *testing.T, s storage.Store) {
		for range 3 {
			mustOK(t, "RecordLoginFailure", s.RecordLoginFailure(t.Context(), "user:alice", base))
		}
		mustCountFailures(t, s, "user:alice", at(-time.Second), 3, base)
	}},
	{"Clear", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		for _, key := range []string{"user:alice", "user:alice", "user:bob"} {
			mustOK(t, "RecordLoginFailure", s.RecordLoginFailure(ctx, key, base))
		}
		mustOK(t, "ClearLoginFailures", s.ClearLoginFailures(ctx, "user:alice"))
		mustCountFailures(t, s, "user:alice", at(-time.Hour), 0, time.Time{})
		mustCountFailures(t, s, "user:bob", at(-time.Hour), 1, base)
		mustOK(t, "ClearLoginFailures of a key without failures", s.ClearLoginFailures(ctx, "user:alice"))
	}},
	{"DeleteExpiredDropsOldFailures", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		day := storage.LoginFailureRetention
		for _, d := range []time.Duration{-2 * day, -day - time.Microsecond, -day, -time.Hour} {
			mustOK(t, "RecordLoginFailure", s.RecordLoginFailure(ctx, "user:alice", at(d)))
		}
		n, err := s.DeleteExpired(ctx, base)
		mustOK(t, "DeleteExpired", err)
		if n != 2 {
			t.Errorf("DeleteExpired = %d, want 2", n)
		}
		mustCountFailures(t, s, "user:alice", at(-3*day), 2, at(-day))
	}},
	{"ConcurrentRecord", func(t *testing.T, s storage.Store) {
		const n = 20
		errs := race(n, func(int) error {
			return s.RecordLoginFailure(t.Context(), "user:alice", base)
		})
		for i, err := range errs {
			mustOK(t, fmt.Sprintf("RecordLoginFailure %d", i), err)
		}
		mustCountFailures(t, s, "user:alice", at(-time.Minute), n, base)
	}},
	{"CountRequestWindows", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		count := func(key string, now time.Time, wantN int, wantStart time.Time) {
			t.Helper()
			n, start, err := s.CountRequest(ctx, key, now, time.Hour)
			mustOK(t, "CountRequest", err)
			if n != wantN || !start.Equal(wantStart) {
				t.Errorf("CountRequest(%s, %v) = %d, %v; want %d, %v", key, now, n, start, wantN, wantStart)
			}
		}
		count("addr:a", base, 1, base)
		count("addr:a", at(30*time.Minute), 2, base)
		count("addr:b", at(30*time.Minute), 1, at(30*time.Minute))
		count("addr:a", at(time.Hour-time.Microsecond), 3, base)
		// The window has ended: a new one begins with this request.
		count("addr:a", at(time.Hour), 1, at(time.Hour))
		count("addr:a", at(time.Hour+time.Minute), 2, at(time.Hour))

		n, err := s.DeleteExpired(ctx, at(time.Hour+storage.LoginFailureRetention))
		mustOK(t, "DeleteExpired", err)
		if n != 1 {
			t.Errorf("DeleteExpired = %d, want 1 (the window of addr:b)", n)
		}
		count("addr:b", at(time.Hour+storage.LoginFailureRetention), 1, at(time.Hour+storage.LoginFailureRetention))
	}},
	{"ConcurrentCountRequest", func(t *testing.T, s storage.Store) {
		const n = 20
		got := make([]int, n)
		errs := race(n, func(i int) error {
			var err error
			got[i], _, err = s.CountRequest(t.Context(), "addr:a", base, time.Hour)
			return err
		})
		for i, err := range errs {
			mustOK(t, fmt.Sprintf("CountRequest %d", i), err)
		}
		slices.Sort(got)
		for i, v := range got {
			if v != i+1 {
				t.Fatalf("concurrent CountRequest numbers %v, want 1 to %d once each", got, n)
			}
		}
	}},
}

func reserve(t *testing.T, s storage.Store, at time.Time, limits ...storage.LoginLimit) storage.LoginAttempt {
	t.Helper()
	a, err := s.ReserveLoginAttempt(t.Context(), at, limits)
	mustOK(t, "ReserveLoginAttempt", err)
	if len(a.Oldest) != len(limits) {
		t.Fatalf("ReserveLoginAttempt returned %d oldest times for %d limits", len(a.Oldest), len(limits))
	}
	return a
}

var loginReservationTests = []test{
	{"RecordsUnderEveryKeyUntilOneIsFull", func(t *testing.T, s storage.Store) {
		account := storage.LoginLimit{Key: "user:alice", Max: 2, Since: at(-15 * time.Minute)}
		address := storage.LoginLimit{Key: "addr:192.0.2.1", Max: 3, Since: at(-15 * time.Minute)}
		for i := range 2 {
			if a := reserve(t, s, at(time.Duration(i)*time.Second), account, address); len(a.IDs) != 2 {
				t.Fatalf("reservation %d: ids %v, want two", i, a.IDs)
			}
		}
		a := reserve(t, s, at(time.Minute), account, address)
		if a.IDs != nil || !a.Oldest[0].Equal(base) || !a.Oldest[1].IsZero() {
			t.Fatalf("third reservation: %+v, want refused with the account's oldest failure %v", a, base)
		}
		// Nothing was recorded for the refused attempt.
		mustCountFailures(t, s, "addr:192.0.2.1", at(-time.Hour), 2, base)
		// Failures before Since do not count.
		account.Since = at(time.Microsecond)
		if a := reserve(t, s, at(time.Minute), account, address); len(a.IDs) != 2 {
			t.Fatalf("after the window: %+v, want a reservation", a)
		}
	}},
	{"ReleaseDeletesOnlyItsRows", func(t *testing.T, s storage.Store) {
		limit := storage.LoginLimit{Key: "user:alice", Max: 5, Since: at(-time.Hour)}
		first := reserve(t, s, base, limit)
		reserve(t, s, base, limit)
		mustOK(t, "ReleaseLoginAttempt", s.ReleaseLoginAttempt(t.Context(), first.IDs))
		mustOK(t, "ReleaseLoginAttempt again", s.ReleaseLoginAttempt(t.Context(), first.IDs))
		mustCountFailures(t, s, "user:alice", at(-time.Hour), 1, base)
	}},
	{"ConcurrentReservationsStopAtMax", func(t *testing.T, s storage.Store) {
		const n, limit = 20, 5
		var mu sync.Mutex
		reserved := 0
		errs := race(n, func(i int) error {
			// Half also count against a second key, in the other order.
			limits := []storage.LoginLimit{{Key: "user:alice", Max: limit, Since: at(-time.Hour)}}
			if i%2 == 0 {
				limits = append([]storage.LoginLimit{{Key: "addr:192.0.2.1", Max: n, Since: at(-time.Hour)}}, limits...)
			}
			a, err := s.ReserveLoginAttempt(t.Context(), base, limits)
			if a.IDs != nil {
				mu.Lock()
				reserved++
				mu.Unlock()
			}
			return err
		})
		for i, err := range errs {
			mustOK(t, fmt.Sprintf("ReserveLoginAttempt %d", i), err)
		}
		if reserved != limit {
			t.Fatalf("%d of %d concurrent attempts were reserved, want exactly %d", reserved, n, limit)
		}
		mustCountFailures(t, s, "user:alice", at(-time.Hour), limit, base)
	}},
}

func newSession(u storage.User, created time.Time) storage.Session {
	return storage.Session{
		IDHash: storage.NewID(), UserID: u.ID, Username: u.Username,
		CreatedAt: created, LastSeenAt: created, ExpiresAt: created.Add(12 * time.Hour),
		UserAgent: "Mozilla/5.0", Address: "2001:db8::1", AMR: []string{"pwd", "otp", "mfa"},
	}
}

func mustCreateSession(t *testing.T, s storage.Store, sess storage.Session) storage.Session {
	t.Helper()
	mustOK(t, "CreateSession", s.CreateSession(t.Context(), sess))
	return sess
}

func mustSessions(t *testing.T, s storage.Store, userID string, want ...storage.Session) {
	t.Helper()
	got, err := s.ListSessions(t.Context(), userID)
	mustOK(t, "ListSessions", err)
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("ListSessions(%s) (-want +got):\n%s", userID, diff)
	}
}

var sessionTests = []test{
	{"CreateGetTouch", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		u := mustCreateUser(t, s, "alice")
		sess := mustCreateSession(t, s, newSession(u, base))
		wantErr(t, "CreateSession twice", s.CreateSession(ctx, sess), storage.ErrConflict)
		got, err := s.GetSession(ctx, sess.IDHash)
		mustOK(t, "GetSession", err)
		if diff := cmp.Diff(sess, got); diff != "" {
			t.Errorf("GetSession (-want +got):\n%s", diff)
		}
		mustOK(t, "TouchSession", s.TouchSession(ctx, sess.IDHash, at(time.Hour)))
		got, err = s.GetSession(ctx, sess.IDHash)
		mustOK(t, "GetSession", err)
		if !got.LastSeenAt.Equal(at(time.Hour)) || !got.CreatedAt.Equal(base) {
			t.Errorf("after TouchSession: created %v, last seen %v; want %v, %v", got.CreatedAt, got.LastSeenAt, base, at(time.Hour))
		}
		_, err = s.GetSession(ctx, "nope")
		wantErr(t, "GetSession unknown", err, storage.ErrNotFound)
		wantErr(t, "TouchSession unknown", s.TouchSession(ctx, "nope", base), storage.ErrNotFound)
	}},
	{"DeleteOneAndAllButOne", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		alice, bob := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		a1 := mustCreateSession(t, s, newSession(alice, base))
		a2 := mustCreateSession(t, s, newSession(alice, at(time.Minute)))
		a3 := mustCreateSession(t, s, newSession(alice, at(2*time.Minute)))
		b1 := mustCreateSession(t, s, newSession(bob, base))
		mustSessions(t, s, alice.ID, a3, a2, a1)

		wantErr(t, "DeleteSession of another user", s.DeleteSession(ctx, bob.ID, a1.IDHash), storage.ErrNotFound)
		mustOK(t, "DeleteSession", s.DeleteSession(ctx, alice.ID, a1.IDHash))
		wantErr(t, "DeleteSession again", s.DeleteSession(ctx, alice.ID, a1.IDHash), storage.ErrNotFound)
		_, err := s.GetSession(ctx, a1.IDHash)
		wantErr(t, "GetSession of a deleted session", err, storage.ErrNotFound)

		n, err := s.DeleteUserSessions(ctx, alice.ID, a2.IDHash)
		mustOK(t, "DeleteUserSessions", err)
		if n != 1 {
			t.Errorf("DeleteUserSessions except one = %d, want 1", n)
		}
		mustSessions(t, s, alice.ID, a2)
		n, err = s.DeleteUserSessions(ctx, alice.ID, "")
		mustOK(t, "DeleteUserSessions", err)
		if n != 1 {
			t.Errorf("DeleteUserSessions of all = %d, want 1", n)
		}
		mustSessions(t, s, alice.ID)
		mustSessions(t, s, bob.ID, b1)
	}},
	{"DeleteExpired", func(t *testing.T, s storage.Store) {
		u := mustCreateUser(t, s, "alice")
		old := newSession(u, at(-13*time.Hour))
		live := newSession(u, at(-11*time.Hour))
		mustCreateSession(t, s, old)
		mustCreateSession(t, s, live)
		n, err := s.DeleteExpired(t.Context(), base)
		mustOK(t, "DeleteExpired", err)
		if n != 1 {
			t.Errorf("DeleteExpired = %d, want 1", n)
		}
		mustSessions(t, s, u.ID, live)
	}},
}

var miscTests = []test{
	{"NonUTCTimeRoundTrip", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
		local := time.Date(2031, time.December, 31, 23, 59, 59, 987654321, zone)
		want := local.Truncate(time.Microsecond)

		u := newUser("zoned")
		u.CreatedAt = local
		mustOK(t, "CreateUser", s.CreateUser(ctx, u))
		c := mustCreateClient(t, s, "")
		tok := newToken(storage.KindAccess, c.ID, u.ID, "req")
		tok.RequestedAt, tok.ExpiresAt = local, local.Add(time.Hour)
		mustCreateToken(t, s, tok)

		gotUser, err := s.GetUser(ctx, u.ID)
		mustOK(t, "GetUser", err)
		gotTok := mustGetToken(t, s, tok.Kind, tok.Signature)
		for _, tc := range []struct {
			name      string
			got, want time.Time
		}{
			{"User.CreatedAt", gotUser.CreatedAt, want},
			{"Token.RequestedAt", gotTok.RequestedAt, want},
			{"Token.ExpiresAt", gotTok.ExpiresAt, want.Add(time.Hour)},
		} {
			if !tc.got.Equal(tc.want) {
				t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
			}
			if tc.got.Location() != time.UTC {
				t.Errorf("%s is in %v, want UTC", tc.name, tc.got.Location())
			}
		}
	}},
	{"Ping", func(t *testing.T, s storage.Store) {
		mustOK(t, "Ping", s.Ping(t.Context()))
	}},
}
