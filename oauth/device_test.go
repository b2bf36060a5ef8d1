package oauth

import (
	"strings"
	"testing"
)

func TestNormalizeUserCode(t *testing.T) {
	for in, want := range map[string]string{
		"WXTZ-BCDF":       "WXTZBCDF",
		"wxtzbcdf":        "WXTZBCDF",
		" wx tz-bc df ":   "WXTZBCDF",
		"w-x-t-z-b-c-d-f": "WXTZBCDF",
	} {
		if got, ok := normalizeUserCode(in); !ok || got != want {
			t.Errorf("normalizeUserCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "WXTZ-BCD", "WXTZ-BCDFG", "AEIO-UBCD", "WXTZ-BCD1", "WXTZ_BCDF", "ẂXTZ-BCDF", "WXTZ\tBCDF"} {
		if got, ok := normalizeUserCode(in); ok {
			t.Errorf("normalizeUserCode(%q) = %q, want refused", in, got)
		}
	}
}

// TestNewUserCode checks the shape and that every letter of the alphabet
// turns up in every position: a skewed draw would shrink the 20^8 space.
func TestNewUserCode(t *testing.T) {
	seen := make([]map[byte]bool, userCodeLength)
	for i := range seen {
		seen[i] = map[byte]bool{}
	}
	for range 2000 {
		c := newUserCode()
		if _, ok := normalizeUserCode(c); !ok {
			t.Fatalf("newUserCode() = %q is not a valid code", c)
		}
		for i := range c {
			seen[i][c[i]] = true
		}
	}
	for i, s := range seen {
		if len(s) != len(userCodeAlphabet) {
			t.Errorf("position %d drew %d of %d letters", i, len(s), len(userCodeAlphabet))
		}
	}
	if got := formatUserCode("WXTZBCDF"); got != "WXTZ-BCDF" || strings.Count(got, "-") != 1 {
		t.Errorf("formatUserCode = %q", got)
	}
}
