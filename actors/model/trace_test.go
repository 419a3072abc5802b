package model_test

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/model/openaitest"
	"github.com/parley-chat/parley/internal/tracing"
)

// With tracing on, the upstream request carries the caller's span as its
// traceparent, so a provider that traces continues the reply's trace; with
// it off, none. Not parallel: it installs the global tracer provider.
func TestTheUpstreamRequestCarriesTheTrace(t *testing.T) {
	up := openaitest.New(t, openaitest.Step{}, openaitest.Step{})
	m, err := model.NewOpenAI(entry(up, "m"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Stream(context.Background(), model.Request{Message: "untraced"}, func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	tracing.Use(sdktrace.NewTracerProvider())
	t.Cleanup(func() { tracing.Use(nil) })
	ctx, span := tracing.Start(context.Background(), "reply")
	defer span.End()
	if _, err := m.Stream(ctx, model.Request{Message: "traced"}, func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	reqs := up.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	if reqs[0].Traceparent != "" {
		t.Errorf("untraced request sent traceparent %q", reqs[0].Traceparent)
	}
	sc := span.SpanContext()
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-"; !strings.HasPrefix(reqs[1].Traceparent, want) {
		t.Errorf("traceparent %q, want %s…", reqs[1].Traceparent, want)
	}
}
