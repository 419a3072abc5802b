package edge

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/tenants"
)

// cacheEntry is the body of GET /cache/{key}.
type cacheEntry struct {
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value,omitempty"`
	ExpiresAt string          `json:"expiresAt"`
}

// cacheKey is everything after /cache/, decoded: keys may hold '/' and ':'.
func cacheKey(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, "/cache/") }

func (s *server) cacheGet(w http.ResponseWriter, r *http.Request) {
	key := cacheKey(r)
	value, expiresAt, ok, err := s.cfg.Cache.Get(r.Context(), tenantOf(r.Context()).ID, key)
	switch {
	case err != nil:
		s.writeErr(w, r, err)
	case !ok:
		writeError(w, http.StatusNotFound, CodeNotFound, "no cache entry for this key")
	default:
		writeJSON(w, http.StatusOK, cacheEntry{Key: key, Value: value, ExpiresAt: expiresAt.UTC().Format(time.RFC3339)})
	}
}

// cachePut stores the request body, a JSON value, for ?ttl= seconds
// (default 3600).
func (s *server) cachePut(w http.ResponseWriter, r *http.Request) {
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, CodeUnsupportedType, "Content-Type must be application/json")
		return
	}
	var ttl time.Duration
	if v := r.URL.Query().Get("ttl"); v != "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs < 1 || secs > int64(cache.MaxTTL/time.Second) {
			writeError(w, http.StatusBadRequest, CodeValidation, "request has invalid query parameters",
				ErrorDetail{Field: "ttl", Message: "must be whole seconds from 1 to 2592000 (30 days); omit it for 3600"})
			return
		}
		ttl = time.Duration(secs) * time.Second
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		jsonError(err).write(w)
		return
	}
	if !json.Valid(body) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the body must be one JSON value")
		return
	}
	key := cacheKey(r)
	expiresAt, err := s.cfg.Cache.Put(r.Context(), tenantOf(r.Context()).ID, key, body, ttl)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cacheEntry{Key: key, ExpiresAt: expiresAt.UTC().Format(time.RFC3339)})
}

func (s *server) cacheDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Cache.Delete(r.Context(), tenantOf(r.Context()).ID, cacheKey(r)); err != nil {
		s.writeErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// modelConfigKey is the cache key under which the chat path keeps each
// tenant's model config. A tenant may override it with PUT /cache/parley/model.
const modelConfigKey = "parley/model"

// modelConfigTimeout bounds the cache reads and writes of modelConfig.
const modelConfigTimeout = 500 * time.Millisecond

// modelConfig reads the tenant's prompt template through the cache and
// fills the cache from the tenants file on a miss (or when the cached value
// is not a model config). Only the template is taken from the cache: where
// a tenant's requests go (provider, baseURL, keys) is the tenants file's
// alone, never something a tenant can PUT. Without a cache, or when it is
// unavailable, the tenants file answers: a chat never fails for want of its
// config.
func (s *server) modelConfig(ctx context.Context, t *tenants.Tenant) tenants.Model {
	if s.cfg.Cache == nil {
		return t.Model
	}
	// The config is a convenience, not worth a chat's latency budget:
	// when the cache is slow (its store lost its quorum) the tenants file
	// answers after at most this long.
	ctx, cancel := context.WithTimeout(ctx, modelConfigTimeout)
	defer cancel()
	value, _, ok, err := s.cfg.Cache.Get(ctx, t.ID, modelConfigKey)
	if err != nil {
		s.cfg.Logger.Warn("model config from cache", "tenant", t.ID, "err", err)
		return t.Model
	}
	var cached cachedModel
	if ok && json.Unmarshal(value, &cached) == nil && cached.PromptTemplate != "" {
		m := t.Model
		m.PromptTemplate = cached.PromptTemplate
		return m
	}
	if body, err := json.Marshal(cachedModel{Name: t.Model.Name, PromptTemplate: t.Model.PromptTemplate}); err == nil {
		if _, err := s.cfg.Cache.Put(ctx, t.ID, modelConfigKey, body, 0); err != nil {
			s.cfg.Logger.Warn("filling the model config cache", "tenant", t.ID, "err", err)
		}
	}
	return t.Model
}

// cachedModel is the cache's copy of a tenant's model config: what a chat
// may take from it.
type cachedModel struct {
	Name           string `json:"name,omitempty"`
	PromptTemplate string `json:"promptTemplate"`
}
