package ratelimit_test

import (
	"net/netip"
	"testing"

	"github.com/parley-chat/parley/actors/ratelimit"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),    // the load balancers
		netip.MustParsePrefix("fd00::/8"),      // the ingress, over IPv6
		netip.MustParsePrefix("192.0.2.10/32"), // a CDN edge
	}
	for _, tc := range []struct {
		name       string
		remoteAddr string
		xff        string
		want       string
	}{
		{"direct client", "203.0.113.7:51234", "", "203.0.113.7"},
		{"direct IPv6 client", "[2001:db8::1]:443", "", "2001:db8::1"},
		{"bare address", "203.0.113.7", "", "203.0.113.7"},
		{"spoofed header from an untrusted peer", "203.0.113.7:51234", "198.51.100.1", "203.0.113.7"},
		{"spoofed chain from an untrusted peer", "203.0.113.7:51234", "10.0.0.1, 198.51.100.1", "203.0.113.7"},
		{"behind one trusted proxy", "10.1.2.3:8080", "198.51.100.1", "198.51.100.1"},
		{"client prepends a lie; the proxy appends the truth", "10.1.2.3:8080", "1.1.1.1, 198.51.100.1", "198.51.100.1"},
		{"two trusted hops skipped", "10.1.2.3:8080", "198.51.100.1, 192.0.2.10, 10.9.9.9", "198.51.100.1"},
		{"IPv6 trusted hop", "[fd00::5]:8080", "2001:db8:aa::1", "2001:db8:aa::1"},
		{"entries with ports", "10.1.2.3:8080", "[2001:db8::2]:1234, 198.51.100.1:9999", "198.51.100.1"},
		{"bracketed IPv6 entry", "10.1.2.3:8080", "[2001:db8::2]", "2001:db8::2"},
		{"IPv4-mapped peer and entry", "[::ffff:10.1.2.3]:8080", "::ffff:198.51.100.1", "198.51.100.1"},
		{"trusted peer without header", "10.1.2.3:8080", "", "10.1.2.3"},
		{"every hop trusted: the leftmost", "10.1.2.3:8080", "10.0.0.9, 192.0.2.10", "10.0.0.9"},
		{"malformed entry stops at the proxy", "10.1.2.3:8080", "198.51.100.1, garbage", "10.1.2.3"},
		{"unknown stops the walk", "10.1.2.3:8080", "unknown", "10.1.2.3"},
		{"malformed entry behind a trusted hop", "10.1.2.3:8080", "198.51.100.1, nonsense, 192.0.2.10", "192.0.2.10"},
		{"empty entry stops the walk", "10.1.2.3:8080", "198.51.100.1,,10.0.0.9", "10.0.0.9"},
		{"trailing comma", "10.1.2.3:8080", "198.51.100.1,", "10.1.2.3"},
		{"zone dropped", "[fe80::1%eth0]:80", "", "fe80::1"},
		{"peer not an address", "not-an-address", "198.51.100.1", "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ratelimit.ClientIP(tc.remoteAddr, tc.xff, trusted).String(); got != tc.want {
				t.Fatalf("ClientIP(%q, %q) = %s, want %s", tc.remoteAddr, tc.xff, got, tc.want)
			}
		})
	}
	if got := ratelimit.ClientIP("10.1.2.3:8080", "198.51.100.1", nil); got.String() != "10.1.2.3" {
		t.Errorf("nothing trusted: %s", got)
	}
}

func TestIPKey(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	} {
		if got := ratelimit.IPKey(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("IPKey(%s) = %q, want %q", tc.addr, got, tc.want)
		}
		if _, err := ratelimit.Identity("acme", ratelimit.ScopeIP, ratelimit.IPKey(netip.MustParseAddr(tc.addr))); err != nil {
			t.Errorf("%s: %v", tc.addr, err)
		}
	}
	if got := ratelimit.IPKey(netip.Addr{}); got != "" {
		t.Errorf("IPKey(zero) = %q", got)
	}
}
