package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/internal/tracing"
)

// Tests here install a global tracer provider: none of them runs in
// parallel with another test.

// streamChat sends one streamed chat with headers and reads its events
// to the end; it returns the response headers and the last event's name.
func streamChat(t *testing.T, addr, session string, headers http.Header) (http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+addr+"/chat", strings.NewReader(`{"sessionId": "`+session+`", "message": "hello there", "stream": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if headers != nil {
		req.Header = headers.Clone()
	}
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat: %d %s", resp.StatusCode, body)
	}
	last := ""
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			last = name
		}
	}
	return resp.Header, last
}

// waitReady polls /readyz until the node can write (a replicated store
// elects its leader first).
func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForSpan polls the exporter until a span named name has ended, and
// returns every span ended so far.
func waitForSpan(t *testing.T, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans := exp.GetSpans()
		for _, s := range spans {
			if s.Name == name {
				return spans
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q span among %d: %v", name, len(spans), spanNames(spans))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	return names
}

func TestOneChatIsOneTraceFromTheEdgeThroughTheSessionToTheStoreAndTheModel(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	t.Cleanup(func() { tracing.Use(nil) })
	// The replicated store, as a node runs by default.
	cfg := startNode(t, "--store", "replicated", "--raft-addr", freePort(t), "--tenants", keyTenants(t, ""))
	waitReady(t, cfg.HTTPAddr)

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	headers, last := streamChat(t, cfg.HTTPAddr, "0193a5c0-7d2e-7a1b-9c3d-4e5f6a7b8c9d", http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}})
	if last != "done" {
		t.Fatalf("stream ended with %q, want done", last)
	}
	if got := headers.Get("X-Trace-Id"); got != traceID {
		t.Errorf("X-Trace-Id %q, want the traceparent's %s", got, traceID)
	}
	if got := headers.Get("Traceparent"); !strings.HasPrefix(got, "00-"+traceID+"-") || strings.Contains(got, parentID) {
		t.Errorf("response traceparent %q: want the edge span's, in trace %s", got, traceID)
	}

	spans := waitForSpan(t, exp, "session store reply")
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		if got := s.SpanContext.TraceID().String(); got != traceID {
			continue // another request's (the readiness probe's)
		}
		byName[s.Name] = append(byName[s.Name], s)
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("%d spans named %q in the trace, want 1; the trace: %v", len(byName[name]), name, spanNames(spans))
		}
		return byName[name][0]
	}
	childOf := func(child, parent tracetest.SpanStub) {
		t.Helper()
		if child.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Errorf("span %q: parent %s, want %q (%s)", child.Name, child.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
		}
	}
	edgeSpan := one("POST /chat")
	if edgeSpan.Parent.SpanID().String() != parentID || edgeSpan.SpanKind != trace.SpanKindServer {
		t.Errorf("edge span: parent %s kind %s, want the traceparent's %s, server", edgeSpan.Parent.SpanID(), edgeSpan.SpanKind, parentID)
	}
	call := one("ChatSession Chat")
	childOf(call, edgeSpan)
	sessionSpan := one("session Chat")
	childOf(sessionSpan, call)
	modelSpan := one("model stream")
	childOf(modelSpan, sessionSpan)
	storeReply := one("session store reply")
	childOf(storeReply, sessionSpan)
	appends := byName["store Append"]
	if len(appends) != 2 {
		t.Fatalf("%d store Append spans, want 2 (the message, the reply): %v", len(appends), spanNames(spans))
	}
	parents := map[trace.SpanID]bool{appends[0].Parent.SpanID(): true, appends[1].Parent.SpanID(): true}
	if !parents[sessionSpan.SpanContext.SpanID()] || !parents[storeReply.SpanContext.SpanID()] {
		t.Errorf("store Append parents %v: want the chat's session span and the reply's", parents)
	}
	tokens := -1
	for _, a := range modelSpan.Attributes {
		if a.Key == "gen_ai.usage.output_tokens" {
			tokens = int(a.Value.AsInt64())
		}
	}
	if tokens <= 0 {
		t.Errorf("model span's output tokens %d: %v", tokens, modelSpan.Attributes)
	}
	for _, s := range byName["RateLimiter Check"] {
		childOf(s, edgeSpan)
	}
}

func TestARequestWithoutTraceparentStartsATraceWhoseIdIsItsXTraceId(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	t.Cleanup(func() { tracing.Use(nil) })
	cfg := startNode(t, "--tenants", keyTenants(t, ""))
	waitReady(t, cfg.HTTPAddr)

	req, _ := http.NewRequest("GET", "http://"+cfg.HTTPAddr+"/chat/0193a5c0-7d2e-7a1b-9c3d-4e5f6a7b8c9f/history", nil)
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Trace-Id")
	for _, s := range waitForSpan(t, exp, "GET /chat/{sessionId}/history") {
		if s.Name == "GET /chat/{sessionId}/history" {
			if s.SpanContext.TraceID().String() != id || s.Parent.IsValid() {
				t.Errorf("history span: trace %s parent %v; want a root in trace %s (X-Trace-Id)", s.SpanContext.TraceID(), s.Parent.IsValid(), id)
			}
			return
		}
	}
}

// TestOTLPEndpointReceivesTheNodesSpans runs a node with --otlp-endpoint
// pointing at a fake collector and checks that a chat's trace reaches it
// by the time the node has stopped.
func TestOTLPEndpointReceivesTheNodesSpans(t *testing.T) {
	t.Cleanup(func() { tracing.Use(nil) })
	var mu sync.Mutex
	received := map[string][]string{} // trace id → span names
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var export collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &export); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range export.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					id := trace.TraceID(s.TraceId).String()
					received[id] = append(received[id], s.Name)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	defer collector.Close()

	cfg, stop := startStoppableNode(t, "--tenants", keyTenants(t, ""), "--otlp-endpoint", collector.URL)
	waitReady(t, cfg.HTTPAddr)
	headers, last := streamChat(t, cfg.HTTPAddr, "0193a5c0-7d2e-7a1b-9c3d-4e5f6a7b8c9e", nil)
	if last != "done" {
		t.Fatalf("stream ended with %q", last)
	}
	stop() // flushes the batch
	id := headers.Get("X-Trace-Id")
	mu.Lock()
	defer mu.Unlock()
	names := strings.Join(received[id], ",")
	for _, want := range []string{"POST /chat", "session Chat", "store Append", "model stream"} {
		if !strings.Contains(names, want) {
			t.Errorf("collector got %q for trace %s, missing %q", names, id, want)
		}
	}
}

func TestOTLPEndpointMustBeAnHTTPURL(t *testing.T) {
	for _, endpoint := range []string{"127.0.0.1:4318", "grpc://collector:4317", "http://"} {
		if _, err := parseServeFlags([]string{"--otlp-endpoint", endpoint}, io.Discard); err == nil || !strings.Contains(err.Error(), "otlp-endpoint") {
			t.Errorf("--otlp-endpoint %q: %v, want an error naming the flag", endpoint, err)
		}
	}
}
