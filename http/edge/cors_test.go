package edge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/http/edge"
)

const (
	acmeOrigin   = "https://app.acme.test"
	globexOrigin = "http://127.0.0.1:5173"
)

// corsTenants is acme and globex, each allowing one origin of its own.
func corsTenants(t *testing.T, acmeOrigins string) *tenants.Registry {
	t.Helper()
	reg, err := tenants.Parse(strings.NewReader(`{"tenants": [
		{"id": "acme", "apiKeys": [{"id": "web", "hash": "` + tenants.HashKey(acmeKey) + `"}], "cors": {"allowedOrigins": [` + acmeOrigins + `]}},
		{"id": "globex", "apiKeys": [{"id": "app", "hash": "` + tenants.HashKey(globexKey) + `"}], "cors": {"allowedOrigins": ["` + globexOrigin + `"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func corsRequest(t *testing.T, a *api, method, path, origin string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, a.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func preflight(t *testing.T, a *api, origin string) *http.Response {
	t.Helper()
	return corsRequest(t, a, http.MethodOptions, "/chat", origin, http.Header{
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"authorization,content-type,idempotency-key,x-user-id"},
	})
}

func TestPreflightIsAnsweredForOriginsSomeTenantAllows(t *testing.T) {
	t.Parallel()
	reg := corsTenants(t, `"`+acmeOrigin+`"`)
	a := newAPI(t, func(c *edge.Config) { c.Tenants = reg })

	for _, origin := range []string{acmeOrigin, globexOrigin} {
		resp := preflight(t, a, origin)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("preflight from %s: %d, Allow-Origin %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if got := resp.Header.Get("Access-Control-Allow-Headers"); got != "authorization,content-type,idempotency-key,x-user-id" {
			t.Errorf("Allow-Headers %q", got)
		}
		if resp.Header.Get("Access-Control-Allow-Methods") != "POST" || resp.Header.Get("Access-Control-Max-Age") == "" || resp.Header.Get("X-Trace-Id") == "" {
			t.Errorf("preflight headers %v", resp.Header)
		}
	}
	resp := preflight(t, a, "https://evil.test")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from an unlisted origin: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp = corsRequest(t, a, http.MethodOptions, "/chat", acmeOrigin, http.Header{
		"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"x-not-read-by-parley"}})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight allowed a header the API does not read")
	}

	// A reload takes an origin away at once.
	reg.Replace(corsTenants(t, ""))
	if got := preflight(t, a, acmeOrigin).Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("preflight after the origin was removed: Allow-Origin %q", got)
	}
}

func TestRealRequestIsReadableOnlyFromTheTenantsOwnOrigins(t *testing.T) {
	t.Parallel()
	reg := corsTenants(t, `"`+acmeOrigin+`"`)
	a := newAPI(t, func(c *edge.Config) { c.Tenants = reg })
	path := "/chat/" + uuid.NewString() + "/history"
	auth := func(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

	resp := corsRequest(t, a, http.MethodGet, path, acmeOrigin, auth(acmeKey))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != acmeOrigin {
		t.Fatalf("acme from its origin: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	exposed := strings.Join(resp.Header.Values("Access-Control-Expose-Headers"), ",")
	for _, h := range []string{"X-Trace-Id", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "Retry-After"} {
		if !strings.Contains(strings.ToLower(exposed), strings.ToLower(h)) {
			t.Errorf("Expose-Headers %q lacks %s", exposed, h)
		}
	}
	vary := strings.Join(resp.Header.Values("Vary"), ",")
	if !strings.Contains(vary, "Origin") || !strings.Contains(vary, "Authorization") {
		t.Errorf("Vary %q, want Origin and Authorization", vary)
	}

	// globex's origin passes a preflight, but acme's key does not allow it.
	resp = corsRequest(t, a, http.MethodGet, path, globexOrigin, auth(acmeKey))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("acme from globex's origin: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// Without a key nothing is allowed.
	resp = corsRequest(t, a, http.MethodGet, path, acmeOrigin, http.Header{})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("no key: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	reg.Replace(corsTenants(t, ""))
	if got := corsRequest(t, a, http.MethodGet, path, acmeOrigin, auth(acmeKey)).Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("after the origin was removed: Allow-Origin %q", got)
	}
}

func TestPlaygroundIsServedAtRoot(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	resp, err := http.Get(a.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "connect-src 'self'") ||
		strings.Contains(resp.Header.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Fatalf("GET /: %d %v", resp.StatusCode, resp.Header)
	}
}
