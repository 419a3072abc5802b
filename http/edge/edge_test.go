package edge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
)

type fakeHealth struct{ err error }

func (f fakeHealth) Ready() error { return f.err }
func (f fakeHealth) Members() any { return []string{"node-a", "node-b"} }

// noGrains fails every grain call and counts them, for tests that must
// show a request never reached a grain.
type noGrains struct{ calls atomic.Int32 }

func (g *noGrains) HostLost(string) <-chan struct{} { return nil }

func (g *noGrains) Request(context.Context, string, string, any) (any, error) {
	g.calls.Add(1)
	return nil, errors.New("no grains in this test")
}

func newTestEdge(t *testing.T, h Health) http.Handler {
	t.Helper()
	return newTestEdgeWith(t, h, nil)
}

// newTestEdgeWith is newTestEdge with its Config changed by tweak first.
func newTestEdgeWith(t *testing.T, h Health, tweak func(*Config)) http.Handler {
	t.Helper()
	reg, err := tenants.Parse(strings.NewReader(`{"tenants": [{"id": "acme", "apiKeys": [{"id": "web", "hash": "` + tenants.HashKey("k") + `"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodeName: "node-a", Health: h, Tenants: reg, Sessions: session.NewClient(&noGrains{}, testkit.NewActorSystem(t)), Logger: testkit.NewLogger(t)}
	if tweak != nil {
		tweak(&cfg)
	}
	handler, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return handler
}

func do(h http.Handler, method, path string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) ErrorBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var body ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	if body.TraceID == "" || body.TraceID != rec.Header().Get(HeaderTraceID) {
		t.Fatalf("traceId %q in body, %q in header", body.TraceID, rec.Header().Get(HeaderTraceID))
	}
	return body
}

func TestReadyzReportsMembersOrTheReason(t *testing.T) {
	rec := do(newTestEdge(t, fakeHealth{}), "GET", "/readyz", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("ready node: %d %s", rec.Code, rec.Body)
	}
	var ok struct {
		Status  string   `json:"status"`
		Node    string   `json:"node"`
		Members []string `json:"members"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ok); err != nil || ok.Status != "ready" || ok.Node != "node-a" || len(ok.Members) != 2 {
		t.Fatalf("body %s (%v)", rec.Body, err)
	}

	rec = do(newTestEdge(t, fakeHealth{errors.New("waiting for seeds 10.0.0.1:7946")}), "GET", "/readyz", nil)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("not ready: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	body := decodeError(t, rec)
	if body.Error.Code != CodeNotReady || body.Error.Message != "waiting for seeds 10.0.0.1:7946" {
		t.Fatalf("error %+v", body.Error)
	}
}

func TestHealthzAnswersEvenWhenNotReady(t *testing.T) {
	rec := do(newTestEdge(t, fakeHealth{errors.New("not joined")}), "GET", "/healthz", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("healthz %d", rec.Code)
	}
}

func TestTraceIDIsHonouredOrGenerated(t *testing.T) {
	h := newTestEdge(t, fakeHealth{})
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	cases := []struct {
		name   string
		header http.Header
		want   string // "" means: a new 32-hex id
	}{
		{"none", nil, ""},
		{"traceparent", http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"malformed traceparent falls back to X-Request-Id", http.Header{"Traceparent": {"00-zz-00-01"}, "X-Request-Id": {"req-42"}}, "req-42"},
		{"X-Request-Id", http.Header{"X-Request-Id": {"abc.DEF_1-2"}}, "abc.DEF_1-2"},
		{"hostile X-Request-Id is replaced", http.Header{"X-Request-Id": {"a\"b<script>"}}, ""},
		{"overlong X-Request-Id is replaced", http.Header{"X-Request-Id": {string(make([]byte, 129))}}, ""},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := do(h, "GET", "/healthz", tc.header).Header().Get(HeaderTraceID)
			switch {
			case tc.want == "" && !hex32.MatchString(got):
				t.Fatalf("generated trace id %q is not 32 hex digits", got)
			case tc.want != "" && got != tc.want:
				t.Fatalf("trace id %q, want %q", got, tc.want)
			}
			if tc.want == "" && seen[got] {
				t.Fatalf("trace id %q generated twice", got)
			}
			seen[got] = true
		})
	}
}

func TestUnknownRouteAndMethodAreJSONErrors(t *testing.T) {
	h := newTestEdge(t, fakeHealth{})
	rec := do(h, "GET", "/nope", nil)
	if rec.Code != http.StatusNotFound || decodeError(t, rec).Error.Code != CodeNotFound {
		t.Fatalf("404: %d %s", rec.Code, rec.Body)
	}
	rec = do(h, "POST", "/readyz", nil)
	if rec.Code != http.StatusMethodNotAllowed || decodeError(t, rec).Error.Code != CodeMethodNotAllowed {
		t.Fatalf("405: %d %s", rec.Code, rec.Body)
	}
}

type panicHealth struct{}

func (panicHealth) Ready() error { panic("boom") }
func (panicHealth) Members() any { return nil }

func TestPanicBecomes500WithTraceID(t *testing.T) {
	rec := do(newTestEdge(t, panicHealth{}), "GET", "/readyz", http.Header{"X-Request-Id": {"trace-me"}})
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	if body := decodeError(t, rec); body.Error.Code != CodeInternal || body.TraceID != "trace-me" {
		t.Fatalf("body %+v", body)
	}
}
