package edge

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
)

// Config is what the edge needs from the node it runs on. Zero durations
// and sizes take the defaults in DefaultConfig.
type Config struct {
	// NodeName names this node in health responses.
	NodeName string
	// Health answers /readyz.
	Health Health
	// Tenants resolves API keys. Required.
	Tenants *tenants.Registry
	// Sessions reaches the ChatSession grains. Required.
	Sessions *session.Client
	// Cache serves /cache/{key} and the chat path's model config; without
	// it /cache is 404 and chats read the tenants file directly.
	Cache *cache.Client
	// Disk is the free-disk watermark POST /chat and PUT /cache are
	// checked against (507 below it); none when nil.
	Disk DiskSpace
	// Draining, when it returns true, makes POST /chat (and the compatible
	// chat routes, /v1/chat/completions and /v1/ui/chat) answer 503 with
	// Retry-After: the node is shutting down and starts no new reply
	// (docs/operations.md). Never draining when nil.
	Draining func() bool
	// RateLimiter checks every /chat request; none when nil.
	RateLimiter RateLimiter
	// TrustedProxies are the proxies whose X-Forwarded-For is believed for
	// the client address (RealIP). None by default: the socket peer is the
	// client.
	TrustedProxies []netip.Prefix
	// Metrics are served at /metrics; NewMetrics() when nil.
	Metrics *Metrics
	// MaxBodyBytes bounds request bodies (413 above). Default 64 KiB.
	MaxBodyBytes int64
	// BodyReadTimeout is how long a request body may take to arrive
	// after its headers (408 past it). Default 10 s.
	BodyReadTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers (431 above).
	// Default 16 KiB. The http.Server must allow more
	// (ServerMaxHeaderBytes) for the edge to see the request at all.
	MaxHeaderBytes int
	// AuthFailuresPerMinute is how many failed authentications a client
	// IP may make in a minute before every request from it that needs a
	// key is refused with 429 until the minute ends. Default 20.
	AuthFailuresPerMinute int
	// Heartbeat is the interval of SSE ": ping" comments. Default 15 s.
	Heartbeat time.Duration
	// StallTimeout ends a reply the session stopped sending for this
	// long (its node died). Default 30 s.
	StallTimeout time.Duration
	// StreamBuffer bounds the events waiting for a slow client; past it
	// the stream ends with an error. Default 256.
	StreamBuffer int
	// SlowReaderGrace is how long a full stream buffer waits for its
	// client before the stream is abandoned: long enough for a client that
	// reads to take a burst (a replayed reply arrives all at once), short
	// enough that one that stopped reading is let go. Default 1 s.
	SlowReaderGrace time.Duration
	// Models returns a tenant's model, which the compatible routes
	// (/v1/…) call directly for a one-shot completion, one that names no
	// session; the same model the tenant's sessions use. model.Mock{} for
	// every tenant when nil.
	Models func(tenant string) model.Model
	// OneShotTimeout bounds one one-shot completion. Default 2 minutes.
	OneShotTimeout time.Duration
	// Logger receives the edge's logs.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:          64 << 10,
		BodyReadTimeout:       10 * time.Second,
		MaxHeaderBytes:        16 << 10,
		AuthFailuresPerMinute: 20,
		Heartbeat:             15 * time.Second,
		StallTimeout:          30 * time.Second,
		StreamBuffer:          256,
		SlowReaderGrace:       time.Second,
		OneShotTimeout:        2 * time.Minute,
	}
}

// maxAuthFailureIPs bounds the addresses the failed-authentication limit
// tracks per minute (a few MiB at most).
const maxAuthFailureIPs = 100_000

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = d.BodyReadTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.AuthFailuresPerMinute == 0 {
		c.AuthFailuresPerMinute = d.AuthFailuresPerMinute
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
	if c.SlowReaderGrace == 0 {
		c.SlowReaderGrace = d.SlowReaderGrace
	}
	if c.OneShotTimeout == 0 {
		c.OneShotTimeout = d.OneShotTimeout
	}
	if c.Models == nil {
		c.Models = func(string) model.Model { return model.Mock{} }
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
	case c.Sessions == nil:
		return errors.New("edge config: Sessions is nil")
	case c.Logger == nil:
		return errors.New("edge config: Logger is nil")
	}
	return nil
}

type server struct {
	cfg          Config
	authFailures *authFailures
}

// New returns the edge's HTTP handler.
func New(cfg Config) (http.Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, authFailures: newAuthFailures(cfg.AuthFailuresPerMinute, maxAuthFailureIPs, time.Now)}
	r := chi.NewRouter()
	// The order is the contract's: recover, trace id, client address,
	// access log, header and body-time limits, CORS preflight (it carries
	// no key), body limit, tenant auth, CORS, rate limits, handler.
	r.Use(withRecover(cfg.Logger), withTraceID, RealIP(cfg.TrustedProxies), withAuthSlot, s.withAccessLog, s.withHeaderLimit, s.withBodyDeadline, withPreflight(cfg.Tenants))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	})
	r.Get("/", s.playground)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", cfg.Metrics.handler())
	r.Group(func(r chi.Router) {
		r.Use(s.withBodyLimit, s.withAuth, withCORS(), s.withRateLimit)
		r.With(s.withFreeDisk).Post("/chat", s.chat)
		r.Post("/chat/{sessionId}/stop", s.stopReply)
		r.Get("/chat/{sessionId}/stream", s.chatResume)
		r.Get("/chat/{sessionId}/history", s.history)
		r.Delete("/chat/{sessionId}", s.deleteSession)
		r.With(s.withFreeDisk).Post("/v1/ui/chat", s.uiChat)
		r.Get("/v1/ui/chat/{id}/stream", s.uiChatResume)
		if cfg.Cache != nil {
			r.Get("/cache/*", s.cacheGet)
			r.With(s.withFreeDisk).Put("/cache/*", s.cachePut)
			r.Delete("/cache/*", s.cacheDelete)
		}
	})
	// The compatible routes (docs/streaming.md): the same chain, with
	// errors in OpenAI's shape on /v1/chat/completions and /v1/models.
	r.Group(func(r chi.Router) {
		r.Use(withDialect(openAIErrors), s.withBodyLimit, s.withAuth, withCORS(), s.withRateLimit)
		r.With(s.withFreeDiskForSessions).Post("/v1/chat/completions", s.chatCompletions)
		r.Get("/v1/models", s.openAIModels)
		r.Get("/v1/models/{model}", s.openAIModel)
	})
	return r, nil
}
