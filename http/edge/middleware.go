package edge

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/parley-chat/parley/actors/tenants"
)

// statusRecorder remembers the status a handler wrote, for the access log
// and metrics, and still lets the handler flush (SSE).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// withAccessLog logs one line per request and feeds the request metrics.
// Probes (/healthz, /readyz, /metrics) log at debug so they do not drown
// the log.
func (s *server) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		s.cfg.Metrics.observeRequest(route, r.Method, rec.status, elapsed)
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			nameSpan(span, r, route, rec.status)
		}
		level := slog.LevelInfo
		info, _ := r.Context().Value(tenantKey{}).(*authInfo)
		if strings.HasSuffix(route, "z") || route == "/metrics" || (info != nil && info.refused) {
			level = slog.LevelDebug
		}
		attrs := []any{"method", methodLabel(r.Method), "route", route, "status", rec.status, "ms", elapsed.Milliseconds(), "traceId", w.Header().Get(HeaderTraceID)}
		if t := tenantOf(r.Context()); t != nil {
			attrs = append(attrs, "tenant", t.ID)
		}
		s.cfg.Logger.Log(r.Context(), level, "request", attrs...)
	})
}

// withBodyLimit refuses bodies over MaxBodyBytes with 413: at once when
// Content-Length says so, else when the handler reads past the limit.
func (s *server) withBodyLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			refuseBeforeBody(w, r)
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is over "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

type tenantKey struct{}

type authInfo struct {
	tenant *tenants.Tenant
	keyID  string
	// refused: withAuth turned the request away (401, or 429 for an
	// address past its failure budget); logged at debug, so that a flood
	// of bad keys does not flood the log too.
	refused bool
}

// tenantOf returns the authenticated tenant (nil before withAuth).
func tenantOf(ctx context.Context) *tenants.Tenant {
	if a, ok := ctx.Value(tenantKey{}).(*authInfo); ok {
		return a.tenant
	}
	return nil
}

// keyIDOf returns the id of the API key the request presented.
func keyIDOf(ctx context.Context) string {
	if a, ok := ctx.Value(tenantKey{}).(*authInfo); ok {
		return a.keyID
	}
	return ""
}

// withAuth resolves the tenant from "Authorization: Bearer <key>"; a
// missing or unknown key is 401 and nothing further runs. A client IP
// past its failed-authentication budget (authFailures) is refused with 429
// before its key is looked at. Both answers come before the body is read,
// and close the connection rather than wait for a body nobody will read.
// The info is put into the request's context by pointer so the access
// log, outside this middleware, can name the tenant.
func (s *server) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := r.Context().Value(tenantKey{}).(*authInfo)
		ip := authKey(ClientIP(r.Context()))
		if wait, blocked := s.authFailures.blocked(ip); blocked {
			if info != nil {
				info.refused = true
			}
			refuseBeforeBody(w, r)
			secs := int64((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
			writeError(w, http.StatusTooManyRequests, CodeAuthRateLimited, "too many failed authentications from this address; retry after the Retry-After delay")
			return
		}
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		var tenant *tenants.Tenant
		var keyID string
		ok := strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(key) != ""
		if ok {
			tenant, keyID, ok = s.cfg.Tenants.Authenticate(strings.TrimSpace(key))
		}
		if !ok {
			s.authFailures.failed(ip)
			if info != nil {
				info.refused = true
			}
			refuseBeforeBody(w, r)
			if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
				writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing API key: send Authorization: Bearer <key>")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "unknown API key")
			return
		}
		if info != nil {
			info.tenant, info.keyID = tenant, keyID
		}
		next.ServeHTTP(w, r)
	})
}

// refuseBeforeBody makes a response written before the request's body was
// read close the connection: net/http otherwise reads the rest of the body
// before it sends the response, which a client declaring a body it never
// sends turns into a wait of BodyReadTimeout.
func refuseBeforeBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// withAuthSlot makes room in the context for withAuth's result before the
// access log runs, so the log line can name the tenant.
func withAuthSlot(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, &authInfo{})))
	})
}

// RateLimiter is the seam the rate-limit middleware calls for every
// authenticated request (docs/rate-limiting.md). Nil means no limits. Its
// errors are answered by the edge's error map (errors.go).
type RateLimiter interface {
	Check(r *http.Request, tenant *tenants.Tenant, keyID string) (RateDecision, error)
}

// RateDecision is a rate-limit verdict for one request: the most
// restrictive applicable limit, and the scope that refused, if any.
type RateDecision struct {
	Allowed    bool
	Scope      string
	Limit      int64
	Remaining  int64
	Reset      time.Time
	RetryAfter time.Duration
	// Unavailable names the scopes whose limiter did not answer in time;
	// the tenant's onLimiterUnavailable policy decided for them.
	Unavailable []string
}

// withRateLimit asks the RateLimiter, sets the X-RateLimit-* headers on
// every answer and refuses with 429 when a scope is over its limit.
func (s *server) withRateLimit(next http.Handler) http.Handler {
	if s.cfg.RateLimiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := s.cfg.RateLimiter.Check(r, tenantOf(r.Context()), keyIDOf(r.Context()))
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		if len(d.Unavailable) > 0 {
			s.cfg.Logger.Warn("rate limiter unavailable; tenant policy applied", "tenant", tenantOf(r.Context()).ID,
				"scopes", d.Unavailable, "allowed", d.Allowed, "traceId", w.Header().Get(HeaderTraceID))
		}
		if !WriteRateLimitAnswer(w, r, d) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// nameSpan gives the request's server span (withTraceID) its route and
// outcome, known only once the handler ran.
func nameSpan(span trace.Span, r *http.Request, route string, status int) {
	span.SetName(methodLabel(r.Method) + " " + route)
	span.SetAttributes(semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status))
	if t := tenantOf(r.Context()); t != nil {
		span.SetAttributes(attribute.String("parley.tenant", t.ID))
	}
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
