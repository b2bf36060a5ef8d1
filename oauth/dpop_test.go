package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"gatehouse/oauth"
	"gatehouse/oauth/dpoptest"
	"gatehouse/storage"
)

// memReplays is the replay store in memory, for the pure verifier's tests;
// the server's own is the database (see cmd/server's multi-instance test).
type memReplays struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memReplays) UseOnce(_ context.Context, key string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	if m.seen[key] {
		return storage.ErrConflict
	}
	m.seen[key] = true
	return nil
}

const resURL = "https://as.example/api/books"

func TestVerifyDPoP(t *testing.T) {
	now := time.Now()
	es := dpoptest.NewES256()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs := dpoptest.Key{Private: rsaKey, Alg: jose.RS256}
	ps := dpoptest.Key{Private: rsaKey, Alg: jose.PS256}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed := dpoptest.Key{Private: edPriv, Alg: jose.EdDSA}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakKey := dpoptest.Key{Private: weak, Alg: jose.RS256}
	es384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	es384Key := dpoptest.Key{Private: es384, Alg: jose.ES384}
	private := jose.JSONWebKey{Key: es.Private, Algorithm: "ES256"}
	other := dpoptest.NewES256().PublicJWK()

	good := func() dpoptest.Proof {
		return dpoptest.Proof{Method: "GET", URL: resURL, IAT: now, AccessToken: "tok"}
	}
	with := func(edit func(*dpoptest.Proof)) dpoptest.Proof { p := good(); edit(&p); return p }
	noneAlg := func() string {
		p := strings.Split(es.Build(good()), ".")
		return "eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ." + p[1] + "."
	}

	cases := []struct {
		name    string
		headers []string
		chk     func(*oauth.DPoPCheck)
		want    string // "" accepts, else the error code
	}{
		{"ES256", []string{es.Build(good())}, nil, ""},
		{"RS256", []string{rs.Build(good())}, nil, ""},
		{"PS256", []string{ps.Build(good())}, nil, ""},
		{"EdDSA", []string{ed.Build(good())}, nil, ""},
		{"htu with default port and upper-case host", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "https://AS.example:443/api/books?x=1" }))}, nil, ""},
		{"no header", nil, nil, "invalid_dpop_proof"},
		{"two headers", []string{es.Build(good()), es.Build(good())}, nil, "invalid_dpop_proof"},
		{"not a JWT", []string{"not.a.jwt"}, nil, "invalid_dpop_proof"},
		{"empty", []string{""}, nil, "invalid_dpop_proof"},
		{"typ missing", []string{es.Build(with(func(p *dpoptest.Proof) { p.Typ = "JWT" }))}, nil, "invalid_dpop_proof"},
		{"typ wrong", []string{es.Build(with(func(p *dpoptest.Proof) { p.Typ = "jwt" }))}, nil, "invalid_dpop_proof"},
		{"alg none", []string{noneAlg()}, nil, "invalid_dpop_proof"},
		{"alg not supported (ES384)", []string{es384Key.Build(good())}, nil, "invalid_dpop_proof"},
		{"private key in jwk", []string{es.Build(with(func(p *dpoptest.Proof) { p.JWK = &private }))}, nil, "invalid_dpop_proof"},
		{"no jwk", []string{es.Build(with(func(p *dpoptest.Proof) { p.NoJWK = true }))}, nil, "invalid_dpop_proof"},
		{"jwk of another key", []string{es.Build(with(func(p *dpoptest.Proof) { p.JWK = &other }))}, nil, "invalid_dpop_proof"},
		{"RSA key under 2048 bits", []string{weakKey.Build(good())}, nil, "invalid_dpop_proof"},
		{"wrong htm", []string{es.Build(with(func(p *dpoptest.Proof) { p.Method = "POST" }))}, nil, "invalid_dpop_proof"},
		{"lower-case htm", []string{es.Build(with(func(p *dpoptest.Proof) { p.Method = "get" }))}, nil, "invalid_dpop_proof"},
		{"wrong htu path", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "https://as.example/api/books/1" }))}, nil, "invalid_dpop_proof"},
		{"wrong htu host", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "https://evil.example/api/books" }))}, nil, "invalid_dpop_proof"},
		{"wrong htu scheme", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "http://as.example/api/books" }))}, nil, "invalid_dpop_proof"},
		{"relative htu", []string{es.Build(with(func(p *dpoptest.Proof) { p.URL = "/api/books" }))}, nil, "invalid_dpop_proof"},
		{"stale iat", []string{es.Build(with(func(p *dpoptest.Proof) { p.IAT = now.Add(-6 * time.Minute) }))}, nil, "invalid_dpop_proof"},
		{"future iat", []string{es.Build(with(func(p *dpoptest.Proof) { p.IAT = now.Add(2 * time.Minute) }))}, nil, "invalid_dpop_proof"},
		{"wrong ath", []string{es.Build(with(func(p *dpoptest.Proof) { p.AccessToken = "other" }))}, nil, "invalid_dpop_proof"},
		{"no ath at a resource", []string{es.Build(with(func(p *dpoptest.Proof) { p.AccessToken = "" }))}, nil, "invalid_dpop_proof"},
		{"jti too long", []string{es.Build(with(func(p *dpoptest.Proof) { p.JTI = strings.Repeat("j", 300) }))}, nil, "invalid_dpop_proof"},
		{"too large", []string{strings.Repeat("a", 9000)}, nil, "invalid_dpop_proof"},
		{"nonce missing", []string{es.Build(good())}, func(c *oauth.DPoPCheck) { c.Nonce = func(n string) bool { return n == "n1" } }, "use_dpop_nonce"},
		{"nonce wrong", []string{es.Build(with(func(p *dpoptest.Proof) { p.Nonce = "n0" }))}, func(c *oauth.DPoPCheck) { c.Nonce = func(n string) bool { return n == "n1" } }, "use_dpop_nonce"},
		{"nonce right", []string{es.Build(with(func(p *dpoptest.Proof) { p.Nonce = "n1" }))}, func(c *oauth.DPoPCheck) { c.Nonce = func(n string) bool { return n == "n1" } }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chk := oauth.DPoPCheck{Method: "GET", URL: resURL, Now: now, AccessToken: "tok"}
			if tc.chk != nil {
				tc.chk(&chk)
			}
			jkt, err := oauth.VerifyDPoP(context.Background(), tc.headers, chk, &memReplays{})
			if tc.want == "" {
				if err != nil || jkt == "" {
					t.Fatalf("got %q, %v; want the proof accepted", jkt, err)
				}
				return
			}
			var de *oauth.DPoPError
			if !errors.As(err, &de) || de.Code != tc.want {
				t.Fatalf("got %q, %v; want %s", jkt, err, tc.want)
			}
		})
	}
}

