package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/http/edge"
)

// startTestFloor serves a floor for one tenant with key, limited to
// perMinute (burst as much) and userPerMinute per user, its ip scope far
// above.
func startTestFloor(t *testing.T, key string, perMinute, userPerMinute int) *floor {
	t.Helper()
	file := map[string]any{"tenants": []any{map[string]any{
		"id":      "t1",
		"apiKeys": []any{map[string]any{"id": "k1", "hash": tenants.HashKey(key)}},
		"rateLimit": map[string]any{"perMinute": perMinute, "burst": perMinute,
			"user": map[string]any{"perMinute": userPerMinute}, "ip": map[string]any{"perMinute": 1000}},
	}}}
	body, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tenants.json")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := startFloor(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func TestFloorRefusesPastTheLimitAsTheEdgeDoes(t *testing.T) {
	const key = "floor-test-key"
	f := startTestFloor(t, key, 2, 1000)
	c := &client{http: newHTTPClient()}
	t.Cleanup(c.http.CloseIdleConnections)
	session := "0b7f2a52-3f7e-4c8e-9d0c-5b1c2d3e4f50"
	for i, wantRemaining := range []string{"1", "0"} {
		status, h, _, err := c.historyStatus(t.Context(), f.URL(), key, session, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK || h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != wantRemaining {
			t.Fatalf("request %d: HTTP %d, limit %q, remaining %q; want 200, 2, %s", i, status, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), wantRemaining)
		}
	}
	status, h, code, err := c.historyStatus(t.Context(), f.URL(), key, session, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusTooManyRequests || code != edge.CodeRateLimited {
		t.Fatalf("third request: HTTP %d %q, want 429 %s", status, code, edge.CodeRateLimited)
	}
	// Two a minute: the next token is 30 s away.
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || retry < 29 || retry > 30 {
		t.Errorf("Retry-After %q, want 29 or 30", h.Get("Retry-After"))
	}
	reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if now := time.Now().Unix(); err != nil || reset < now+29 || reset > now+31 {
		t.Errorf("X-RateLimit-Reset %q, want about 30 s from now (%d)", h.Get("X-RateLimit-Reset"), now)
	}
	if h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("429 with limit %q remaining %q, want 2 and 0", h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"))
	}
	if status, _, _, _ := c.historyStatus(t.Context(), f.URL(), key, session, "u2"); status != http.StatusTooManyRequests {
		t.Errorf("another user: HTTP %d, want 429 (the tenant's limit)", status)
	}
	if status, _, _, _ := c.historyStatus(t.Context(), f.URL(), "not-a-key", session, "u1"); status != http.StatusUnauthorized {
		t.Errorf("unknown key: HTTP %d, want 401", status)
	}
}

func TestFloorGivesBackWhatARefusedRequestTook(t *testing.T) {
	const key = "floor-test-key"
	f := startTestFloor(t, key, 2, 1)
	c := &client{http: newHTTPClient()}
	t.Cleanup(c.http.CloseIdleConnections)
	session := "0b7f2a52-3f7e-4c8e-9d0c-5b1c2d3e4f50"
	// u1's second request is refused by the user scope; the tenant's
	// token it took is given back, so u2 still gets the tenant's second.
	for i, step := range []struct {
		user   string
		status int
	}{{"u1", http.StatusOK}, {"u1", http.StatusTooManyRequests}, {"u2", http.StatusOK}, {"u3", http.StatusTooManyRequests}} {
		status, h, _, err := c.historyStatus(t.Context(), f.URL(), key, session, step.user)
		if err != nil {
			t.Fatal(err)
		}
		if status != step.status {
			t.Fatalf("request %d (%s): HTTP %d, want %d", i, step.user, status, step.status)
		}
		if i == 1 && h.Get("X-RateLimit-Limit") != "1" {
			t.Errorf("user refusal shows limit %q, want the user scope's 1", h.Get("X-RateLimit-Limit"))
		}
	}
}
