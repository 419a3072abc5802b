// Package tracing is how Parley's packages make OpenTelemetry spans and
// carry their context between nodes: in the W3C traceparent header of an
// HTTP request, and in the same header of a grain message's envelope.
//
// Spans go to the global tracer provider. Until Setup installs an
// exporting one it is OpenTelemetry's no-op provider: spans record
// nothing, Enabled is false, and callers skip the work of naming and
// injecting them, so tracing costs nothing when it is off.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentation names the spans' origin, as OpenTelemetry asks.
const instrumentation = "github.com/parley-chat/parley"

// TraceContext reads and writes the W3C traceparent and tracestate
// headers.
var TraceContext = propagation.TraceContext{}

var enabled atomic.Bool

// Enabled reports whether spans are exported: Setup or Use installed a
// provider.
func Enabled() bool { return enabled.Load() }

// Start starts a span named name, a child of ctx's span. When tracing is
// off it returns ctx and a span that records nothing, at no cost.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return otel.Tracer(instrumentation).Start(ctx, name, opts...)
}

// Use installs tp as the provider every span goes to (tests give an
// SDK provider with an in-memory exporter); nil turns tracing off again.
func Use(tp trace.TracerProvider) {
	if tp == nil {
		otel.SetTracerProvider(noop.NewTracerProvider())
		enabled.Store(false)
		return
	}
	otel.SetTracerProvider(tp)
	enabled.Store(true)
}

// Setup exports spans over OTLP/HTTP (protobuf) to endpoint, a URL such
// as http://127.0.0.1:4318 (the collector's traces path, /v1/traces, is
// added when the URL has no path). The standard OTEL_EXPORTER_OTLP_*
// variables (headers, timeout, certificates) and OTEL_TRACES_SAMPLER
// apply. service names the node in its spans' resource. The returned
// function flushes what is buffered and stops the exporter.
func Setup(ctx context.Context, endpoint, service, node string) (shutdown func(context.Context) error, err error) {
	u, err := endpointURL(endpoint)
	if err != nil {
		return nil, err
	}
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u))
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(service), semconv.ServiceInstanceID(node)))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("trace resource: %w", err), exporter.Shutdown(ctx))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	Use(tp)
	return tp.Shutdown, nil
}

// CheckEndpoint reports whether Setup would take endpoint.
func CheckEndpoint(endpoint string) error {
	_, err := endpointURL(endpoint)
	return err
}

func endpointURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL such as http://127.0.0.1:4318", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// Header is the carrier of a grain message envelope's headers, or of any
// string map: the traceparent of a span goes in it with Inject and comes
// out with Extract.
type Header map[string]string

// Inject returns ctx's span context as headers, or nil when ctx carries
// no span that records (tracing is off, or the span was not sampled).
func Inject(ctx context.Context) Header {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return nil
	}
	h := Header{}
	TraceContext.Inject(ctx, propagation.MapCarrier(h))
	return h
}

// Getter reads one header of a message; Proto.Actor's
// actor.ReadonlyMessageHeader is one.
type Getter interface {
	Get(key string) string
}

// Extract returns ctx with the remote span context that headers carry as
// its parent (ctx unchanged when they carry none). headers may be nil.
func Extract(ctx context.Context, headers Getter) context.Context {
	if headers == nil || !Enabled() {
		return ctx
	}
	return TraceContext.Extract(ctx, getter{headers})
}

// getter adapts a Getter to propagation.TextMapCarrier; extraction only
// reads.
type getter struct{ Getter }

func (getter) Set(string, string) {}
func (getter) Keys() []string     { return nil }

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// StartFrom starts the server span of a message whose headers carry the
// sender's span (a grain message's envelope): a child of that span, or a
// new trace's root when headers carry none.
func StartFrom(headers Getter, name string) (context.Context, trace.Span) {
	return Start(Extract(context.Background(), headers), name, trace.WithSpanKind(trace.SpanKindServer))
}
