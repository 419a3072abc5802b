package edge

import (
	"net/netip"
	"sync"
	"time"
)

// authFailures counts failed authentications per client IP in fixed
// one-minute windows, in this process only: a flood of bad keys is cheap
// to refuse and never reaches a grain or the store. An IP with limit
// failures in the current window is refused (429) until the window ends,
// whatever key it sends, so a key cannot be guessed faster than limit
// tries a minute per address.
//
// Memory is bounded: at most maxIPs addresses are tracked per window and
// the table is dropped when the window ends; failures from addresses past
// maxIPs are not limited (each still costs one hash and a 401). Safe for
// concurrent use.
type authFailures struct {
	limit  int
	maxIPs int
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	start  time.Time // of the current window
	counts map[netip.Addr]int
}

func newAuthFailures(limit, maxIPs int, now func() time.Time) *authFailures {
	return &authFailures{limit: limit, maxIPs: maxIPs, window: time.Minute, now: now, counts: map[netip.Addr]int{}}
}

// authKey is the address failures are counted under: an IPv4 address
// itself, an IPv6 address's /64 (one host usually holds a whole /64).
func authKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr
}

// roll starts a new window when the current one has ended. mu is held.
func (a *authFailures) roll(now time.Time) {
	if now.Sub(a.start) >= a.window || now.Before(a.start) {
		a.start = now.Truncate(a.window)
		clear(a.counts)
	}
}

// blocked reports whether ip is refused, and how long until its window
// ends.
func (a *authFailures) blocked(ip netip.Addr) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.roll(now)
	if a.counts[ip] < a.limit {
		return 0, false
	}
	return a.start.Add(a.window).Sub(now), true
}

// failed counts one failed authentication from ip.
func (a *authFailures) failed(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(a.now())
	if _, ok := a.counts[ip]; ok || len(a.counts) < a.maxIPs {
		a.counts[ip]++
	}
}
