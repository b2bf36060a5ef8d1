package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

const (
	jwksFetchTimeout = 5 * time.Second
	maxJWKSBody      = 64 << 10
)

// PublicFetcher fetches client key sets from the public internet only.
// The address is checked when the connection is dialled, after name
// resolution, so a name that resolves (or re-resolves) to a private,
// loopback or link-local address is refused; redirects are not followed,
// a fetch takes at most 5 s and 64 KiB.
type PublicFetcher struct {
	client *http.Client
}

// NewPublicFetcher returns a fetcher that allows only public unicast
// addresses. allow, when not nil, replaces that rule (for tests).
func NewPublicFetcher(allow func(netip.Addr) bool) *PublicFetcher {
	if allow == nil {
		allow = publicUnicast
	}
	dialer := &net.Dialer{
		Timeout: jwksFetchTimeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !allow(ap.Addr().Unmap()) {
				return fmt.Errorf("refusing to connect to %s: not a public address", address)
			}
			return nil
		},
	}
	transport := &http.Transport{
		DialContext:           dialer.DialContext,
		Proxy:                 nil, // a proxy would dial on our behalf, unchecked
		TLSHandshakeTimeout:   jwksFetchTimeout,
		ResponseHeaderTimeout: jwksFetchTimeout,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
	}
	return &PublicFetcher{client: &http.Client{
		Transport:     transport,
		Timeout:       jwksFetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") },
	}}
}

// FetchJWKS GETs uri and returns the body of a 200 answer.
func (f *PublicFetcher) FetchJWKS(ctx context.Context, uri string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks_uri answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBody {
		return nil, fmt.Errorf("jwks_uri answered more than %d KiB", maxJWKSBody>>10)
	}
	return body, nil
}

// publicUnicast is a global unicast address outside the private,
// shared (100.64/10) and documentation ranges.
func publicUnicast(a netip.Addr) bool {
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("64:ff9b::/96"),
}
