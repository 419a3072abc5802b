package session_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/internal/tracing"
)

// A chat sent from one node to a session on another continues the
// caller's trace: the envelope's traceparent crosses the remote, and the
// session's spans (its store calls and the model's among them) are
// children of the call. Not parallel: it installs the global tracer
// provider.
func TestAChatsTraceCrossesToTheSessionsNode(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	t.Cleanup(func() { tracing.Use(nil) })
	store := testkit.OpenStore(t, "")
	c := testkit.NewCluster(t, 2, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
		kind, err := session.NewKind(session.Config{Store: store, Model: model.Mock{}, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind)
	}))
	c.WaitConverged(0)
	sid := sessionOwnedBy(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx, root := tracing.Start(ctx, "test request")
	reply, err := session.NewClient(c.Node(0), c.Node(0).System()).Chat(ctx, "acme", sid, session.ChatRequest{Content: "far away"})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range reply.Events() {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if ev.Done != nil {
			break
		}
	}
	reply.Close()
	root.End()

	traceID := root.SpanContext().TraceID()
	spans := map[string]tracetest.SpanStub{}
	deadline := time.Now().Add(10 * time.Second)
	for spans["session store reply"].Name == "" {
		if time.Now().After(deadline) {
			t.Fatalf("spans of the trace: %v", spans)
		}
		time.Sleep(10 * time.Millisecond)
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == traceID {
				spans[s.Name] = s
			}
		}
	}
	call, chat := spans["ChatSession Chat"], spans["session Chat"]
	if call.Parent.SpanID() != root.SpanContext().SpanID() {
		t.Errorf("the grain call's parent %s, want the request's %s", call.Parent.SpanID(), root.SpanContext().SpanID())
	}
	if chat.Parent.SpanID() != call.SpanContext.SpanID() || !chat.Parent.IsRemote() {
		t.Errorf("session span's parent %s (remote %v), want the call %s across the remote", chat.Parent.SpanID(), chat.Parent.IsRemote(), call.SpanContext.SpanID())
	}
	if m := spans["model stream"]; m.Parent.SpanID() != chat.SpanContext.SpanID() {
		t.Errorf("model span's parent %s, want the session's %s", m.Parent.SpanID(), chat.SpanContext.SpanID())
	}
}
