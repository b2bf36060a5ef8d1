package accounts_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"

	"gatehouse/accounts"
	"gatehouse/audit"
	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
	"gatehouse/storage/storagetest"
	"gatehouse/web/templates"
)

const (
	testRPID   = "localhost"
	testOrigin = "http://localhost:8080"
)

// softKey is a software authenticator: a P-256 key that answers WebAuthn
// ceremonies the way a platform authenticator does, with user
// verification.
type softKey struct {
	t          testing.TB
	priv       *ecdsa.PrivateKey
	credID     []byte
	userHandle []byte
	count      uint32
	// rpID and origin are what the key and the "browser" claim; the
	// relying party's own by default.
	rpID, origin string
}

func newSoftKey(t testing.TB) *softKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{t: t, priv: priv, credID: id, rpID: testRPID, origin: testOrigin}
}

var b64 = base64.RawURLEncoding

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func (k *softKey) authData(flags byte, attested []byte) []byte {
	rp := sha256.Sum256([]byte(k.rpID))
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	return append(out, attested...)
}

func (k *softKey) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	return b
}

// create answers registration options as navigator.credentials.create
// would.
func (k *softKey) create(options map[string]any) json.RawMessage {
	k.t.Helper()
	pk := options["publicKey"].(map[string]any)
	user := pk["user"].(map[string]any)
	handle, err := b64.DecodeString(user["id"].(string))
	if err != nil {
		k.t.Fatalf("user id: %v", err)
	}
	k.userHandle = handle
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1,
		-2: k.priv.PublicKey.X.FillBytes(make([]byte, 32)), -3: k.priv.PublicKey.Y.FillBytes(make([]byte, 32))})
	if err != nil {
		k.t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.credID)))
	attested = append(append(attested, k.credID...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(flagUP|flagUV|flagAT, attested)})
	if err != nil {
		k.t.Fatal(err)
	}
	return k.credential(map[string]any{
		"clientDataJSON":    b64.EncodeToString(k.clientData("webauthn.create", pk["challenge"].(string))),
		"attestationObject": b64.EncodeToString(att),
		"transports":        []string{"internal"},
	})
}

// get answers sign-in options as navigator.credentials.get would.
func (k *softKey) get(options map[string]any) json.RawMessage {
	k.t.Helper()
	k.count++
	challenge := options["publicKey"].(map[string]any)["challenge"].(string)
	clientData := k.clientData("webauthn.get", challenge)
	authData := k.authData(flagUP|flagUV, nil)
	sum := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, authData...), sum[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		k.t.Fatal(err)
	}
	return k.credential(map[string]any{
		"clientDataJSON":    b64.EncodeToString(clientData),
		"authenticatorData": b64.EncodeToString(authData),
		"signature":         b64.EncodeToString(sig),
		"userHandle":        b64.EncodeToString(k.userHandle),
	})
}

func (k *softKey) credential(response map[string]any) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(k.credID), "rawId": b64.EncodeToString(k.credID),
		"type": "public-key", "response": response, "clientExtensionResults": map[string]any{}})
	return b
}

type auditLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditLog) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *auditLog) last() audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) == 0 {
		return audit.Event{}
	}
	return a.events[len(a.events)-1]
}

type passkeyEnv struct {
	t        testing.TB
	store    *sqlstore.Store
	sessions *accounts.Sessions
	mux      *http.ServeMux
	audit    *auditLog
	now      time.Time
}

func newPasskeyEnv(t testing.TB) *passkeyEnv {
	t.Helper()
	store, err := sqlstore.Open(t.Context(), storagetest.SQLitePath(t), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &passkeyEnv{t: t, store: store, audit: &auditLog{}, now: time.Now(), mux: http.NewServeMux()}
	clock := func() time.Time { return e.now }
	e.sessions = accounts.NewSessions(store, [][]byte{make([]byte, 32), make([]byte, 32)}, accounts.SessionConfig{Now: clock})
	p := &accounts.Passkeys{
		Store: store, Sessions: e.sessions, Logger: slog.New(slog.DiscardHandler),
		Limiter: &accounts.StoreLimiter{Store: store}, Audit: e.audit, Now: clock,
		NewPage: func(*http.Request, string) templates.Page { return templates.Page{} },
	}
	if err := p.UseIssuer(testOrigin); err != nil {
		t.Fatal(err)
	}
	p.Mount(e.mux)
	return e
}

// browser is a cookie jar for one browser.
type browser struct {
	cookies map[string]*http.Cookie
}

func newBrowser() *browser { return &browser{cookies: map[string]*http.Cookie{}} }

func (e *passkeyEnv) do(b *browser, path, contentType string, body []byte) (int, map[string]any) {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	e.sessions.Middleware(e.mux).ServeHTTP(rec, r)
	for _, c := range rec.Result().Cookies() {
		b.cookies[c.Name] = c
	}
	var out map[string]any
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			e.t.Fatalf("%s: answer %q is not JSON: %v", path, rec.Body.String(), err)
		}
	}
	return rec.Code, out
}

