package edge_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
)

// newQuotaAPI serves acme with quotas of one session and one cache entry,
// read by the grains from the tenants registry as a node does.
func newQuotaAPI(t *testing.T) *api {
	t.Helper()
	reg, err := tenants.Parse(strings.NewReader(`{"tenants": [
		{"id": "acme", "apiKeys": [{"id": "web", "hash": "` + tenants.HashKey(acmeKey) + `"}],
		 "quotas": {"maxSessions": 1, "maxCacheEntries": 1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	store := testkit.OpenStore(t, "")
	c := testkit.NewCluster(t, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
		kind, err := session.NewKind(session.Config{Store: store, Retention: reg.Retention, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cacheKind, err := cache.NewKind(cache.Config{Store: store, Quota: reg.Quota, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind, cacheKind)
	}))
	node := c.Node(0)
	metrics := edge.NewMetrics()
	metrics.WatchUsage(reg.IDs, reg.Quota, store)
	h, err := edge.New(edge.Config{NodeName: "n", Health: readyHealth{}, Tenants: reg, Sessions: session.NewClient(node, node.System()),
		Cache: cache.NewClient(node), Metrics: metrics, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL}
}

// wantQuotaExceeded fails unless resp is the 507 naming quota.
func wantQuotaExceeded(t *testing.T, what string, resp *http.Response, quota string) {
	t.Helper()
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("%s: %d, want 507", what, resp.StatusCode)
	}
	body := errorBody(t, resp)
	if body.Error.Code != edge.CodeQuotaExceeded || len(body.Error.Details) != 1 || body.Error.Details[0].Field != "quotas."+quota {
		t.Fatalf("%s: %+v, want quota_exceeded naming quotas.%s", what, body.Error, quota)
	}
}

func TestWritesOverAQuotaAre507AndDeletesGiveRoomBack(t *testing.T) {
	t.Parallel()
	a := newQuotaAPI(t)
	if resp := a.cachePut("a", acmeKey, `1`, ""); resp.StatusCode != 200 {
		t.Fatalf("first cache entry: %d", resp.StatusCode)
	}
	wantQuotaExceeded(t, "second cache entry", a.cachePut("b", acmeKey, `2`, ""), "maxCacheEntries")
	if resp := a.do("GET", "/cache/b", acmeKey, "", nil); resp.StatusCode != 404 {
		t.Fatalf("the refused entry reads %d, want 404", resp.StatusCode)
	}
	if resp := a.do("DELETE", "/cache/a", acmeKey, "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp := a.cachePut("b", acmeKey, `2`, ""); resp.StatusCode != 200 {
		t.Fatalf("cache entry after a delete: %d", resp.StatusCode)
	}

	chat := func(session string) *http.Response {
		return a.do("POST", "/chat", acmeKey, "application/json",
			strings.NewReader(`{"sessionId": "`+session+`", "message": "hello", "stream": false}`))
	}
	const first, second = "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10", "0c9b8a7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
	if resp := chat(first); resp.StatusCode != 200 {
		t.Fatalf("chat in the first session: %d", resp.StatusCode)
	}
	wantQuotaExceeded(t, "chat in a second session", chat(second), "maxSessions")
	if resp := chat(first); resp.StatusCode != 200 {
		t.Fatalf("chat in the first session again: %d", resp.StatusCode)
	}
	if resp := a.do("DELETE", "/chat/"+first, acmeKey, "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete session: %d", resp.StatusCode)
	}
	if resp := chat(second); resp.StatusCode != 200 {
		t.Fatalf("chat in a second session after deleting the first: %d", resp.StatusCode)
	}

	resp := a.do("GET", "/metrics", "", "", nil)
	b, _ := io.ReadAll(resp.Body)
	for _, line := range []string{
		`parley_tenant_usage{quota="maxCacheEntries",tenant="acme"} 1`,
		`parley_tenant_usage{quota="maxSessions",tenant="acme"} 1`,
		`parley_tenant_quota{quota="maxSessions",tenant="acme"} 1`,
		`parley_tenant_quota{quota="maxStoredBytes",tenant="acme"} 1.073741824e+09`,
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}
