package edge

import (
	"net/http"

	"github.com/rs/cors"

	"github.com/parley-chat/parley/actors/tenants"
)

// CORS (docs/http.md, "CORS") is rs/cors rather than hand-written header
// rules: the preflight's Vary, the echo of requested methods and headers
// and the edge cases of the Fetch standard are easy to get subtly wrong,
// and that library is small, widely used and kept up to date.
//
// Two policies, because the answer depends on what is known when:
//   - a preflight carries no key, so it is answered, before auth, for any
//     origin some tenant lists;
//   - the real request is answered after auth, for the origins of the
//     tenant its key belongs to only.
//
// Both read the registry per request, so a reloaded tenants file applies
// at once.

// corsAllowedHeaders are the request headers the API reads.
var corsAllowedHeaders = []string{"Authorization", "Content-Type", "Idempotency-Key", "X-User-Id", "Last-Event-ID", "X-Session-Id", "Traceparent", "X-Request-Id"}

// corsExposedHeaders are the response headers scripts may read.
var corsExposedHeaders = []string{HeaderTraceID, "Traceparent", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"}

var corsMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}

// corsMaxAge is how long a browser may keep a preflight's answer.
const corsMaxAge = 600

// withPreflight answers CORS preflights (OPTIONS with
// Access-Control-Request-Method) and passes every other request on.
func withPreflight(reg *tenants.Registry) func(http.Handler) http.Handler {
	c := cors.New(cors.Options{
		AllowOriginVaryRequestFunc: func(_ *http.Request, origin string) (bool, []string) {
			return reg.AnyAllowsOrigin(origin), nil
		},
		AllowedMethods: corsMethods,
		AllowedHeaders: corsAllowedHeaders,
		MaxAge:         corsMaxAge,
	})
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				c.HandlerFunc(w, r) // writes 204, with CORS headers only when allowed
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// withCORS lets a browser page read the response when its Origin is one
// of the authenticated tenant's. It runs after withAuth.
func withCORS() func(http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowOriginVaryRequestFunc: func(r *http.Request, origin string) (bool, []string) {
			t := tenantOf(r.Context())
			// The answer depends on the key as well as the Origin.
			return t != nil && t.AllowsOrigin(origin), []string{"Authorization"}
		},
		AllowedMethods: corsMethods,
		AllowedHeaders: corsAllowedHeaders,
		ExposedHeaders: corsExposedHeaders,
	}).Handler
}
