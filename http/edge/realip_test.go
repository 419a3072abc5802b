package edge_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/parley-chat/parley/http/edge"
)

// clientIPOf runs a request from remoteAddr with the X-Forwarded-For
// headers xff through RealIP and returns the address it found.
func clientIPOf(trusted []netip.Prefix, remoteAddr string, xff ...string) netip.Addr {
	var got netip.Addr
	h := edge.RealIP(trusted)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = edge.ClientIP(r.Context())
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remoteAddr
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	return got
}

func TestRealIP(t *testing.T) {
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
			var xff []string
			if tc.xff != "" {
				xff = []string{tc.xff}
			}
			if got := clientIPOf(trusted, tc.remoteAddr, xff...).String(); got != tc.want {
				t.Fatalf("peer %q, X-Forwarded-For %q: %s, want %s", tc.remoteAddr, tc.xff, got, tc.want)
			}
		})
	}
	if got := clientIPOf(nil, "10.1.2.3:8080", "198.51.100.1"); got.String() != "10.1.2.3" {
		t.Errorf("nothing trusted: %s", got)
	}
	// Two X-Forwarded-For headers are one list, in the order received: the
	// last proxy's entry is in the second.
	if got := clientIPOf(trusted, "10.1.2.3:8080", "1.1.1.1", strings.Join([]string{"198.51.100.1", "10.9.9.9"}, ", ")); got.String() != "198.51.100.1" {
		t.Errorf("two headers: %s, want 198.51.100.1", got)
	}
}
