package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/http/edge"
)

// # The floor
//
// The floor is what the limiter rows are measured against: an HTTP server
// in the bench's own process, on 127.0.0.1, that answers the rate-limited
// request of those rows (GET /chat/{sessionId}/history) the way the edge
// does as far as the client can tell — a chi router, the edge's client
// address (edge.RealIP), the API key checked by the same tenants registry
// (tenants.Registry.Authenticate, the same hash), the same three scopes
// with the tenants file's limits, and the same headers and 429 body
// (edge.WriteRateLimitAnswer) — but deciding in memory with
// golang.org/x/time/rate instead of asking limiter grains, and answering
// an allowed request with an empty page instead of asking a session. What
// Parley spends beyond it, with the same load generator in the same run,
// is the cost of its limiter grains, of its access log and metrics, and
// (for allowed requests) of the session.

// floor is a running floor server.
type floor struct {
	reg      *tenants.Registry
	srv      *http.Server
	url      string
	limiters sync.Map // scope key → *rate.Limiter
	done     chan struct{}
}

// startFloor serves the floor on a free 127.0.0.1 port, authenticating
// with the tenants file at path.
func startFloor(path string) (*floor, error) {
	reg, err := tenants.Load(path)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &floor{reg: reg, url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	r := chi.NewRouter()
	r.Use(edge.RealIP(nil))
	r.Group(func(r chi.Router) {
		r.Use(f.withAuth, f.withRateLimit)
		r.Get("/chat/{sessionId}/history", f.history)
	})
	f.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(f.done)
		if err := f.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			progress("floor: %v", err)
		}
	}()
	return f, nil
}

// URL is the floor's base URL.
func (f *floor) URL() string { return f.url }

// Close stops the floor and waits for it.
func (f *floor) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.srv.Shutdown(ctx)
	<-f.done
}

type floorAuthKey struct{}

type floorAuth struct {
	tenant *tenants.Tenant
	keyID  string
}

// withAuth checks "Authorization: Bearer <key>" as the edge's withAuth
// does, through the same registry.
func (f *floor) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		t, keyID, ok := f.reg.Authenticate(strings.TrimSpace(key))
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(edge.ErrorBody{Error: edge.ErrorInfo{Code: edge.CodeUnauthorized, Message: "unknown API key"}})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), floorAuthKey{}, floorAuth{tenant: t, keyID: keyID})))
	})
}

// withRateLimit decides as the edge's scopes do (tenant with its burst,
// user, ip), each by a token bucket of its own, and answers with the
// edge's headers and 429.
func (f *floor) withRateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := r.Context().Value(floorAuthKey{}).(floorAuth)
		user := a.keyID
		if v := r.Header.Get("X-User-Id"); v != "" {
			user = v
		}
		rl := a.tenant.RateLimit
		scopes := []floorScope{
			{key: "tenant\x00" + a.tenant.ID, name: string(ratelimit.ScopeTenant), perMinute: rl.PerMinute},
			{key: "user\x00" + a.tenant.ID + "\x00" + user, name: string(ratelimit.ScopeUser), perMinute: rl.User.PerMinute},
			{key: "ip\x00" + a.tenant.ID + "\x00" + ratelimit.IPKey(edge.ClientIP(r.Context())), name: string(ratelimit.ScopeIP), perMinute: rl.IP.PerMinute},
		}
		if rl.Burst > 0 {
			scopes = append(scopes, floorScope{key: "burst\x00" + a.tenant.ID, name: string(ratelimit.ScopeTenant), perMinute: rl.PerMinute, perSecond: rl.Burst})
		}
		if edge.WriteRateLimitAnswer(w, r, f.decide(time.Now(), scopes)) {
			next.ServeHTTP(w, r)
		}
	})
}

// floorScope is one bucket a request is checked against: perMinute
// sustained (a bucket of perMinute refilled over a minute), or, when
// perSecond is set, a burst bucket of perSecond refilled every second.
type floorScope struct {
	key, name string
	perMinute int
	perSecond int
}

func (f *floor) limiter(s floorScope) *rate.Limiter {
	if l, ok := f.limiters.Load(s.key); ok {
		return l.(*rate.Limiter)
	}
	l := rate.NewLimiter(rate.Limit(float64(s.perMinute)/60), s.perMinute)
	if s.perSecond > 0 {
		l = rate.NewLimiter(rate.Limit(s.perSecond), s.perSecond)
	}
	actual, _ := f.limiters.LoadOrStore(s.key, l)
	return actual.(*rate.Limiter)
}

// decide takes one token from every scope's bucket. When one has none,
// the request is refused by the one with the longest wait and every
// token taken is given back, as the Limiter refunds; otherwise the scope
// with the fewest left is the one the headers show.
func (f *floor) decide(now time.Time, scopes []floorScope) edge.RateDecision {
	var (
		held    [4]*rate.Reservation
		refused = -1
		wait    time.Duration
	)
	for i, s := range scopes {
		held[i] = f.limiter(s).ReserveN(now, 1)
		if d := held[i].DelayFrom(now); d > 0 && d > wait {
			refused, wait = i, d
		}
	}
	minute := now.Truncate(time.Minute).Add(time.Minute)
	if refused >= 0 {
		for i := range scopes {
			held[i].CancelAt(now)
		}
		return edge.RateDecision{Scope: scopes[refused].name, Limit: int64(scopes[refused].perMinute),
			Reset: now.Add(wait).Truncate(time.Second).Add(time.Second), RetryAfter: wait}
	}
	d := edge.RateDecision{Allowed: true, Remaining: math.MaxInt64, Reset: minute}
	for _, s := range scopes {
		if s.perSecond > 0 {
			continue // the headers describe the minute window only
		}
		left := int64(max(math.Floor(f.limiter(s).TokensAt(now)), 0))
		if left < d.Remaining || left == d.Remaining && int64(s.perMinute) < d.Limit {
			d.Limit, d.Remaining = int64(s.perMinute), left
		}
	}
	return d
}

// history answers an allowed request with the page of an empty session.
func (f *floor) history(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"messages":[]}` + "\n"))
}
