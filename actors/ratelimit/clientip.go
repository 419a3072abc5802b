package ratelimit

import (
	"net/netip"
	"strings"
)

// ClientIP returns the address the ip scope counts a request under.
//
// remoteAddr is the socket peer (http.Request.RemoteAddr, "host:port" or a
// bare address); xff is every X-Forwarded-For header value of the request
// joined with "," in the order received; trusted lists the proxies
// (load balancers, ingress) whose X-Forwarded-For may be believed.
//
//   - A peer outside trusted is the client, whatever X-Forwarded-For says:
//     anyone can send the header, so believing it from an untrusted peer
//     would let a client pick its own key (and spend someone else's).
//   - Behind a trusted peer, X-Forwarded-For is read right to left (each
//     proxy appends the address it received from), skipping trusted hops;
//     the first untrusted hop is the client.
//   - A malformed entry (not an IP address, with or without a port; an
//     empty entry; "unknown") stops the walk, and the last address the walk
//     reached, a trusted proxy, is the client. A garbled header can thus
//     pin requests to a proxy's key, never let a client choose one.
//   - When every hop is trusted, the leftmost is the client.
//
// IPv4-mapped IPv6 addresses are returned as IPv4, zones dropped. The zero
// Addr is returned only when remoteAddr itself is not an address.
func ClientIP(remoteAddr, xff string, trusted []netip.Prefix) netip.Addr {
	client := parseHop(remoteAddr)
	if !client.IsValid() || !isTrusted(client, trusted) || strings.TrimSpace(xff) == "" {
		return client
	}
	for rest := xff; ; {
		i := strings.LastIndexByte(rest, ',')
		hop := parseHop(strings.TrimSpace(rest[i+1:]))
		if !hop.IsValid() {
			return client
		}
		client = hop
		if !isTrusted(hop, trusted) || i < 0 {
			return client
		}
		rest = rest[:i]
	}
}

// IPKey is the ip scope's id for addr: an IPv4 address as is, an IPv6
// address as its /64 ("2001:db8:1:2::/64"), since one IPv6 subscriber
// usually holds a whole /64 and could otherwise rotate through 2^64 keys.
// It is "" for the zero Addr.
func IPKey(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}

// parseHop reads "addr", "addr:port", "[v6]" or "[v6]:port".
func parseHop(s string) netip.Addr {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			addr = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if addr, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}
			}
		default:
			return netip.Addr{}
		}
	}
	return addr.Unmap().WithZone("")
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
