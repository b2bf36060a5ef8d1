package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's 7 MiB / 5 passes profile, which costs
// about the CPU of its others with the least memory per hash, in two lanes
// (RFC 9106 §4) so that one hash uses two cores: a burst of sign-ins on a
// small machine then holds one 7 MiB buffer per two cores instead of one
// per core, for the same number of sign-ins per second. Hashes made with
// other parameters still verify, and are replaced at the next sign-in (see
// upgradeHash).
const (
	argonMemory  = 7 * 1024
	argonTime    = 5
	argonThreads = 2
	argonKeyLen  = 32
	argonSaltLen = 16
)

// hashSlots bounds concurrent hashes to the cores their lanes fill, so a
// burst of sign-ins queues for the CPU instead of multiplying argon2's
// memory by the number of requests.
var hashSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/argonThreads))

// HashPassword returns a PHC-format argon2id hash.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := derive([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func derive(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey(password, salt, t, m, p, keyLen)
}

var errBadHash = errors.New("malformed password hash")

// currentParams is the parameter part of every hash HashPassword makes.
var currentParams = fmt.Sprintf("m=%d,t=%d,p=%d", argonMemory, argonTime, argonThreads)

// hashOutdated reports whether hash was made with other parameters than
// HashPassword's.
func hashOutdated(hash string) bool {
	parts := strings.Split(hash, "$")
	return len(parts) != 6 || parts[2] != fmt.Sprintf("v=%d", argon2.Version) || parts[3] != currentParams
}

// CheckPassword reports whether password matches the PHC hash. Parameters
// are read from the hash, so they can be raised without invalidating old
// passwords.
func CheckPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || p == 0 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := derive([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked when the username is unknown, so that an unknown
// user and a wrong password take the same time and give the same answer.
var dummyHash = sync.OnceValues(func() (string, error) {
	return HashPassword("gatehouse-timing-equalizer")
})
