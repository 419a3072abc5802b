// Package tenants is the tenants file: who may call Parley (API keys, kept
// only as SHA-256 hashes), each tenant's limits — rate limits, session
// retention, model — and the browser origins it allows (cors). It is loaded
// and validated at start, where a bad file stops the node with an error
// naming the field, and again on SIGHUP, where a bad file keeps the running
// config (Registry.Replace).
package tenants

import (
	"slices"
	"time"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/persistence"
)

// File is the tenants file's shape (docs/tenants.md).
type File struct {
	Tenants []Tenant `json:"tenants" validate:"required,min=1,dive"`
}

// Tenant is one tenant's keys and limits. Zero limits take the defaults
// below.
type Tenant struct {
	ID        string    `json:"id" validate:"required,tenantid"`
	APIKeys   []APIKey  `json:"apiKeys" validate:"required,min=1,dive"`
	RateLimit RateLimit `json:"rateLimit"`
	Sessions  Sessions  `json:"sessions"`
	Quotas    Quotas    `json:"quotas"`
	Model     Model     `json:"model"`
	CORS      CORS      `json:"cors"`
}

// CORS is which browser origins may call Parley with this tenant's keys
// (docs/http.md, "CORS"). Each origin is exactly what a browser sends in
// Origin: scheme, host in lowercase and a port only when it is not the
// scheme's default, such as https://app.example.com or
// http://127.0.0.1:5173; no path and no wildcard.
type CORS struct {
	AllowedOrigins []string `json:"allowedOrigins" validate:"max=100,dive,origin"`
}

// AllowsOrigin reports whether a browser page from origin may read this
// tenant's responses.
func (t *Tenant) AllowsOrigin(origin string) bool {
	return origin != "" && slices.Contains(t.CORS.AllowedOrigins, origin)
}

// APIKey is one key of a tenant: an id (the rate-limit "user" when a
// request has no X-User-Id) and the key's hash, "sha256:" + 64 hex digits
// (`parley hash-key` prints it).
type APIKey struct {
	ID   string `json:"id" validate:"required,max=64,printascii"`
	Hash string `json:"hash" validate:"required,keyhash"`
}

// RateLimit is a tenant's limits per minute (sliding window) and burst.
type RateLimit struct {
	PerMinute            int        `json:"perMinute" validate:"gte=0,lte=1000000000"`
	Burst                int        `json:"burst" validate:"gte=0,lte=1000000000"`
	User                 ScopeLimit `json:"user"`
	IP                   ScopeLimit `json:"ip"`
	OnLimiterUnavailable string     `json:"onLimiterUnavailable" validate:"omitempty,oneof=open closed"`
	// TokensPerMinute bounds the tenant's model tokens (prompt and
	// completion, as the provider counts them) in any sliding minute; 0,
	// the default, is no limit.
	TokensPerMinute int `json:"tokensPerMinute" validate:"gte=0,lte=1000000000"`
}

// ScopeLimit is a per-user or per-IP limit.
type ScopeLimit struct {
	PerMinute int `json:"perMinute" validate:"gte=0,lte=1000000000"`
}

// Sessions is a tenant's chat-session retention.
type Sessions struct {
	MaxMessages   int `json:"maxMessages" validate:"gte=0,lte=1000000"`
	RetentionDays int `json:"retentionDays" validate:"gte=0,lte=36500"`
}

// Quotas bound what a tenant stores, on every node alike (the store
// accounts them): the bytes of its messages and cache entries, its
// sessions that hold messages, and its cache entries.
type Quotas struct {
	MaxStoredBytes  int64 `json:"maxStoredBytes" validate:"gte=0,lte=1099511627776"`
	MaxSessions     int64 `json:"maxSessions" validate:"gte=0,lte=1000000000"`
	MaxCacheEntries int64 `json:"maxCacheEntries" validate:"gte=0,lte=1000000000"`
}

// Defaults for every limit a tenant leaves at zero.
const (
	DefaultPerMinute      = 600
	DefaultBurst          = 60
	DefaultUserPerMinute  = 120
	DefaultIPPerMinute    = 300
	DefaultUnavailable    = "open"
	DefaultMaxMessages    = 1000
	DefaultRetentionDays  = 30
	DefaultModel          = model.ProviderMock
	DefaultPromptTemplate = "You are a helpful assistant."
	// The quota defaults leave room for a busy tenant (a hundred thousand
	// sessions of a few KiB each fit in 1 GiB) while bounding what one
	// tenant can make every replica keep.
	DefaultMaxStoredBytes  = 1 << 30
	DefaultMaxSessions     = 100_000
	DefaultMaxCacheEntries = 10_000
)

// withDefaults fills zero limits.
func (t Tenant) withDefaults() Tenant {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&t.RateLimit.PerMinute, DefaultPerMinute)
	set(&t.RateLimit.Burst, DefaultBurst)
	set(&t.RateLimit.User.PerMinute, DefaultUserPerMinute)
	set(&t.RateLimit.IP.PerMinute, DefaultIPPerMinute)
	set(&t.Sessions.MaxMessages, DefaultMaxMessages)
	set(&t.Sessions.RetentionDays, DefaultRetentionDays)
	set64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	set64(&t.Quotas.MaxStoredBytes, DefaultMaxStoredBytes)
	set64(&t.Quotas.MaxSessions, DefaultMaxSessions)
	set64(&t.Quotas.MaxCacheEntries, DefaultMaxCacheEntries)
	if t.RateLimit.OnLimiterUnavailable == "" {
		t.RateLimit.OnLimiterUnavailable = DefaultUnavailable
	}
	if t.Model.Provider == "" {
		t.Model.Provider = DefaultModel
	}
	if t.Model.PromptTemplate == "" {
		t.Model.PromptTemplate = DefaultPromptTemplate
	}
	return t
}

// Retention is the tenant's session retention for the ChatSession grain.
func (t *Tenant) Retention() session.Retention {
	return session.Retention{
		MaxMessages: t.Sessions.MaxMessages,
		MaxAge:      time.Duration(t.Sessions.RetentionDays) * 24 * time.Hour,
		Quota:       t.Quota(),
	}
}

// Quota is the tenant's storage quota, as every write carries it to the
// store.
func (t *Tenant) Quota() persistence.Quota {
	return persistence.Quota{
		MaxStoredBytes:  t.Quotas.MaxStoredBytes,
		MaxSessions:     t.Quotas.MaxSessions,
		MaxCacheEntries: t.Quotas.MaxCacheEntries,
	}
}
