package edge

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
)

type clientIPKey struct{}

// RealIP is chi's middleware.RealIP with a trust rule: it works out the
// client address of every request and puts it in the request's context,
// where ClientIP reads it (the ip rate-limit scope counts under it).
// Unlike chi's, it leaves r.RemoteAddr alone, so logs still show the
// socket peer, and it believes X-Forwarded-For only from trusted proxies:
//
//   - A peer outside trusted is the client, whatever X-Forwarded-For says:
//     anyone can send the header, so believing it from an untrusted peer
//     would let a client pick its own key (and spend someone else's).
//   - Behind a trusted peer, X-Forwarded-For (every value of the header,
//     in the order received) is read right to left (each proxy appends the
//     address it received from), skipping trusted hops; the first
//     untrusted hop is the client.
//   - A malformed entry (not an IP address, with or without a port; an
//     empty entry; "unknown") stops the walk, and the last address the walk
//     reached, a trusted proxy, is the client. A garbled header can thus
//     pin requests to a proxy's key, never let a client choose one.
//   - When every hop is trusted, the leftmost is the client.
//
// IPv4-mapped IPv6 addresses become IPv4, zones are dropped. New installs
// it ahead of the rate limits, with Config.TrustedProxies.
func RealIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := clientIP(r.RemoteAddr, strings.Join(r.Header.Values("X-Forwarded-For"), ","), trusted)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
		})
	}
}

// ClientIP is the client address RealIP found for the request of ctx; the
// zero Addr without RealIP, or when the socket peer is not an address.
func ClientIP(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(clientIPKey{}).(netip.Addr)
	return ip
}

// clientIP applies RealIP's rule to the socket peer remoteAddr
// ("host:port" or a bare address) and xff, the X-Forwarded-For values
// joined with ",".
func clientIP(remoteAddr, xff string, trusted []netip.Prefix) netip.Addr {
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
