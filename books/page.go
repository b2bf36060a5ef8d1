package books

import (
	"encoding/base64"
	"strconv"
	"strings"
)

const (
	defaultLimit = 50
	maxLimit     = 200
)

// idAlphabet and idLen describe what storage.NewID returns. A path segment of
// any other shape cannot name a book, so it is answered 404 without a query.
const (
	idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	idLen      = 26
)

func wellFormedID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := range len(id) {
		if strings.IndexByte(idAlphabet, id[i]) < 0 {
			return false
		}
	}
	return true
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, &requestError{field: "limit", msg: "must be an integer from 1 to 200"}
	}
	return n, nil
}

// encodeCursor hides the ID behind base64 to keep cursors opaque: clients
// must not build them, so the paging key can change without breaking them.
func encodeCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

// decodeCursor returns the ID after which the page starts; "" is the first
// page.
func decodeCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	// The decoder skips line breaks and ignores stray low bits; comparing
	// with the re-encoding leaves each cursor a single spelling.
	if err != nil || !wellFormedID(string(b)) || encodeCursor(string(b)) != s {
		return "", &requestError{field: "cursor", msg: "is not a cursor this API returned"}
	}
	return string(b), nil
}
