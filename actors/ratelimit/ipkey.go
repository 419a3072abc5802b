package ratelimit

import "net/netip"

// IPKey is the ip scope's id for addr (the client address the HTTP edge
// found, edge.ClientIP): an IPv4 address as is, an IPv6
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
