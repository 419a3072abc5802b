package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/parley-chat/parley/internal/tracing"
)

// HeaderTraceID carries the request's trace id on every response.
const HeaderTraceID = "X-Trace-Id"

type traceIDKey struct{}

// requestIDPattern bounds what an X-Request-Id may be before it is echoed
// into headers and logs.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// traceContext reads and writes W3C traceparent headers.
var traceContext = tracing.TraceContext

// withTraceID gives every request a trace id: the trace id of a valid W3C
// traceparent, else a well-formed X-Request-Id, else a new one. It is set
// on the response before anything else can write it. When tracing is on
// the request gets its server span here (a child of the traceparent's;
// withAccessLog names it once the route is known), the response carries
// that span's traceparent, and a new trace id is the span's own.
func withTraceID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		incoming := trace.SpanContextFromContext(ctx).TraceID()
		var span trace.Span
		if tracing.Enabled() {
			ctx, span = tracing.Start(ctx, "HTTP "+methodLabel(r.Method), trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(semconv.HTTPRequestMethodKey.String(methodLabel(r.Method)), semconv.URLPath(r.URL.Path)))
			defer span.End()
			traceContext.Inject(ctx, propagation.HeaderCarrier(w.Header()))
		}
		var id string
		switch reqID := r.Header.Get("X-Request-Id"); {
		case incoming.IsValid():
			id = incoming.String()
		case requestIDPattern.MatchString(reqID):
			id = reqID
			if span != nil {
				span.SetAttributes(attribute.String("parley.request_id", reqID))
			}
		case span != nil:
			id = span.SpanContext().TraceID().String()
		default:
			id = newTraceID()
		}
		w.Header().Set(HeaderTraceID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, traceIDKey{}, id)))
	})
}

// newTraceID returns 16 random bytes in hex: the shape of a W3C trace id,
// so it can seed a traceparent downstream.
func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TraceID returns the request's trace id ("" outside the edge's handlers).
func TraceID(ctx context.Context) string {
	id, _ := ctx.Value(traceIDKey{}).(string)
	return id
}