func TestVerifyDPoPReplayAndThumbprint(t *testing.T) {
	es := dpoptest.NewES256()
	proof := es.Build(dpoptest.Proof{Method: "POST", URL: "https://as.example/oauth2/token"})
	chk := oauth.DPoPCheck{Method: "POST", URL: "https://as.example/oauth2/token", Now: time.Now()}
	replays := &memReplays{}
	jkt, err := oauth.VerifyDPoP(context.Background(), []string{proof}, chk, replays)
	if err != nil || jkt != es.Thumbprint() {
		t.Fatalf("first use: %q, %v; want thumbprint %q", jkt, err, es.Thumbprint())
	}
	_, err = oauth.VerifyDPoP(context.Background(), []string{proof}, chk, replays)
	var de *oauth.DPoPError
	if !errors.As(err, &de) || de.Code != "invalid_dpop_proof" || !strings.Contains(de.Description, "used before") {
		t.Fatalf("replay: %v; want invalid_dpop_proof for a used proof", err)
	}
}

func FuzzVerifyDPoP(f *testing.F) {
	es := dpoptest.NewES256()
	f.Add(es.Build(dpoptest.Proof{Method: "GET", URL: resURL, AccessToken: "tok"}), "GET", resURL)
	f.Add(es.Build(dpoptest.Proof{Method: "GET", URL: "https://as.example:443/api/books?q", AccessToken: "tok", Nonce: "n"}), "GET", resURL)
	f.Add("eyJhbGciOiJub25lIn0.e30.", "POST", "https://[::1]:8080/x")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for _, k := range []dpoptest.Key{{Private: rsaKey, Alg: jose.PS256}, {Private: rsaKey, Alg: jose.RS256}, {Private: edPriv, Alg: jose.EdDSA}} {
		f.Add(k.Build(dpoptest.Proof{Method: "GET", URL: resURL, AccessToken: "tok"}), "GET", resURL)
	}
	f.Fuzz(func(t *testing.T, proof, method, u string) {
		chk := oauth.DPoPCheck{Method: method, URL: u, Now: time.Now(), AccessToken: "tok", Nonce: func(string) bool { return true }}
		jkt, err := oauth.VerifyDPoP(context.Background(), []string{proof}, chk, &memReplays{})
		var de *oauth.DPoPError
		switch {
		case err == nil && jkt == "":
			t.Fatal("accepted without a thumbprint")
		case err != nil && !errors.As(err, &de):
			t.Fatalf("error is not a DPoPError: %v", err)
		case err == nil:
			agreesWithGoJose(t, proof, jkt)
		}
	})
}

