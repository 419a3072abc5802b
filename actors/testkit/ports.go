package testkit

import (
	"net"
	"testing"
)

// FreeAddr returns a 127.0.0.1 address whose port was free for both TCP
// and UDP when asked (memberlist needs both), for a node or process a test
// must know the address of before it starts. Prefer port 0 wherever the
// address can be read back after binding.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		if pc, err := net.ListenPacket("udp", addr); err == nil {
			_ = pc.Close()
			return addr
		}
	}
	t.Fatal("testkit: no port free for both TCP and UDP")
	return ""
}