func (e *passkeyEnv) post(b *browser, path string, body any) (int, map[string]any) {
	e.t.Helper()
	raw, _ := json.Marshal(body)
	return e.do(b, path, "application/json", raw)
}

// signedIn returns a browser signed in to a new account (with a password
// unless noPassword).
func (e *passkeyEnv) signedIn(name string, noPassword bool) (*browser, storage.User) {
	e.t.Helper()
	u := storage.User{ID: storage.NewID(), Username: name, CreatedAt: e.now}
	if !noPassword {
		hash, err := accounts.HashPassword("correct horse battery")
		if err != nil {
			e.t.Fatal(err)
		}
		u.PasswordHash = hash
	}
	if err := e.store.CreateUser(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := e.sessions.SignIn(rec, httptest.NewRequest(http.MethodGet, "/", nil), accounts.Identity{UserID: u.ID, Username: u.Username, AuthTime: e.now}); err != nil {
		e.t.Fatal(err)
	}
	b := newBrowser()
	for _, c := range rec.Result().Cookies() {
		b.cookies[c.Name] = c
	}
	return b, u
}

func (e *passkeyEnv) register(b *browser, k *softKey, name string) {
	e.t.Helper()
	status, options := e.post(b, "/account/passkeys/register/begin", nil)
	if status != http.StatusOK {
		e.t.Fatalf("register begin: %d %v", status, options)
	}
	status, answer := e.post(b, "/account/passkeys/register/finish", map[string]any{"name": name, "credential": k.create(options)})
	if status != http.StatusOK {
		e.t.Fatalf("register finish: %d %v", status, answer)
	}
}

// beginLogin starts a sign-in in b and returns the options.
func (e *passkeyEnv) beginLogin(b *browser) map[string]any {
	e.t.Helper()
	status, options := e.post(b, "/login/passkey/begin", map[string]any{})
	if status != http.StatusOK {
		e.t.Fatalf("login begin: %d %v", status, options)
	}
	return options
}

func (e *passkeyEnv) finishLogin(b *browser, cred json.RawMessage) (int, map[string]any) {
	e.t.Helper()
	return e.post(b, "/login/passkey/finish", map[string]any{"credential": cred, "return_to": "/oauth2/authorize?client_id=x"})
}

// failures is how many failed sign-ins the throttle holds for the test
// requests' address.
func (e *passkeyEnv) failures() int {
	e.t.Helper()
	// The limiter stores the SHA-256 of its keys.
	key := sha256.Sum256([]byte("addr:192.0.2.1"))
	n, _, err := e.store.CountLoginFailures(e.t.Context(), hex.EncodeToString(key[:]), e.now.Add(-time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestPasskeySignIn(t *testing.T) {
	e := newPasskeyEnv(t)
	b, u := e.signedIn("alice", false)
	k := newSoftKey(t)
	e.register(b, k, "Laptop")

	stranger := newBrowser()
	status, answer := e.finishLogin(stranger, k.get(e.beginLogin(stranger)))
	if status != http.StatusOK || answer["redirect"] != "/oauth2/authorize?client_id=x" {
		t.Fatalf("sign in: %d %v, want 200 and the return_to", status, answer)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range stranger.cookies {
		r.AddCookie(c)
	}
	id, ok := e.sessions.Identity(r)
	if !ok || id.UserID != u.ID || strings.Join(id.AMR, " ") != "hwk mfa" {
		t.Fatalf("session after sign-in = %+v (%v), want %s with amr [hwk mfa]", id, ok, u.ID)
	}
	if ev := e.audit.last(); ev.Type != audit.SignIn || ev.Subject != u.ID || ev.Detail["method"] != "passkey" {
		t.Fatalf("audit = %+v, want a passkey sign_in of %s", ev, u.ID)
	}
	keys, err := e.store.ListPasskeys(t.Context(), u.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("ListPasskeys: %v %v", keys, err)
	}
	if keys[0].Name != "Laptop" || keys[0].SignCount != 1 || keys[0].LastUsedAt == nil {
		t.Fatalf("passkey after sign-in = %+v", keys[0])
	}
	if n := e.failures(); n != 0 {
		t.Fatalf("%d failures counted after a good sign-in, want 0", n)
	}
}

// TestPasskeyDisabledAccount: a disabled account's passkey still checks
// out, and the sign-in is refused with the words a password sign-in gets.
func TestPasskeyDisabledAccount(t *testing.T) {
	e := newPasskeyEnv(t)
	b, u := e.signedIn("alice", false)
	k := newSoftKey(t)
	e.register(b, k, "Laptop")
	if _, _, err := e.store.DisableUser(t.Context(), u.ID, e.now); err != nil {
		t.Fatal(err)
	}
	stranger := newBrowser()
	status, answer := e.finishLogin(stranger, k.get(e.beginLogin(stranger)))
	if status != http.StatusForbidden || answer["error_description"] != accounts.DisabledMessage {
		t.Fatalf("passkey sign-in of a disabled account: %d %v, want 403 %q", status, answer, accounts.DisabledMessage)
	}
	if ev := e.audit.last(); ev.Type != audit.SignInFailed || ev.Detail["reason"] != "account_disabled" {
		t.Fatalf("audit = %+v, want sign_in_failed account_disabled", ev)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range stranger.cookies {
		r.AddCookie(c)
	}
	if _, ok := e.sessions.Identity(r); ok {
		t.Fatal("a disabled account is signed in by its passkey")
	}
}

// TestPasskeyRefusals: each bad assertion is refused with a clear message,
// counted by the sign-in throttle, and never a 500.
func TestPasskeyRefusals(t *testing.T) {
	e := newPasskeyEnv(t)
	b, _ := e.signedIn("alice", false)
	k := newSoftKey(t)
	e.register(b, k, "Laptop")

	tests := []struct {
		name       string
		run        func() (int, map[string]any)
		wantStatus int
		wantMsg    string
	}{
		{"replayed assertion", func() (int, map[string]any) {
			br := newBrowser()
			cred := k.get(e.beginLogin(br))
			if status, answer := e.finishLogin(br, cred); status != http.StatusOK {
				t.Fatalf("first use: %d %v", status, answer)
			}
			return e.finishLogin(br, cred)
		}, http.StatusBadRequest, "expired or was already used"},
		{"challenge from another browser", func() (int, map[string]any) {
			cred := k.get(e.beginLogin(newBrowser()))
			return e.finishLogin(newBrowser(), cred)
		}, http.StatusBadRequest, "expired or was already used"},
		{"expired challenge", func() (int, map[string]any) {
			br := newBrowser()
			cred := k.get(e.beginLogin(br))
			e.now = e.now.Add(6 * time.Minute)
			defer func() { e.now = e.now.Add(-6 * time.Minute) }()
			return e.finishLogin(br, cred)
		}, http.StatusBadRequest, "expired or was already used"},
		{"unknown credential", func() (int, map[string]any) {
			br := newBrowser()
			other := newSoftKey(t)
			other.userHandle = k.userHandle
			return e.finishLogin(br, other.get(e.beginLogin(br)))
		}, http.StatusUnauthorized, "not registered here"},
		{"foreign origin", func() (int, map[string]any) {
			br := newBrowser()
			k.origin = "http://evil.example"
			defer func() { k.origin = testOrigin }()
			return e.finishLogin(br, k.get(e.beginLogin(br)))
		}, http.StatusUnauthorized, "did not check out"},
		{"foreign RP ID", func() (int, map[string]any) {
			br := newBrowser()
			k.rpID = "evil.example"
			defer func() { k.rpID = testRPID }()
			return e.finishLogin(br, k.get(e.beginLogin(br)))
		}, http.StatusUnauthorized, "did not check out"},
		{"counter regression", func() (int, map[string]any) {
			br := newBrowser()
			k.count = 0 // get makes it 1, below the stored count
			return e.finishLogin(br, k.get(e.beginLogin(br)))
		}, http.StatusUnauthorized, "may have been copied"},
		{"garbage credential", func() (int, map[string]any) {
			return e.post(newBrowser(), "/login/passkey/finish", map[string]any{"credential": "nonsense"})
		}, http.StatusBadRequest, "could not be read"},
		{"not JSON", func() (int, map[string]any) {
			return e.do(newBrowser(), "/login/passkey/finish", "application/json", []byte("{"))
		}, http.StatusBadRequest, "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.failures()
			status, answer := tc.run()
			msg, _ := answer["error_description"].(string)
			if status != tc.wantStatus || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("got %d %v, want %d with a message containing %q", status, answer, tc.wantStatus, tc.wantMsg)
			}
			if tc.wantMsg != "not valid JSON" {
				if got := e.failures(); got != before+1 {
					t.Fatalf("throttle holds %d failures, want %d", got, before+1)
				}
			}
		})
	}
	if ev := e.audit.last(); ev.Type != audit.SignInFailed || ev.Detail["method"] != "passkey" {
		t.Fatalf("last audit event = %+v, want a refused passkey sign-in", ev)
	}
}

func TestPasskeyBadRequestsAreNot500(t *testing.T) {
	e := newPasskeyEnv(t)
	b, _ := e.signedIn("alice", false)
	paths := []string{"/login/passkey/begin", "/login/passkey/finish", "/account/passkeys/register/begin", "/account/passkeys/register/finish"}
	bodies := []struct {
		contentType string
		body        []byte
	}{
		{"application/json", nil},
		{"application/json", []byte("[]")},
		{"application/json", []byte(`{"credential": {"id": 5}}`)},
		{"application/json", []byte(`{"name": "` + strings.Repeat("x", 100) + `"}`)},
		{"application/json", bytes.Repeat([]byte(" "), 70<<10)},
		{"text/plain", []byte("{}")},
	}
	for _, path := range paths {
		for _, body := range bodies {
			status, answer := e.do(b, path, body.contentType, body.body)
			if status >= 500 || status != http.StatusOK && answer["error_description"] == "" {
				t.Errorf("%s %s %.20q: %d %v, want a 4xx with a message", path, body.contentType, body.body, status, answer)
			}
		}
	}
}

func TestPasskeyRegistration(t *testing.T) {
	e := newPasskeyEnv(t)
	b, u := e.signedIn("alice", false)
	k := newSoftKey(t)
	e.register(b, k, "")

	// The options exclude what the account already has.
	status, options := e.post(b, "/account/passkeys/register/begin", nil)
	if status != http.StatusOK {
		t.Fatalf("begin: %d %v", status, options)
	}
	exclude, _ := options["publicKey"].(map[string]any)["excludeCredentials"].([]any)
	if len(exclude) != 1 || exclude[0].(map[string]any)["id"] != b64.EncodeToString(k.credID) {
		t.Fatalf("excludeCredentials = %v, want the registered passkey", exclude)
	}
	// The same credential again is refused.
	status, answer := e.post(b, "/account/passkeys/register/finish", map[string]any{"credential": k.create(options)})
	if status != http.StatusConflict {
		t.Fatalf("same passkey again: %d %v, want 409", status, answer)
	}
	// Passkeys are listed by when they were added; ids made in the same
	// millisecond have no order.
	e.now = e.now.Add(time.Second)
	e.register(b, newSoftKey(t), "Phone")
	keys, err := e.store.ListPasskeys(t.Context(), u.ID)
	if err != nil || len(keys) != 2 || keys[0].Name != "Passkey 1" || keys[1].Name != "Phone" {
		t.Fatalf("passkeys = %+v (%v), want Passkey 1 and Phone", keys, err)
	}
	if ev := e.audit.last(); ev.Type != audit.PasskeyAdded || ev.Subject != u.ID {
		t.Fatalf("audit = %+v, want passkey_added", ev)
	}

	// Another browser's registration challenge is not this one's.
	other, _ := e.signedIn("bob", false)
	_, options = e.post(other, "/account/passkeys/register/begin", nil)
	status, answer = e.post(b, "/account/passkeys/register/finish", map[string]any{"credential": newSoftKey(t).create(options)})
	if status != http.StatusBadRequest || !strings.Contains(answer["error_description"].(string), "expired or was already used") {
		t.Fatalf("another session's challenge: %d %v", status, answer)
	}

	// Signed out, or signed in too long ago.
	if status, _ := e.post(newBrowser(), "/account/passkeys/register/begin", nil); status != http.StatusUnauthorized {
		t.Fatalf("signed out: %d, want 401", status)
	}
	e.now = e.now.Add(10 * time.Minute)
	status, answer = e.post(b, "/account/passkeys/register/begin", nil)
	if status != http.StatusForbidden || answer["error"] != "login_required" || !strings.HasPrefix(answer["sign_in"].(string), "/login?") {
		t.Fatalf("stale sign-in: %d %v, want 403 login_required", status, answer)
	}
}

func TestPasskeyRemoveAndRename(t *testing.T) {
	e := newPasskeyEnv(t)
	b, u := e.signedIn("carol", true)
	e.register(b, newSoftKey(t), "Laptop")
	// Passkeys are listed by when they were added; ids made in the same
	// millisecond have no order.
	e.now = e.now.Add(time.Second)
	e.register(b, newSoftKey(t), "Phone")
	keys, err := e.store.ListPasskeys(t.Context(), u.ID)
	if err != nil || len(keys) != 2 {
		t.Fatal(keys, err)
	}
	form := func(path, body string) int {
		t.Helper()
		status, _ := e.do(b, path, "application/x-www-form-urlencoded", []byte(body))
		return status
	}
	if s := form("/account/passkeys/"+keys[0].ID+"/rename", "name=%01"); s != http.StatusBadRequest {
		t.Fatalf("rename to a control character: %d, want 400", s)
	}
	if s := form("/account/passkeys/"+keys[0].ID+"/rename", "name=Work+laptop"); s != http.StatusSeeOther {
		t.Fatalf("rename: %d, want 303", s)
	}
	if s := form("/account/passkeys/"+keys[0].ID+"/remove", ""); s != http.StatusSeeOther {
		t.Fatalf("remove one of two: %d, want 303", s)
	}
	if ev := e.audit.last(); ev.Type != audit.PasskeyRemoved {
		t.Fatalf("audit = %+v, want passkey_removed", ev)
	}
	// carol has no password: her last passkey stays.
	if s := form("/account/passkeys/"+keys[1].ID+"/remove", ""); s != http.StatusConflict {
		t.Fatalf("remove the last passkey of an account without a password: %d, want 409", s)
	}
	if s := form("/account/passkeys/"+keys[0].ID+"/remove", ""); s != http.StatusNotFound {
		t.Fatalf("remove again: %d, want 404", s)
	}
}

func TestPasskeyAMR(t *testing.T) {
	for _, tc := range []struct {
		synced bool
		want   string
	}{{false, "hwk mfa"}, {true, "swk mfa"}} {
		if got := strings.Join(accounts.PasskeyAMR(tc.synced), " "); got != tc.want {
			t.Errorf("PasskeyAMR(%v) = %q, want %q", tc.synced, got, tc.want)
		}
	}
}

func TestPasskeysNeedAHostName(t *testing.T) {
	for _, issuer := range []string{"http://127.0.0.1:8080", "http://[::1]:8080"} {
		p := accounts.Passkeys{Logger: slog.New(slog.DiscardHandler)}
		if err := p.UseIssuer(issuer); err != accounts.ErrNoPasskeyHost || p.Enabled() {
			t.Errorf("UseIssuer(%q) = %v, enabled %v; want ErrNoPasskeyHost, disabled", issuer, err, p.Enabled())
		}
		mux := http.NewServeMux()
		p.Mount(mux)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/login/passkey/begin", strings.NewReader("{}")))
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "IP address") {
			t.Errorf("%s: begin answered %d %s, want 404 saying why", issuer, rec.Code, rec.Body)
		}
	}
}

// FuzzPasskeyFinish: whatever a browser posts to the finish endpoints, the
// answer is a 2xx or a 4xx with a message, never a 500.
func FuzzPasskeyFinish(f *testing.F) {
	e := newPasskeyEnv(f)
	b, _ := e.signedIn("alice", false)
	k := newSoftKey(f)
	e.register(b, k, "Laptop")
	stranger := newBrowser()
	good, _ := json.Marshal(map[string]any{"credential": k.get(e.beginLogin(stranger))})
	f.Add(good)
	_, options := e.post(b, "/account/passkeys/register/begin", nil)
	good, _ = json.Marshal(map[string]any{"credential": newSoftKey(f).create(options)})
	f.Add(good)
	f.Add([]byte(`{"credential":{"id":"","rawId":"","type":"public-key","response":{"clientDataJSON":"e30"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/login/passkey/finish", "/account/passkeys/register/finish"} {
			r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			for _, c := range []*browser{stranger, b} {
				for _, cookie := range c.cookies {
					r.AddCookie(cookie)
				}
			}
			rec := httptest.NewRecorder()
			e.sessions.Middleware(e.mux).ServeHTTP(rec, r)
			if rec.Code >= 500 {
				t.Fatalf("%s answered %d %s", path, rec.Code, rec.Body)
			}
			var answer map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || rec.Code != http.StatusOK && answer["error_description"] == "" {
				t.Fatalf("%s answered %d %s, want JSON with an error_description", path, rec.Code, rec.Body)
			}
		}
	})
}
