package edge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/tenants"
)

// Grains is how the edge reaches grains: *cluster.Node.
type Grains interface {
	Request(ctx context.Context, identity, kind string, msg any) (any, error)
	// HostLost is closed when the node at an actor-remote address is
	// declared failed (nil: never).
	HostLost(address string) <-chan struct{}
}

// Config is what the edge needs from the node it runs on. Zero durations
// and sizes take the defaults in DefaultConfig.
type Config struct {
	// NodeName names this node in health responses.
	NodeName string
	// Health answers /readyz.
	Health Health
	// Tenants resolves API keys. Required.
	Tenants *tenants.Registry
	// Grains reaches session grains. Required.
	Grains Grains
	// System is this node's actor system, where reply streams live.
	System *actor.ActorSystem
	// Cache serves /cache/{key} and the chat path's model config; without
	// it /cache is 404 and chats read the tenants file directly.
	Cache *cache.Client
	// RateLimiter checks every /chat request; none when nil.
	RateLimiter RateLimiter
	// Metrics are served at /metrics; NewMetrics() when nil.
	Metrics *Metrics
	// MaxBodyBytes bounds request bodies (413 above). Default 64 KiB.
	MaxBodyBytes int64
	// Heartbeat is the interval of SSE ": ping" comments. Default 15 s.
	Heartbeat time.Duration
	// StallTimeout ends a reply the session stopped sending for this
	// long (its node died). Default 30 s.
	StallTimeout time.Duration
	// StreamBuffer bounds the events waiting for a slow client; past it
	// the stream ends with an error. Default 256.
	StreamBuffer int
	// Logger receives the edge's logs.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 64 << 10, Heartbeat: 15 * time.Second, StallTimeout: 30 * time.Second, StreamBuffer: 256}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = d.StallTimeout
	}
	if c.StreamBuffer == 0 {
		c.StreamBuffer = d.StreamBuffer
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	return c
}

// Validate names the first missing field.
func (c Config) Validate() error {
	switch {
	case c.Health == nil:
		return errors.New("edge config: Health is nil")
	case c.Tenants == nil:
		return errors.New("edge config: Tenants is nil")
	case c.Grains == nil:
		return errors.New("edge config: Grains is nil")
	case c.System == nil:
		return errors.New("edge config: System is nil")
	case c.Logger == nil:
		return errors.New("edge config: Logger is nil")
	}
	return nil
}

type server struct {
	cfg Config
}

// New returns the edge's HTTP handler.
func New(cfg Config) (http.Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg}
	r := chi.NewRouter()
	// The order is the contract's: recover, trace id, access log, body
	// limit, tenant auth, rate limits, handler.
	r.Use(withRecover(cfg.Logger), withTraceID, withAuthSlot, s.withAccessLog)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	})
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", cfg.Metrics.handler())
	r.Group(func(r chi.Router) {
		r.Use(s.withBodyLimit, s.withAuth, s.withRateLimit)
		r.Post("/chat", s.chat)
		r.Post("/chat/{sessionId}/stop", s.stopReply)
		r.Get("/chat/{sessionId}/history", s.history)
		r.Delete("/chat/{sessionId}", s.deleteSession)
		if cfg.Cache != nil {
			r.Get("/cache/*", s.cacheGet)
			r.Put("/cache/*", s.cachePut)
			r.Delete("/cache/*", s.cacheDelete)
		}
	})
	return r, nil
}
