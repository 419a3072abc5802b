package edge_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/http/edge"
)

func (a *api) cachePut(key, tenantKey, body, query string) *http.Response {
	return a.do("PUT", "/cache/"+key+query, tenantKey, "application/json", strings.NewReader(body))
}

func TestCachePutGetDeleteOverHTTP(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	if resp := a.do("GET", "/cache/flags", acmeKey, "", nil); resp.StatusCode != 404 || errorBody(t, resp).Error.Code != edge.CodeNotFound {
		t.Fatalf("miss: %d", resp.StatusCode)
	}
	put := a.cacheClock.Now()
	resp := a.cachePut("flags", acmeKey, `{"beta": true}`, "?ttl=60")
	if resp.StatusCode != 200 {
		t.Fatalf("put: %d", resp.StatusCode)
	}
	resp = a.do("GET", "/cache/flags", acmeKey, "", nil)
	var entry struct {
		Key       string          `json:"key"`
		Value     json.RawMessage `json:"value"`
		ExpiresAt time.Time       `json:"expiresAt"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&entry) != nil {
		t.Fatalf("get: %d", resp.StatusCode)
	}
	if entry.Key != "flags" || string(entry.Value) != `{"beta":true}` {
		t.Fatalf("entry %+v", entry)
	}
	if want := put.Add(60 * time.Second); !entry.ExpiresAt.Equal(want) {
		t.Fatalf("expires at %s, want %s (60 s after the put)", entry.ExpiresAt, want)
	}
	a.cacheClock.Advance(59 * time.Second)
	if resp := a.do("GET", "/cache/flags", acmeKey, "", nil); resp.StatusCode != 200 {
		t.Fatalf("1 s before its expiry: %d", resp.StatusCode)
	}
	a.cacheClock.Advance(time.Second)
	if resp := a.do("GET", "/cache/flags", acmeKey, "", nil); resp.StatusCode != 404 {
		t.Fatalf("at its expiry: %d, want 404", resp.StatusCode)
	}
	if resp := a.do("DELETE", "/cache/flags", acmeKey, "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp := a.do("GET", "/cache/flags", acmeKey, "", nil); resp.StatusCode != 404 {
		t.Fatalf("after delete: %d", resp.StatusCode)
	}
}

func TestCacheKeysStayInsideTheirTenant(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	for _, key := range []string{"shared", "other:cache:shared", "globex%3Acache%3Ashared", "a/b/c", "..%2F..%2Fx"} {
		if resp := a.cachePut(key, acmeKey, `"acme's"`, ""); resp.StatusCode != 200 {
			t.Fatalf("put %q: %d", key, resp.StatusCode)
		}
		if resp := a.do("GET", "/cache/"+key, globexKey, "", nil); resp.StatusCode != 404 {
			t.Fatalf("globex read acme's %q: %d", key, resp.StatusCode)
		}
	}
	if resp := a.do("GET", "/cache/shared", acmeKey, "", nil); resp.StatusCode != 200 {
		t.Fatalf("acme lost its own entry: %d", resp.StatusCode)
	}
}

func TestCacheRefusesBadRequests(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	cases := []struct {
		name, key, contentType, body, query string
		status                              int
	}{
		{"no key", "", "application/json", `1`, "", 401},
		{"not JSON", "k", "application/json", `{nope`, "", 400},
		{"text body", "k", "text/plain", `1`, "", 415},
		{"ttl zero", "k", "application/json", `1`, "?ttl=0", 400},
		{"ttl negative", "k", "application/json", `1`, "?ttl=-5", 400},
		{"ttl over 30 days", "k", "application/json", `1`, "?ttl=2592001", 400},
		{"ttl not a number", "k", "application/json", `1`, "?ttl=soon", 400},
		{"value over 64 KiB", "k", "application/json", `"` + strings.Repeat("a", 64<<10) + `"`, "", 413},
		{"key over 512 bytes", strings.Repeat("k", 513), "application/json", `1`, "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apiKey := acmeKey
			if tc.status == 401 {
				apiKey = ""
			}
			key := tc.key
			if key == "" {
				key = "k"
			}
			resp := a.do("PUT", "/cache/"+key+tc.query, apiKey, tc.contentType, strings.NewReader(tc.body))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			errorBody(t, resp)
		})
	}
	if resp := a.do("GET", "/cache/k", acmeKey, "", nil); resp.StatusCode != 404 {
		t.Fatalf("a refused put stored something: %d", resp.StatusCode)
	}
}

func TestChatReadsTheModelConfigThroughTheCache(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	usage := func() int {
		resp := a.chat(acmeKey, uuid.NewString(), "hi", false)
		var body struct{ Usage struct{ PromptTokens int } }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Usage.PromptTokens
	}
	// The tenants file's template: "You are Acme's terse assistant." (5
	// words) + "hi".
	if got := usage(); got != 6 {
		t.Fatalf("prompt tokens %d, want 6 from the tenants file's template", got)
	}
	// The first chat filled the cache; a tenant can override it there.
	resp := a.cachePut("parley/model", acmeKey, `{"name": "mock", "promptTemplate": "Be brief."}`, "")
	if resp.StatusCode != 200 {
		t.Fatalf("put model config: %d", resp.StatusCode)
	}
	if got := usage(); got != 3 {
		t.Fatalf("prompt tokens %d, want 3 from the cached template", got)
	}
	metrics, _ := io.ReadAll(a.do("GET", "/metrics", "", "", nil).Body)
	for _, want := range []string{`parley_cache_gets_total{result="miss"} 1`, `parley_cache_gets_total{result="hit"} 1`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
