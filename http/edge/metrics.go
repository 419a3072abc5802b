package edge

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/session"
)

// Metrics are the node's Prometheus metrics, served at GET /metrics
// (docs/http.md lists them). Safe for concurrent use.
type Metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	ttft         prometheus.Histogram
	streams      prometheus.Gauge
	activations  *prometheus.CounterVec
	rateDecision *prometheus.CounterVec
	cacheGets    *prometheus.CounterVec

	rateUnavailable *prometheus.CounterVec
	reloadErrors    prometheus.Counter

	modelTokens    *prometheus.CounterVec
	upstreamTTFT   *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
}

var _ model.Observer = (*Metrics)(nil)

// NewMetrics creates the metrics on their own registry, with the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "parley_http_request_duration_seconds", Help: "HTTP request latency (a stream's whole duration for SSE).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"route", "method"}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_chat_time_to_first_token_seconds", Help: "Time from a POST /chat arriving to its first token.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_sse_streams_open", Help: "SSE streams open on this node.",
		}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_grain_activations_total", Help: "Grain activations on this node by kind.",
		}, []string{"kind"}),
		rateDecision: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_ratelimit_decisions_total", Help: "Rate-limit answers by scope and decision.",
		}, []string{"scope", "decision"}),
		rateUnavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_ratelimit_unavailable_total", Help: "Rate-limit checks a scope's limiter did not answer in time.",
		}, []string{"scope"}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_config_reload_errors_total", Help: "Reloads of the tenants file (SIGHUP) that failed and kept the running config.",
		}),
		cacheGets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_cache_gets_total", Help: "Cache reads by result (hit or miss).",
		}, []string{"result"}),
		// Tenants and model names come from the tenants file, never from
		// a request or an upstream, so these label sets are bounded.
		modelTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_model_tokens_total", Help: "Tokens of finished replies, as the provider counted them, by tenant, model and kind (prompt or completion).",
		}, []string{"tenant", "model", "kind"}),
		upstreamTTFT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "parley_upstream_time_to_first_token_seconds", Help: "Time from an upstream model call being sent to its first content delta, by model.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"model"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_upstream_errors_total", Help: "Failed upstream model calls by model and code (rate_limited, server_error, timeout…).",
		}, []string{"model", "code"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.ttft, m.streams, m.activations, m.rateDecision, m.rateUnavailable, m.cacheGets, m.reloadErrors,
		m.modelTokens, m.upstreamTTFT, m.upstreamErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ConfigReloadFailed counts one reload of the tenants file that failed.
func (m *Metrics) ConfigReloadFailed() { m.reloadErrors.Inc() }

// GrainActivated counts one activation of a grain kind.
func (m *Metrics) GrainActivated(kind string) { m.activations.WithLabelValues(kind).Inc() }

// WatchGrains exports parley_grains_active{kind}: how many activations of
// each kind the node hosts, read from active at every scrape. kinds is the
// node's fixed set of grain kinds, so the label set is bounded.
func (m *Metrics) WatchGrains(kinds []string, active func(kind string) int) {
	for _, kind := range kinds {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_grains_active", Help: "Grain activations this node hosts now, by kind.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(active(kind)) }))
	}
}

// CacheGet implements cache.Observer: it counts hits and misses.
func (m *Metrics) CacheGet(hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	m.cacheGets.WithLabelValues(result).Inc()
}

// observeRequest counts one request. route must already be bounded (a
// chi pattern or "unmatched"); the method is bounded here, so that no
// client, authenticated or not, can add series.
func (m *Metrics) observeRequest(route, method string, status int, d time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// methodLabel is method when it is one of the methods of RFC 9110 and
// RFC 5789, else "OTHER": the method is whatever token a client sends.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// Decision implements ratelimit.Observer: one scope's answer.
func (m *Metrics) Decision(scope ratelimit.Scope, allowed bool) {
	decision := "allowed"
	if !allowed {
		decision = "refused"
	}
	m.rateDecision.WithLabelValues(string(scope), decision).Inc()
}

// Unavailable implements ratelimit.Observer: a limiter that did not answer
// in time; the tenant's onLimiterUnavailable decided.
func (m *Metrics) Unavailable(scope ratelimit.Scope) {
	m.rateUnavailable.WithLabelValues(string(scope)).Inc()
}

// UpstreamFirstToken implements model.Observer.
func (m *Metrics) UpstreamFirstToken(name string, d time.Duration) {
	m.upstreamTTFT.WithLabelValues(name).Observe(d.Seconds())
}

// UpstreamError implements model.Observer.
func (m *Metrics) UpstreamError(name, code string) {
	m.upstreamErrors.WithLabelValues(name, code).Inc()
}

// replyTokens counts a finished reply's tokens.
func (m *Metrics) replyTokens(tenant, name string, prompt, completion int) {
	if name == "" {
		return // a replayed reply, or one that never reached a model: nothing was spent
	}
	m.modelTokens.WithLabelValues(tenant, name, "prompt").Add(float64(prompt))
	m.modelTokens.WithLabelValues(tenant, name, "completion").Add(float64(completion))
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// failedReplyTokens counts the tokens of a reply whose model failed: what
// the provider spent before it failed is spent all the same.
func (m *Metrics) failedReplyTokens(tenant string, err error) {
	var upstream *session.UpstreamError
	if errors.As(err, &upstream) {
		m.replyTokens(tenant, upstream.Model, upstream.PromptTokens, upstream.CompletionTokens)
	}
}
