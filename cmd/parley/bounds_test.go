package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestMaxConnectionsHoldsTheConnectionsPastIt: with --max-connections 1 a
// second connection is not served while the first is open (it waits in
// the backlog), and is served as soon as the first closes.
func TestMaxConnectionsHoldsTheConnectionsPastIt(t *testing.T) {
	cfg := startNode(t, "--max-connections", "1")
	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.Dial("tcp", cfg.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c, bufio.NewReader(c)
	}
	const healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	first, firstReader := dial()
	_ = first.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(first, healthz)
	resp, err := http.ReadResponse(firstReader, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first connection: %v %v", resp, err)
	}
	_ = resp.Body.Close()

	// The first connection stays open (keep-alive), holding the one slot.
	second, secondReader := dial()
	_, _ = io.WriteString(second, healthz)
	_ = second.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if resp, err := http.ReadResponse(secondReader, nil); err == nil {
		t.Fatalf("a second connection was served past --max-connections 1: %d", resp.StatusCode)
	}
	_ = first.Close()
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err = http.ReadResponse(secondReader, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("second connection once the first closed: %v %v", resp, err)
	}
	_ = resp.Body.Close()
}
