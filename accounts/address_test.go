package accounts

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddress(t *testing.T) {
	h := &Handler{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}}
	for _, tc := range []struct {
		name, peer string
		forwarded  []string
		want       string
	}{
		{"direct client", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"untrusted peer's header is ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted balancer", "10.1.2.3:4444", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-written entries are skipped", "10.1.2.3:4444", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:4444", []string{"198.51.100.1, 192.0.2.7", "10.9.9.9"}, "198.51.100.1"},
		{"garbage stops the walk", "10.1.2.3:4444", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"trusted balancer without header", "10.1.2.3:4444", nil, "10.1.2.3"},
		{"IPv6 client", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:80", []string{"198.51.100.1"}, "198.51.100.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/login", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.forwarded {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := h.clientAddress(r); got != tc.want {
				t.Fatalf("clientAddress = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAddressKey(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an address", "not an address"},
	} {
		if got := addressKey(tc.addr); got != tc.want {
			t.Errorf("addressKey(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
