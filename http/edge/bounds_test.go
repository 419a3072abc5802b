package edge

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// rawServer serves h on 127.0.0.1 as the node does, with the edge's header
// allowance.
func rawServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.MaxHeaderBytes = ServerMaxHeaderBytes(Config{})
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// rawExchange writes request to addr as is and reads one response; the
// connection's deadline only keeps a broken server from hanging the test.
func rawExchange(t *testing.T, addr, request string) (*http.Response, ErrorBody) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	defer resp.Body.Close()
	var body ErrorBody
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%d: body %q is not an error body: %v", resp.StatusCode, raw, err)
	}
	if body.TraceID == "" || body.TraceID != resp.Header.Get(HeaderTraceID) {
		t.Fatalf("traceId %q in body, %q in header", body.TraceID, resp.Header.Get(HeaderTraceID))
	}
	return resp, body
}

func TestABodyThatDoesNotArriveGets408(t *testing.T) {
	addr := rawServer(t, newTestEdgeWith(t, fakeHealth{}, func(c *Config) { c.BodyReadTimeout = 200 * time.Millisecond }))
	resp, body := rawExchange(t, addr, "POST /chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"sessionI")
	if resp.StatusCode != http.StatusRequestTimeout || body.Error.Code != CodeRequestTimeout {
		t.Fatalf("%d %+v", resp.StatusCode, body.Error)
	}
}

func TestAnUnauthenticatedPostIsRefusedBeforeItsBodyArrives(t *testing.T) {
	// The body deadline is an hour: a 401 that waited for the body would
	// never come within the exchange's deadline.
	addr := rawServer(t, newTestEdgeWith(t, fakeHealth{}, func(c *Config) { c.BodyReadTimeout = time.Hour }))
	resp, body := rawExchange(t, addr, "POST /chat HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"sessionI")
	if resp.StatusCode != http.StatusUnauthorized || body.Error.Code != CodeUnauthorized {
		t.Fatalf("%d %+v", resp.StatusCode, body.Error)
	}
	if !resp.Close {
		t.Fatal("the connection is kept open for a body nobody reads")
	}
}

func TestOversizedHeadersGetAJSON431(t *testing.T) {
	addr := rawServer(t, newTestEdge(t, fakeHealth{}))
	resp, body := rawExchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 20<<10)+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || body.Error.Code != CodeHeadersTooLarge {
		t.Fatalf("%d %+v", resp.StatusCode, body.Error)
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 15<<10)+"\r\n\r\n")
	ok, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || ok.StatusCode != http.StatusOK {
		t.Fatalf("15 KiB of headers: %v %v", ok, err)
	}
}

// TestTheBodyDeadlineEndsWithTheBody holds net/http to what
// withBodyDeadline relies on: the deadline is lifted once the body is read,
// so a stream that outlives it is not cancelled.
func TestTheBodyDeadlineEndsWithTheBody(t *testing.T) {
	s := &server{cfg: Config{BodyReadTimeout: 50 * time.Millisecond}}
	h := s.withBodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// A stream outlives the body deadline by far; net/http's watch on
		// the connection must not cancel it.
		select {
		case <-r.Context().Done():
			http.Error(w, "request cancelled after its body was read", http.StatusInternalServerError)
		case <-time.After(300 * time.Millisecond):
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("%d %s", resp.StatusCode, msg)
	}
}

func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	h := newTestEdgeWith(t, fakeHealth{}, func(c *Config) { c.AuthFailuresPerMinute = 5 })
	from := func(ip, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodDelete, "/chat/5f0c6e3a-8d7b-4b1e-9a53-2f3b1c9d7e10", nil)
		req.RemoteAddr = ip + ":4242"
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 5 {
		if rec := from("192.0.2.1", "wrong"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, rec.Code)
		}
	}
	for _, key := range []string{"wrong", "", "k"} {
		rec := from("192.0.2.1", key)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("key %q past the budget: %d, Retry-After %q", key, rec.Code, rec.Header().Get("Retry-After"))
		}
		if body := decodeError(t, rec); body.Error.Code != CodeAuthRateLimited {
			t.Fatalf("body %+v", body)
		}
	}
	if rec := from("192.0.2.2", "wrong"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("another address: %d", rec.Code)
	}
	if rec := from("192.0.2.3", "k"); rec.Code == http.StatusUnauthorized || rec.Code == http.StatusTooManyRequests {
		t.Fatalf("a good key from a fresh address: %d", rec.Code)
	}
}

func TestAuthFailureWindowsEndAndMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := newAuthFailures(2, 3, func() time.Time { return now })
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	a.failed(ip("192.0.2.1"))
	a.failed(ip("192.0.2.1"))
	if wait, blocked := a.blocked(ip("192.0.2.1")); !blocked || wait != time.Minute {
		t.Fatalf("after 2 failures: blocked %v, wait %s", blocked, wait)
	}
	now = now.Add(time.Minute)
	if _, blocked := a.blocked(ip("192.0.2.1")); blocked {
		t.Fatal("still blocked in the next window")
	}
	for i := range 10 {
		a.failed(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	if len(a.counts) != 3 {
		t.Fatalf("%d addresses tracked, at most 3 allowed", len(a.counts))
	}
	if got := authKey(ip("2001:db8::1")); got != authKey(ip("2001:db8::ffff")) {
		t.Fatalf("one /64 counts as two addresses: %s", got)
	}
}
