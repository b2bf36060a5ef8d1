package accounts

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"gatehouse/storage"
)

// TwoStepStore is what the second step of signing in needs from the
// database; storage.Store is one.
type TwoStepStore interface {
	ListTOTP(ctx context.Context) ([]storage.TOTP, error)
	ResealTOTP(ctx context.Context, userID string, old, sealed []byte) error
	EnableTOTP(ctx context.Context, t storage.TOTP, recoveryHashes []string) error
	GetTOTP(ctx context.Context, userID string) (storage.TOTP, error)
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	DisableTOTP(ctx context.Context, userID string) error
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error
	UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)
}

// The codes of an authenticator app: RFC 6238 with the parameters every
// app accepts (SHA-1, 6 digits, 30 seconds). A code is accepted one step
// either side of now, for clocks that drift and people who type slowly.
const (
	totpPeriod = 30
	totpSkew   = 1
	// TOTPIssuer is what authenticator apps show above the account name.
	TOTPIssuer = "Gatehouse"
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// RecoveryCodeCount is how many recovery codes a user gets at a time.
const RecoveryCodeCount = 10

// setupLifetime is how long a setup page's key may be confirmed.
const setupLifetime = 10 * time.Minute

// Errors of a code that was refused.
var (
	ErrWrongCode = errors.New("the code is not right")
	// ErrUsedCode: an authenticator code already accepted once.
	ErrUsedCode = errors.New("the code was already used")
	// ErrUsedRecoveryCode: a recovery code already used.
	ErrUsedRecoveryCode = errors.New("the recovery code was already used")
	// ErrSetupExpired: the setup page was left too long, or its form
	// was tampered with.
	ErrSetupExpired = errors.New("the setup expired")
	// ErrTOTPOn: the user already has an authenticator app.
	ErrTOTPOn = errors.New("an authenticator app is already set up")
)

// TwoStep is the second step of signing in: codes from an authenticator
// app, or a recovery code. The app's secret is sealed with AES-256-GCM
// under keys derived from the system secret, the first sealing and the
// others (from former secrets) only opening, with the user id as
// associated data, so a sealed secret copied to another user opens for no
// one.
type TwoStep struct {
	store TwoStepStore
	aeads []cipher.AEAD
	now   func() time.Time
}

// NewTwoStep takes the sealing keys, current first; now nil is time.Now.
func NewTwoStep(store TwoStepStore, sealKeys [][]byte, now func() time.Time) (*TwoStep, error) {
	if len(sealKeys) == 0 {
		return nil, errors.New("no key to seal authenticator secrets with")
	}
	if now == nil {
		now = time.Now
	}
	t := &TwoStep{store: store, now: now}
	for _, k := range sealKeys {
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("authenticator secret sealer: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("authenticator secret sealer: %w", err)
		}
		t.aeads = append(t.aeads, aead)
	}
	return t, nil
}

// Enabled reports whether the user has an authenticator app.
func (t *TwoStep) Enabled(ctx context.Context, userID string) (bool, error) {
	_, err := t.store.GetTOTP(ctx, userID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// Setup is what the setup page shows: a new key as a QR code and as text,
// and Token, the key sealed for the confirmation form to carry back. The
// key is stored only once a code from it is confirmed.
type Setup struct {
	Secret string
	// QR is a PNG data: URI of the otpauth:// URL.
	QR    string
	Token string
}

// setupToken is what Setup.Token seals.
type setupToken struct {
	Secret  string `json:"s"`
	Expires int64  `json:"e"`
}

// NewSetup makes a fresh key for the user.
func (t *TwoStep) NewSetup(userID, username string) (Setup, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: TOTPIssuer, AccountName: username, Period: totpPeriod, SecretSize: 20,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return Setup{}, fmt.Errorf("generate authenticator key: %w", err)
	}
	return t.setup(userID, key, setupToken{Secret: key.Secret(), Expires: t.now().Add(setupLifetime).Unix()})
}

// ReopenSetup shows a setup's key again, after a wrong code: the app that
// scanned it keeps working. It ends with the setup's lifetime.
func (t *TwoStep) ReopenSetup(userID, username, token string) (Setup, error) {
	st, err := t.openSetup(userID, token)
	if err != nil {
		return Setup{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: TOTPIssuer, AccountName: username, Period: totpPeriod,
		Secret: mustBase32(st.Secret), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return Setup{}, fmt.Errorf("rebuild authenticator key: %w", err)
	}
	return t.setup(userID, key, st)
}

func (t *TwoStep) setup(userID string, key *otp.Key, st setupToken) (Setup, error) {
	img, err := key.Image(240, 240)
	if err != nil {
		return Setup{}, fmt.Errorf("draw QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Setup{}, fmt.Errorf("encode QR code: %w", err)
	}
	plain, err := json.Marshal(st)
	if err != nil {
		return Setup{}, err
	}
	return Setup{
		Secret: key.Secret(),
		QR:     "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
		Token:  base64.RawURLEncoding.EncodeToString(t.seal(setupAD(userID), plain)),
	}, nil
}

// openSetup returns the key a setup form carries, ErrSetupExpired when it
// is past its lifetime or was not sealed for this user.
func (t *TwoStep) openSetup(userID, token string) (setupToken, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return setupToken{}, ErrSetupExpired
	}
	plain, _, err := t.open(setupAD(userID), raw)
	if err != nil {
		return setupToken{}, ErrSetupExpired
	}
	var st setupToken
	if err := json.Unmarshal(plain, &st); err != nil || mustBase32(st.Secret) == nil || !t.now().Before(time.Unix(st.Expires, 0)) {
		return setupToken{}, ErrSetupExpired
	}
	return st, nil
}

// mustBase32 decodes a key as pquerna/otp encodes it; nil when it does not.
func mustBase32(s string) []byte {
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// Confirm turns the authenticator app on when code is one of the setup's
// key, and returns the new recovery codes, to be shown once.
func (t *TwoStep) Confirm(ctx context.Context, userID, token, code string) ([]string, error) {
	st, err := t.openSetup(userID, token)
	if err != nil {
		return nil, err
	}
	step, ok := matchStep(st.Secret, normalizeCode(code), t.now())
	if !ok {
		return nil, ErrWrongCode
	}
	codes, hashes := newRecoveryCodes()
	err = t.store.EnableTOTP(ctx, storage.TOTP{
		UserID: userID,
		Sealed: t.seal(secretAD(userID), []byte(st.Secret)),
		// The confirming code is used: it cannot also sign anyone in.
		LastStep:  step,
		CreatedAt: t.now().UTC(),
	}, hashes)
	if errors.Is(err, storage.ErrConflict) {
		return nil, ErrTOTPOn
	}
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// Method says which kind of code Check accepted.
type Method string

const (
	MethodTOTP     Method = "totp"
	MethodRecovery Method = "recovery_code"
)

// Check accepts a code of the user's authenticator app or one of their
// recovery codes, each only once: an app's code only when its time step is
// later than the last one accepted, which the store enforces against
// racing requests too. Refusals are ErrWrongCode, ErrUsedCode and
// ErrUsedRecoveryCode.
func (t *TwoStep) Check(ctx context.Context, userID, code string) (Method, error) {
	code = normalizeCode(code)
	if !isTOTPCode(code) {
		err := t.store.UseRecoveryCode(ctx, userID, recoveryHash(code), t.now().UTC())
		switch {
		case errors.Is(err, storage.ErrInactive):
			return "", ErrUsedRecoveryCode
		case errors.Is(err, storage.ErrNotFound):
			return "", ErrWrongCode
		case err != nil:
			return "", err
		}
		return MethodRecovery, nil
	}
	rec, err := t.store.GetTOTP(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrWrongCode
	}
	if err != nil {
		return "", err
	}
	secret, _, err := t.open(secretAD(userID), rec.Sealed)
	if err != nil {
		return "", fmt.Errorf("authenticator secret of %s: %w", userID, err)
	}
	step, ok := matchStep(string(secret), code, t.now())
	if !ok {
		return "", ErrWrongCode
	}
	err = t.store.UseTOTPStep(ctx, userID, step)
	switch {
	case errors.Is(err, storage.ErrInactive):
		return "", ErrUsedCode
	case errors.Is(err, storage.ErrNotFound):
		// Turned off between the read and the update.
		return "", ErrWrongCode
	case err != nil:
		return "", err
	}
	return MethodTOTP, nil
}

// RecoveryCodesLeft is how many unused recovery codes the user has.
func (t *TwoStep) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	return t.store.CountRecoveryCodes(ctx, userID)
}

// RegenerateRecoveryCodes replaces every recovery code of the user and
// returns the new ones, to be shown once.
func (t *TwoStep) RegenerateRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes, hashes := newRecoveryCodes()
	if err := t.store.ReplaceRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

// Disable removes the authenticator app and the recovery codes.
func (t *TwoStep) Disable(ctx context.Context, userID string) error {
	return t.store.DisableTOTP(ctx, userID)
}

// matchStep finds the time step, within the skew of now, whose code is
// code.
func matchStep(secret, code string, now time.Time) (int64, bool) {
	if !isTOTPCode(code) {
		return 0, false
	}
	current := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := current + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// normalizeCode drops what people type around a code: spaces, dashes,
// capitals.
func normalizeCode(code string) string {
	return strings.ToLower(strings.Map(func(c rune) rune {
		if c == ' ' || c == '-' || c == '\t' {
			return -1
		}
		return c
	}, code))
}

func isTOTPCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// recoveryEncoding writes recovery codes in lower-case base32: letters and
// the digits 2-7, none of them easily confused when read aloud.
var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newRecoveryCodes returns RecoveryCodeCount codes of 80 random bits each,
// written xxxx-xxxx-xxxx-xxxx, and their digests. So much entropy makes a
// plain SHA-256 enough: no one guesses their way back from the digest.
func newRecoveryCodes() (codes, hashes []string) {
	for range RecoveryCodeCount {
		var b [10]byte
		rand.Read(b[:])
		s := recoveryEncoding.EncodeToString(b[:])
		codes = append(codes, s[0:4]+"-"+s[4:8]+"-"+s[8:12]+"-"+s[12:16])
		hashes = append(hashes, recoveryHash(s))
	}
	return codes, hashes
}

// recoveryHash is the stored digest of a normalized recovery code.
func recoveryHash(code string) string {
	sum := sha256.Sum256([]byte("gatehouse/recovery-code\x00" + code))
	return hex.EncodeToString(sum[:])
}

func secretAD(userID string) []byte { return []byte("totp-secret\x00" + userID) }
func setupAD(userID string) []byte  { return []byte("totp-setup\x00" + userID) }

// seal returns the nonce followed by the sealed plain.
func (t *TwoStep) seal(ad, plain []byte) []byte {
	aead := t.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, ad)
}

// errUnsealable is a sealed secret that no key opens.
var errUnsealable = errors.New("does not open with --secret or any of --old-secrets")

// open returns the plain text and whether it was sealed under a former
// secret.
func (t *TwoStep) open(ad, sealed []byte) ([]byte, bool, error) {
	for i, aead := range t.aeads {
		if len(sealed) < aead.NonceSize() {
			break
		}
		if plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], ad); err == nil {
			return plain, i > 0, nil
		}
	}
	return nil, false, errUnsealable
}

// Reseal seals again under the current secret every app secret sealed
// under a former one, so that it can leave --old-secrets after a restart,
// and returns how many it resealed and how many open with no key at all
// (their users need `server users reset-mfa`). Instances starting together
// may both reseal an app; each result opens.
func (t *TwoStep) Reseal(ctx context.Context) (resealed, unsealable int, err error) {
	all, err := t.store.ListTOTP(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, rec := range all {
		plain, stale, err := t.open(secretAD(rec.UserID), rec.Sealed)
		if err != nil {
			unsealable++
			continue
		}
		if !stale {
			continue
		}
		err = t.store.ResealTOTP(ctx, rec.UserID, rec.Sealed, t.seal(secretAD(rec.UserID), plain))
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// Replaced or removed since the list: nothing to reseal.
		case err != nil:
			return resealed, unsealable, err
		default:
			resealed++
		}
	}
	return resealed, unsealable, nil
}