// agreesWithGoJose fails unless go-jose also finds proof, which VerifyDPoP
// accepted, signed by its own jwk, whose thumbprint is jkt: the parser
// here is never the more lenient.
func agreesWithGoJose(t *testing.T, proof, jkt string) {
	jws, err := jose.ParseSignedCompact(proof, oauth.DPoPAlgs)
	if err != nil {
		t.Fatalf("accepted a proof go-jose does not parse: %v", err)
	}
	jwk := jws.Signatures[0].Protected.JSONWebKey
	if jwk == nil {
		t.Fatal("accepted a proof without jwk")
	}
	if _, err := jws.Verify(jwk); err != nil {
		t.Fatalf("accepted a proof go-jose does not verify: %v", err)
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil || base64.RawURLEncoding.EncodeToString(thumb) != jkt {
		t.Fatalf("thumbprint %q, want go-jose's %x (%v)", jkt, thumb, err)
	}
}

// segments are the three base64url parts of a compact JWS.
func segments(t *testing.T, jws string) []string {
	t.Helper()
	s := strings.Split(jws, ".")
	if len(s) != 3 {
		t.Fatalf("%q is not a compact JWS", jws)
	}
	return s
}

// jwkJSON is k's public key as a header's jwk member.
func jwkJSON(t *testing.T, k dpoptest.Key) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: k.Private.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVerifyDPoPKnownHeader checks that a header checked before, whose key
// and thumbprint are remembered, still needs its own valid signature on
// every proof.
func TestVerifyDPoPKnownHeader(t *testing.T) {
	es, other := dpoptest.NewES256(), dpoptest.NewES256()
	chk := oauth.DPoPCheck{Method: "GET", URL: resURL, Now: time.Now(), AccessToken: "tok"}
	build := func(k dpoptest.Key) string {
		return k.Build(dpoptest.Proof{Method: "GET", URL: resURL, AccessToken: "tok"})
	}
	verify := func(proof string) (string, error) {
		return oauth.VerifyDPoP(context.Background(), []string{proof}, chk, &memReplays{})
	}
	first := build(es)
	if jkt, err := verify(first); err != nil || jkt != es.Thumbprint() {
		t.Fatalf("first proof: %q, %v", jkt, err)
	}
	head, body, sig := segments(t, first)[0], segments(t, first)[1], segments(t, first)[2]
	header, _ := base64.RawURLEncoding.DecodeString(head)
	claims, _ := base64.RawURLEncoding.DecodeString(segments(t, build(es))[1])
	refused := map[string]string{
		"signed by another key":   other.SignRaw(string(header), string(claims)),
		"claims of another proof": head + "." + segments(t, build(es))[1] + "." + sig,
		"signature of another":    head + "." + body + "." + segments(t, build(es))[2],
		"no signature":            head + "." + body + ".",
	}
	for name, proof := range refused {
		if jkt, err := verify(proof); err == nil {
			t.Errorf("%s: accepted with %q", name, jkt)
		} else if !strings.Contains(err.Error(), "signature") && !strings.Contains(err.Error(), "not a JWT") {
			t.Errorf("%s: %v, want a bad signature", name, err)
		}
	}
	if jkt, err := verify(build(es)); err != nil || jkt != es.Thumbprint() {
		t.Fatalf("another proof with the known header: %q, %v", jkt, err)
	}
	if jkt, err := verify(build(other)); err != nil || jkt != other.Thumbprint() {
		t.Fatalf("proof of another key: %q, %v; want its own thumbprint", jkt, err)
	}
}

// TestVerifyDPoPStrictJWS covers what a compact JWS parser must refuse.
func TestVerifyDPoPStrictJWS(t *testing.T) {
	es := dpoptest.NewES256()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs := dpoptest.Key{Private: rsaKey, Alg: jose.RS256}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()
	claims := fmt.Sprintf(`{"jti":"j","htm":"GET","htu":%q,"iat":%d,"ath":"%s"}`, resURL, now.Unix(), athOf("tok"))
	header := func(extra string) string {
		return `{"alg":"ES256","typ":"dpop+jwt","jwk":` + jwkJSON(t, es) + extra + `}`
	}
	good := es.SignRaw(header(""), claims)
	s := segments(t, good)
	// With a kid, the header's length leaves spare bits.
	k := segments(t, es.SignRaw(header(`,"kid":"k1"`), claims))
	// lowBit sets a bit the last character of a segment carries beyond
	// the encoded bytes: the lax decoder reads the same bytes from it.
	lowBit := func(seg string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		if len(seg)%4 < 2 {
			t.Fatalf("%q has no spare bits", seg)
		}
		i := strings.IndexByte(alphabet, seg[len(seg)-1])
		return seg[:len(seg)-1] + string(alphabet[i^1])
	}
	// Standard base64 differs from base64url only at - and _, which the
	// base64url of ASCII JSON hardly ever holds and a signature of 86
	// characters lacks about one time in fifteen.
	std := good
	for !strings.ContainsAny(segments(t, std)[2], "-_") {
		std = es.SignRaw(header(""), claims)
	}
	cases := map[string]string{
		"padded signature":           good + "==",
		"padded claims":              s[0] + "." + s[1] + "=." + s[2],
		"stray bits in signature":    s[0] + "." + s[1] + "." + lowBit(s[2]),
		"stray bits in header":       lowBit(k[0]) + "." + k[1] + "." + k[2],
		"newline in claims":          s[0] + "." + s[1][:4] + "\n" + s[1][4:] + "." + s[2],
		"four parts":                 good + ".x",
		"two parts":                  s[0] + "." + s[1],
		"standard base64":            strings.NewReplacer("-", "+", "_", "/").Replace(std),
		"crit":                       es.SignRaw(header(`,"crit":["exp"],"exp":1`), claims),
		"b64 false":                  es.SignRaw(header(`,"b64":false,"crit":["b64"]`), claims),
		"upper-case ALG":             es.SignRaw(strings.Replace(header(""), `"alg"`, `"ALG"`, 1), claims),
		"upper-case TYP":             es.SignRaw(strings.Replace(header(""), `"typ"`, `"TYP"`, 1), claims),
		"HS256":                      es.SignRaw(strings.Replace(header(""), "ES256", "HS256", 1), claims),
		"ES256 with a P-384 jwk":     es.SignRaw(`{"alg":"ES256","typ":"dpop+jwt","jwk":`+jwkJSON(t, dpoptest.Key{Private: p384})+`}`, claims),
		"RS256 naming an EC jwk":     rs.SignRaw(`{"alg":"RS256","typ":"dpop+jwt","jwk":`+jwkJSON(t, es)+`}`, claims),
		"ES256 naming an RSA jwk":    es.SignRaw(`{"alg":"ES256","typ":"dpop+jwt","jwk":`+jwkJSON(t, rs)+`}`, claims),
		"header not an object":       es.SignRaw(`["ES256"]`, claims),
		"claims not an object":       es.SignRaw(header(""), `"jti"`),
		"claims with iat as a float": es.SignRaw(header(""), strings.Replace(claims, `"iat":`, `"iat":1e400,"x":`, 1)),
	}
	chk := oauth.DPoPCheck{Method: "GET", URL: resURL, Now: now, AccessToken: "tok"}
	if _, err := oauth.VerifyDPoP(context.Background(), []string{good}, chk, &memReplays{}); err != nil {
		t.Fatalf("the proof the cases start from: %v", err)
	}
	for name, proof := range cases {
		jkt, err := oauth.VerifyDPoP(context.Background(), []string{proof}, chk, &memReplays{})
		var de *oauth.DPoPError
		if !errors.As(err, &de) || de.Code != "invalid_dpop_proof" {
			t.Errorf("%s: got %q, %v; want invalid_dpop_proof", name, jkt, err)
		}
	}
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// BenchmarkVerifyDPoP is the check of a fresh ES256 proof whose header was
// seen before, as every proof but a client's first: the signature, the
// claims and the replay record (here in memory).
func BenchmarkVerifyDPoP(b *testing.B) {
	es := dpoptest.NewES256()
	proofs := make([]string, 1000)
	for i := range proofs {
		proofs[i] = es.Build(dpoptest.Proof{Method: "GET", URL: resURL, AccessToken: "tok"})
	}
	chk := oauth.DPoPCheck{Method: "GET", URL: resURL, Now: time.Now(), AccessToken: "tok"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		proof := proofs[i%len(proofs)]
		i++
		// A replay store of its own, as the proofs repeat.
		if _, err := oauth.VerifyDPoP(context.Background(), []string{proof}, chk, &memReplays{}); err != nil {
			b.Fatal(err)
		}
	}
}
