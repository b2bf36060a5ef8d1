package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse/storage"
	"gatehouse/storage/sqlstore"
)

// storedKey is a signing_keys row as the database holds it.
type storedKey struct {
	id     string
	sealed bool
	raw    []byte
}

func storedKeys(t *testing.T, path string) []storedKey {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, sealed, private_key FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []storedKey
	for rows.Next() {
		var k storedKey
		if err := rows.Scan(&k.id, &k.sealed, &k.raw); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// jwksModuli returns the public moduli the server publishes, by kid.
func jwksModuli(t *testing.T, base string) map[string][]byte {
	t.Helper()
	var jwks struct{ Keys []struct{ Kid, N string } }
	getJSON(t, base+"/.well-known/jwks.json", &jwks)
	out := map[string][]byte{}
	for _, k := range jwks.Keys {
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil {
			t.Fatal(err)
		}
		out[k.Kid] = n
	}
	return out
}

// wantSealed checks that no stored key holds private material in a form
// anyone could read: not DER (which carries the modulus), not PEM, not JWK.
func wantSealed(t *testing.T, keys []storedKey, moduli map[string][]byte) {
	t.Helper()
	if len(keys) == 0 {
		t.Fatal("no signing key stored")
	}
	for _, k := range keys {
		if !k.sealed {
			t.Errorf("key %s is not marked sealed", k.id)
		}
		if _, err := x509.ParsePKCS8PrivateKey(k.raw); err == nil {
			t.Errorf("key %s is stored as PKCS#8 in clear", k.id)
		}
		for _, marker := range []string{"-----BEGIN", `"d"`, `"kty"`} {
			if bytes.Contains(k.raw, []byte(marker)) {
				t.Errorf("key %s holds %q", k.id, marker)
			}
		}
		if n := moduli[k.id]; len(n) > 0 && bytes.Contains(k.raw, n[:32]) {
			t.Errorf("key %s holds its modulus in clear", k.id)
		}
	}
}

// startError starts a server with args the way newTestServer does and
// returns why it did not start.
func startError(t *testing.T, args ...string) error {
	t.Helper()
	var cfg config
	fs := newFlagSet("server", &cfg, io.Discard)
	serverFlags(fs, &cfg)
	if err := parse(fs, append([]string{"--addr", "127.0.0.1:0"}, args...), func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	logger, err := newLogger(io.Discard, "text", "error")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := start(context.Background(), cfg, logger)
	if err == nil {
		srv.shutdown()
	}
	return err
}

// TestSigningKeySealing checks the ID token signing keys at rest: sealed on
// first start, resealed when the system secret rotates, refused with a
// clear error under a secret that cannot open them.
func TestSigningKeySealing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	var before []storedKey
	t.Run("sealed when created", func(t *testing.T) {
		srv := newTestServer(t, "--db", path)
		before = storedKeys(t, path)
		wantSealed(t, before, jwksModuli(t, srv.URL))
	})
	t.Run("resealed under a new secret", func(t *testing.T) {
		srv := newTestServer(t, "--db", path, "--secret", rotatedSecret, "--old-secrets", testSecret)
		after := storedKeys(t, path)
		if len(after) != len(before) || len(after) != 3 {
			t.Fatalf("%d keys after rotating the secret, want the same %d (one per algorithm)", len(after), len(before))
		}
		for i := range after {
			if after[i].id != before[i].id {
				t.Fatalf("key %d is %s after rotating the secret, want %s", i, after[i].id, before[i].id)
			}
			if bytes.Equal(after[i].raw, before[i].raw) {
				t.Fatalf("key %s was not sealed again under the new secret", after[i].id)
			}
		}
		wantSealed(t, after, jwksModuli(t, srv.URL))
	})
	t.Run("the new secret alone opens it", func(t *testing.T) {
		srv := newTestServer(t, "--db", path, "--secret", rotatedSecret)
		published := jwksModuli(t, srv.URL)
		for _, k := range before {
			if _, ok := published[k.id]; !ok {
				t.Fatalf("the server does not publish the resealed key %s", k.id)
			}
		}
	})
	t.Run("a wrong secret is a clear start-up error", func(t *testing.T) {
		err := startError(t, "--db", path, "--secret", testSecret)
		if err == nil || !strings.Contains(err.Error(), "does not open") || !slices.ContainsFunc(before, func(k storedKey) bool { return strings.Contains(err.Error(), k.id) }) {
			t.Fatalf("start with a secret that does not open the key: %v, want an error naming the key", err)
		}
	})
}

// TestPlaintextSigningKeySealedOnStart starts on a database whose key was
// written in clear, as before sealing existed: the server keeps signing
// with that key and seals it.
func TestPlaintextSigningKeySealedOnStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	store, err := sqlstore.Open(context.Background(), path, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	old := storage.SigningKey{ID: storage.NewID(), Algorithm: "RS256", PrivateKey: der, CreatedAt: time.Now().UTC()}
	if err := store.CreateSigningKey(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	store.Close()

	srv := newTestServer(t, "--db", path)
	moduli := jwksModuli(t, srv.URL)
	rsaKeys := 0
	for _, n := range moduli {
		if len(n) > 0 {
			rsaKeys++
		}
	}
	if rsaKeys != 1 || !bytes.Equal(moduli[old.ID], priv.N.Bytes()) {
		t.Fatalf("JWKS %v: want exactly the RSA key that was stored in clear", moduli)
	}
	wantSealed(t, storedKeys(t, path), moduli)
}

// runInProcess runs the server binary's command line in-process.
func runInProcess(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	return out.String(), err
}

func listKeys(t *testing.T, path string) []keyJSON {
	t.Helper()
	out, err := runInProcess(t, "keys", "list", "--db", path)
	if err != nil {
		t.Fatalf("keys list: %v", err)
	}
	var keys []keyJSON
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var k keyJSON
		if err := dec.Decode(&k); err != nil {
			t.Fatalf("keys list printed %q: %v", out, err)
		}
		keys = append(keys, k)
	}
	if strings.Contains(out, "private") || strings.Contains(out, `"d"`) {
		t.Fatalf("keys list prints key material: %s", out)
	}
	return keys
}

// TestKeysCommand rotates the signing key from the command line while a
// server runs: the old key stays published, servers sign with the new one,
// and go-oidc verifies ID tokens signed before and after.
func TestKeysCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a := startInstance(t, path)
	c, secret := setup(t, a)
	conf := multiConf(c, secret, a, a, oidc.ScopeOpenID)
	idToken := func(in *instance) string {
		t.Helper()
		v := oauth2.GenerateVerifier()
		resp, body := tokenRequest(t, in.base, codeForm(conf, authorizedCode(t, a.testServer, newBrowser(t, a.base), conf, v, "alice", alicePassword), v), c.ID, secret)
		raw, _ := body["id_token"].(string)
		if resp.StatusCode != http.StatusOK || raw == "" {
			t.Fatalf("code exchange at %s: %d %s, want an ID token", in.base, resp.StatusCode, fmtErr(body))
		}
		return raw
	}
	first := idToken(a)

	all := listKeys(t, path)
	var algs []string
	for _, k := range all {
		if !k.Signing || !k.Sealed || k.CreatedAt.IsZero() {
			t.Fatalf("keys list before rotating: %+v, want sealed keys that sign", all)
		}
		algs = append(algs, k.Alg)
	}
	if slices.Sort(algs); !slices.Equal(algs, []string{"ES256", "EdDSA", "RS256"}) {
		t.Fatalf("keys list before rotating: %+v, want one key per algorithm", all)
	}
	keys := all[slices.IndexFunc(all, func(k keyJSON) bool { return k.Alg == "RS256" }):][:1]
	out, err := runInProcess(t, "keys", "rotate", "--alg", "RS256", "--db", path, "--secret", testSecret)
	if err != nil {
		t.Fatalf("keys rotate: %v", err)
	}
	var rotated keyJSON
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || rotated.KID == "" || rotated.KID == keys[0].KID || rotated.Alg != "RS256" {
		t.Fatalf("keys rotate --alg RS256 printed %q (%v), want the new RS256 key", out, err)
	}
	after := listKeys(t, path)
	if len(after) != 4 || after[0].KID != rotated.KID || !after[0].Signing {
		t.Fatalf("keys list after rotating: %+v, want the new key first, signing", after)
	}
	for _, k := range after[1:] {
		if k.Signing != (k.Alg != "RS256") {
			t.Fatalf("keys list after rotating RS256: %+v, want the old RS256 key no longer signing and the others still", after)
		}
	}
	wantSealed(t, storedKeys(t, path), nil)

	if _, err := runInProcess(t, "keys", "rotate", "--db", path, "--secret", rotatedSecret); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("keys rotate with a secret that does not open the current key: %v, want a refusal", err)
	}
	if _, err := runInProcess(t, "keys", "rotate", "--alg", "HS256", "--db", path, "--secret", testSecret); err == nil || !strings.Contains(err.Error(), "RS256, ES256, EdDSA or all") {
		t.Fatalf("keys rotate --alg HS256: %v, want a refusal naming the algorithms", err)
	}
	if n := len(listKeys(t, path)); n != 4 {
		t.Fatalf("%d keys after the refused rotations, want 4", n)
	}

	// An instance started now signs with the new key; the running one
	// picks it up at its next reload.
	b := startInstance(t, path)
	second := idToken(b)
	verifier := oidc.NewVerifier(sharedIssuer, oidc.NewRemoteKeySet(context.Background(), b.base+"/.well-known/jwks.json"), &oidc.Config{ClientID: c.ID})
	for name, raw := range map[string]string{"before": first, "after": second} {
		if _, err := verifier.Verify(context.Background(), raw); err != nil {
			t.Errorf("ID token signed %s the rotation: %v", name, err)
		}
	}
	for raw, want := range map[string]string{first: keys[0].KID, second: rotated.KID} {
		var header struct{ Kid string }
		h, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
		if err := json.Unmarshal(h, &header); err != nil || header.Kid != want {
			t.Errorf("ID token signed with kid %q, want %q", header.Kid, want)
		}
	}
}

// TestKeysRotateAfterLeak follows README's procedure for a leaked secret:
// keys rotate with the new secret and the old one reseals the keys and adds
// a fresh one, after which servers start with the new secret alone.
func TestKeysRotateAfterLeak(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	t.Run("first start", func(t *testing.T) { newTestServer(t, "--db", path) })
	if err := startError(t, "--db", path, "--secret", rotatedSecret); err == nil {
		t.Fatal("a server with only the new secret opened a key sealed under the old one")
	}
	if _, err := runInProcess(t, "keys", "rotate", "--db", path, "--secret", rotatedSecret, "--old-secrets", testSecret); err != nil {
		t.Fatalf("keys rotate with the new and the old secret: %v", err)
	}
	srv := newTestServer(t, "--db", path, "--secret", rotatedSecret)
	if n := len(jwksModuli(t, srv.URL)); n != 6 {
		t.Fatalf("JWKS has %d keys, want the fresh one and the former one of each algorithm", n)
	}
	wantSealed(t, storedKeys(t, path), nil)
}
