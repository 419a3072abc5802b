package tenants_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/persistence"
)

const goodKey = "pk_live_0123456789"

func file(body string) string {
	return `{"tenants": [` + body + `]}`
}

func acme(extra string) string {
	return `{"id": "acme", "apiKeys": [{"id": "web", "hash": "` + tenants.HashKey(goodKey) + `"}]` + extra + `}`
}

func TestParseFillsDefaultsAndAuthenticates(t *testing.T) {
	reg, err := tenants.Parse(strings.NewReader(file(acme(`, "sessions": {"maxMessages": 50}`))))
	if err != nil {
		t.Fatal(err)
	}
	tenant, keyID, ok := reg.Authenticate(goodKey)
	if !ok || tenant.ID != "acme" || keyID != "web" {
		t.Fatalf("Authenticate = %v %q %v", tenant, keyID, ok)
	}
	for _, bad := range []string{"", "pk_live_012345678", goodKey + " ", tenants.HashKey(goodKey)} {
		if _, _, ok := reg.Authenticate(bad); ok {
			t.Errorf("Authenticate(%q) accepted", bad)
		}
	}
	r := tenant.Retention()
	if r.MaxMessages != 50 || r.MaxAge != 30*24*time.Hour {
		t.Errorf("retention %+v, want 50 messages (set) and 30 days (default)", r)
	}
	if tenant.RateLimit.PerMinute != tenants.DefaultPerMinute || tenant.RateLimit.OnLimiterUnavailable != "open" || tenant.Model.Name != "mock" {
		t.Errorf("defaults not applied: %+v", tenant)
	}
	if got := reg.Retention("unknown"); got.MaxMessages != 1000 {
		t.Errorf("unknown tenant retention %+v", got)
	}
	want := persistence.Quota{MaxStoredBytes: 1 << 30, MaxSessions: 100_000, MaxCacheEntries: 10_000}
	if q := reg.Quota("acme"); q != want || r.Quota != want {
		t.Errorf("quota %+v, retention's %+v; want the defaults %+v", q, r.Quota, want)
	}
}

func TestQuotasComeFromTheFile(t *testing.T) {
	reg, err := tenants.Parse(strings.NewReader(file(acme(`, "quotas": {"maxStoredBytes": 1048576, "maxCacheEntries": 5}`))))
	if err != nil {
		t.Fatal(err)
	}
	want := persistence.Quota{MaxStoredBytes: 1 << 20, MaxSessions: tenants.DefaultMaxSessions, MaxCacheEntries: 5}
	if q := reg.Quota("acme"); q != want {
		t.Fatalf("quota %+v, want %+v", q, want)
	}
	if q := reg.Quota("unknown"); q != (persistence.Quota{}) {
		t.Fatalf("a tenant the file lacks has quota %+v", q)
	}
	if ids := reg.IDs(); len(ids) != 1 || ids[0] != "acme" {
		t.Fatalf("IDs = %v", ids)
	}
}

func TestHashKeyIsSHA256Hex(t *testing.T) {
	// echo -n abc | sha256sum
	if got := tenants.HashKey("abc"); got != "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashKey(abc) = %s", got)
	}
}

func TestBadFilesNameTheField(t *testing.T) {
	hash := tenants.HashKey(goodKey)
	cases := []struct{ name, body, want string }{
		{"not json", `{"tenants": [`, "unexpected EOF"},
		{"unknown field", `{"tenants": [], "extra": 1}`, `unknown field "extra"`},
		{"trailing data", file(acme("")) + `{}`, "trailing data"},
		{"no tenants", `{"tenants": []}`, "tenants: needs at least 1"},
		{"bad id", file(`{"id": "Acme:x", "apiKeys": [{"id": "web", "hash": "` + hash + `"}]}`), `tenants[0].id: "Acme:x" is not a tenant id`},
		{"no keys", file(`{"id": "acme", "apiKeys": []}`), "tenants[0].apiKeys: needs at least 1"},
		{"plain key instead of hash", file(`{"id": "acme", "apiKeys": [{"id": "web", "hash": "` + goodKey + `"}]}`), `tenants[0].apiKeys[0].hash: must be "sha256:"`},
		{"wrong type", file(acme(`, "rateLimit": {"perMinute": "lots"}`)), "perMinute"},
		{"negative limit", file(acme(`, "rateLimit": {"perMinute": -1}`)), "tenants[0].rateLimit.perMinute: must be 0 or more"},
		{"bad policy", file(acme(`, "rateLimit": {"onLimiterUnavailable": "maybe"}`)), "tenants[0].rateLimit.onLimiterUnavailable: maybe is not one of: open closed"},
		{"negative quota", file(acme(`, "quotas": {"maxSessions": -1}`)), "tenants[0].quotas.maxSessions: must be 0 or more"},
		{"bad model", file(acme(`, "model": {"name": "gpt-9"}`)), "tenants[0].model.name"},
		{"duplicate tenant", file(acme("") + "," + strings.Replace(acme(""), hash, tenants.HashKey("other"), 1)), `tenants[1].id: "acme" appears twice`},
		{"key shared by two tenants", file(acme("") + "," + strings.Replace(acme(""), `"acme"`, `"globex"`, 1)), `tenants[1].apiKeys[0].hash: the same key is already tenant "acme"'s`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tenants.Parse(strings.NewReader(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
