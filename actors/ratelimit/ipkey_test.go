package ratelimit_test

import (
	"net/netip"
	"testing"

	"github.com/parley-chat/parley/actors/ratelimit"
)

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
