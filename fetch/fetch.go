// Package fetch reads small JSON documents from URLs that clients name
// (client ID metadata documents, jwks_uri). Such a URL is chosen by whoever
// registers or presents the client, so every fetch is treated as hostile:
// only public unicast addresses are dialled, checked on the address the
// connection actually goes to so a DNS answer that changes between lookup
// and dial cannot reach an internal service; redirects are not followed;
// time, size and content type are capped.
package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults for a Fetcher's limits.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultMaxBytes = 64 << 10
)

// Config sets a Fetcher's limits. Zero values take the defaults.
type Config struct {
	Timeout  time.Duration
	MaxBytes int64
	// AllowLoopback also accepts loopback addresses and http:// URLs on
	// them: for development and tests, never for production.
	AllowLoopback bool
	// TLS, when set, replaces the system's TLS settings (tests trust their
	// own certificate authority with it).
	TLS *tls.Config
}

// Fetcher fetches JSON documents. It is safe for concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
}

// Error is a fetch that failed for a reason the document's publisher can
// fix; Reason says what, in words fit for an error page.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Reason }
func (e *Error) Unwrap() error { return e.Err }

// ErrForbiddenAddress is wrapped by an Error for a host that resolves to
// an address that is not public unicast.
var ErrForbiddenAddress = errors.New("address not allowed")

// New returns a Fetcher with cfg's limits.
func New(cfg Config) *Fetcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	dialer := &net.Dialer{
		Timeout: cfg.Timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			if !allowed(ap.Addr(), cfg.AllowLoopback) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
			}
			return nil
		},
	}
	transport := &http.Transport{
		// No proxy: it would dial the proxy, not the address checked.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        cfg.TLS,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           10,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &Fetcher{cfg: cfg, client: &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// allowed reports whether addr may be dialled: global unicast and not in
// a private, shared or documentation range.
func allowed(addr netip.Addr, loopback bool) bool {
	addr = addr.Unmap()
	if addr.IsLoopback() {
		return loopback
	}
	if !addr.IsGlobalUnicast() || addr.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// nonPublic are ranges IsGlobalUnicast and IsPrivate let through that are
// not the public internet (RFC 6890 and the IANA special-purpose registries).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 reaches IPv4, private ranges too
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), // 6to4 embeds any IPv4 address
	netip.MustParsePrefix("3fff::/20"),
}

// CheckURL reports whether rawURL is one the Fetcher would try: https (or
// http on a loopback host when loopback is allowed), a host, no user
// information and no fragment.
func (f *Fetcher) CheckURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &Error{Reason: "the URL cannot be parsed", Err: err}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.cfg.AllowLoopback && isLoopbackHost(u.Hostname()):
	default:
		return nil, &Error{Reason: "the URL must use https"}
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return nil, &Error{Reason: "the URL has no host"}
	case u.User != nil:
		return nil, &Error{Reason: "the URL must not contain user information"}
	case u.Fragment != "" || strings.Contains(rawURL, "#"):
		return nil, &Error{Reason: "the URL must not contain a fragment"}
	}
	return u, nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Document is a fetched JSON document.
type Document struct {
	Body   []byte
	Header http.Header
}

// JSON fetches rawURL with GET and Accept: application/json and returns
// the body when the answer is 200 with a JSON content type within the size
// limit. Every failure is an *Error.
func (f *Fetcher) JSON(ctx context.Context, rawURL string) (Document, error) {
	u, err := f.CheckURL(rawURL)
	if err != nil {
		return Document{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Document{}, &Error{Reason: "the URL cannot be requested", Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, ErrForbiddenAddress):
			return Document{}, &Error{Reason: "the host resolves to an address that is not public", Err: err}
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			return Document{}, &Error{Reason: fmt.Sprintf("the server did not answer within %s", f.cfg.Timeout), Err: err}
		}
		return Document{}, &Error{Reason: "the document could not be fetched", Err: err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return Document{}, &Error{Reason: fmt.Sprintf("the server answered with a redirect (%d), which is not followed", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return Document{}, &Error{Reason: fmt.Sprintf("the server answered %d, not 200", resp.StatusCode)}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return Document{}, &Error{Reason: "the content type is not application/json"}
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return Document{}, &Error{Reason: fmt.Sprintf("the document is larger than %d KiB", f.cfg.MaxBytes>>10)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
			return Document{}, &Error{Reason: fmt.Sprintf("the server did not send the document within %s", f.cfg.Timeout), Err: err}
		}
		return Document{}, &Error{Reason: "the document could not be read", Err: err}
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		return Document{}, &Error{Reason: fmt.Sprintf("the document is larger than %d KiB", f.cfg.MaxBytes>>10)}
	}
	return Document{Body: body, Header: resp.Header}, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
