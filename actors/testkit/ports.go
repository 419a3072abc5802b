package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
)

// handedOut are the ports FreeAddr returned in this process: never twice.
var (
	portsMu    sync.Mutex
	handedOut  = map[int]bool{}
	firstEphem = ephemeralStart()
)

// FreeAddr returns a 127.0.0.1 address whose port was free for both TCP
// and UDP when asked (memberlist needs both), for a node or process a test
// must know the address of before it starts. Prefer port 0 wherever the
// address can be read back after binding.
//
// The port is below the kernel's ephemeral range, so no outgoing
// connection (of this or a parallel test) can take it before the node
// binds it, and it is never returned twice in one process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	const lowest = 10000
	for range 1000 {
		port := lowest + rand.IntN(firstEphem-lowest)
		if handedOut[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = l.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		_ = pc.Close()
		handedOut[port] = true
		return addr
	}
	t.Fatal("testkit: no port free for both TCP and UDP")
	return ""
}

// ephemeralStart is the first port the kernel hands to outgoing
// connections (Linux's ip_local_port_range; 32768 elsewhere).
func ephemeralStart() int {
	var low, high int
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if _, err := fmt.Sscan(string(b), &low, &high); err == nil && low > 20000 {
			return low
		}
	}
	return 32768
}
