package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
)

// writeTenantsFile replaces path with file the way an operator's deploy
// should: a new file renamed over the old one, so no node reads half.
func writeTenantsFile(t *testing.T, path string, file any) {
	t.Helper()
	body, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// historyStatus is GET /chat/{id}/history with key: the status and the
// X-RateLimit-Limit it carries.
func historyStatus(p *process, key string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, p.URL("/chat/5f0c6e3a-8d7b-4b1e-9a53-2f3b1c9d7e10/history"), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-RateLimit-Limit"), nil
}

// reloadErrors reads parley_config_reload_errors_total from p's /metrics.
func reloadErrors(p *process) (string, error) {
	resp, err := http.Get(p.URL("/metrics"))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "parley_config_reload_errors_total "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: no parley_config_reload_errors_total in /metrics", p.Name)
}

func TestSIGHUPReloadsTheTenantsFileOnEveryNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.json")
	limits := func(perMinute int) tenants.RateLimit {
		return tenants.RateLimit{PerMinute: perMinute, Burst: 1000,
			User: tenants.ScopeLimit{PerMinute: 1000}, IP: tenants.ScopeLimit{PerMinute: 1000}}
	}
	acme := tenants.Tenant{ID: "acme", RateLimit: limits(500), APIKeys: []tenants.APIKey{
		{ID: "web", Hash: tenants.HashKey("key-web")},
		{ID: "leaked", Hash: tenants.HashKey("key-leaked")},
	}}
	writeTenantsFile(t, path, tenants.File{Tenants: []tenants.Tenant{acme}})

	nodes := startCluster(t, 3, func(int) []string { return []string{"--tenants", path} })
	waitMembers(t, nodes, []string{"node1", "node2", "node3"})
	expect := func(what string, key string, wantStatus int, wantLimit string) {
		t.Helper()
		for _, p := range nodes {
			testkit.Eventually(t, 10*time.Second, func() error {
				status, limit, err := historyStatus(p, key)
				if err != nil {
					return err
				}
				if status != wantStatus || (wantLimit != "" && limit != wantLimit) {
					return fmt.Errorf("%s on %s: status %d, X-RateLimit-Limit %q; want %d, %q", what, p.Name, status, limit, wantStatus, wantLimit)
				}
				return nil
			})
		}
	}
	hangUp := func() {
		t.Helper()
		for _, p := range nodes {
			if err := p.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect("the leaked key before the reload", "key-leaked", http.StatusOK, "500")
	expect("an unknown tenant's key", "key-beta", http.StatusUnauthorized, "")

	// Revoke the leaked key, lower acme's limit, add a tenant.
	acme.APIKeys = acme.APIKeys[:1]
	acme.RateLimit = limits(400)
	beta := tenants.Tenant{ID: "beta", APIKeys: []tenants.APIKey{{ID: "app", Hash: tenants.HashKey("key-beta")}}}
	writeTenantsFile(t, path, tenants.File{Tenants: []tenants.Tenant{acme, beta}})
	hangUp()
	expect("the revoked key", "key-leaked", http.StatusUnauthorized, "")
	expect("the kept key, under its new limit", "key-web", http.StatusOK, "400")
	expect("the new tenant", "key-beta", http.StatusOK, "")

	// A bad file changes nothing, is counted and named in the log.
	if err := os.WriteFile(path, []byte(`{"tenants": [{"id": "Not:An:Id", "apiKeys": [{"id": "x", "hash": "sha256:00"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	hangUp()
	for _, p := range nodes {
		testkit.Eventually(t, 10*time.Second, func() error {
			if v, err := reloadErrors(p); err != nil || v != "1" {
				return fmt.Errorf("%s: reload errors %q (%v), want 1", p.Name, v, err)
			}
			if !strings.Contains(p.Log(), "tenants[0].id") {
				return fmt.Errorf("%s: the log does not name tenants[0].id", p.Name)
			}
			return nil
		})
	}
	expect("the kept key after a bad file", "key-web", http.StatusOK, "400")
	expect("the new tenant after a bad file", "key-beta", http.StatusOK, "")
	expect("the revoked key after a bad file", "key-leaked", http.StatusUnauthorized, "")
}
