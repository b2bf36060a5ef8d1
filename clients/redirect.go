package clients

import (
	"net/url"
	"strconv"
	"strings"
)

// MatchRedirectURI finds the registered redirect URI that requested is
// allowed to stand for, and reports whether there is one. Matching is on
// the strings as sent, with no decoding or normalisation, so /%63b is not
// /cb and APP.EXAMPLE is not app.example. The one freedom is RFC 8252
// §7.3's: a registered http URI on a loopback host (127.0.0.1, [::1] or
// localhost) with no port matches the same URI with any port, because a
// native app listens on whatever port the system gives it. A registered
// port is exact, and an https loopback URI gets no port freedom.
func MatchRedirectURI(registered []string, requested string) (string, bool) {
	for _, reg := range registered {
		if reg == requested {
			return reg, true
		}
	}
	for _, reg := range registered {
		if matchesAnyPort(reg, requested) {
			return reg, true
		}
	}
	return "", false
}

// matchesAnyPort reports whether requested is reg with a port added after
// the host, reg being a portless http loopback URI.
func matchesAnyPort(reg, requested string) bool {
	host, ok := portlessLoopbackHost(reg)
	if !ok {
		return false
	}
	prefix := "http://" + host
	rest := reg[len(prefix):]
	after, ok := strings.CutPrefix(requested, prefix+":")
	if !ok {
		return false
	}
	port, ok := strings.CutSuffix(after, rest)
	return ok && validPort(port)
}

// portlessLoopbackHost returns the host of reg, spelt as registered, when
// reg is an http URI on a loopback host without a port.
func portlessLoopbackHost(reg string) (string, bool) {
	u, err := url.Parse(reg)
	if err != nil || u.Scheme != "http" || u.Port() != "" || strings.HasSuffix(u.Host, ":") || !isLoopback(u.Hostname()) {
		return "", false
	}
	// The registered string itself must begin with the parsed host, so
	// that the comparison below stays on the raw strings.
	if !strings.HasPrefix(reg, "http://"+u.Host) {
		return "", false
	}
	next := reg[len("http://"+u.Host):]
	if next != "" && next[0] != '/' && next[0] != '?' {
		return "", false
	}
	return u.Host, true
}

// validPort accepts a decimal port from 1 to 65535 written without leading
// zeros, the one spelling of each port.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	for _, c := range []byte(p) {
		if c < '0' || c > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// IsLoopbackRedirect reports whether u is an http URI on a loopback host:
// any program on the user's machine can listen there.
func IsLoopbackRedirect(u *url.URL) bool {
	return u.Scheme == "http" && isLoopback(u.Hostname())
}

// IsPrivateUseRedirect reports whether u uses an app's own scheme
// (com.example.app:/cb), which any app on the device can claim.
func IsPrivateUseRedirect(u *url.URL) bool {
	return u.Scheme != "http" && u.Scheme != "https"
}
