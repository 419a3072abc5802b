package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderTraceID carries the request's trace id on every response.
const HeaderTraceID = "X-Trace-Id"

type traceIDKey struct{}

// requestIDPattern bounds what an X-Request-Id may be before it is echoed
// into headers and logs.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// traceContext parses W3C traceparent headers.
var traceContext = propagation.TraceContext{}

// withTraceID gives every request a trace id: the trace id of a valid W3C
// traceparent, else a well-formed X-Request-Id, else a new random one. It
// is set on the response before anything else can write it.
func withTraceID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := incomingTraceID(r)
		w.Header().Set(HeaderTraceID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), traceIDKey{}, id)))
	})
}

func incomingTraceID(r *http.Request) string {
	sc := trace.SpanContextFromContext(traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header)))
	if sc.TraceID().IsValid() {
		return sc.TraceID().String()
	}
	if id := r.Header.Get("X-Request-Id"); requestIDPattern.MatchString(id) {
		return id
	}
	return newTraceID()
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
