package testkit

import (
	"testing"

	"github.com/parley-chat/parley/internal/ports"
)

// FreeAddr returns a 127.0.0.1 address whose port was free for both TCP
// and UDP when asked (memberlist needs both), for a node or process a test
// must know the address of before it starts. Prefer port 0 wherever the
// address can be read back after binding.
//
// The port comes from internal/ports: from a block of ports this process
// holds a claim on, below the kernel's ephemeral range, so no parallel
// test binary and no outgoing connection can be given it, and it is never
// returned twice.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := ports.Free()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return addr
}
