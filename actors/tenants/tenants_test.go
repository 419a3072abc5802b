package tenants_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/model/openaitest"
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
	if tenant.RateLimit.PerMinute != tenants.DefaultPerMinute || tenant.RateLimit.OnLimiterUnavailable != "open" || tenant.Model.Provider != "mock" {
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
		{"origin with a path", file(acme(`, "cors": {"allowedOrigins": ["https://app.example.com/"]}`)), `tenants[0].cors.allowedOrigins[0]: "https://app.example.com/" is not an origin`},
		{"origin wildcard", file(acme(`, "cors": {"allowedOrigins": ["https://ok.example.com", "*"]}`)), `tenants[0].cors.allowedOrigins[1]: "*" is not an origin`},
		{"origin subdomain wildcard", file(acme(`, "cors": {"allowedOrigins": ["https://*.example.com"]}`)), "cors.allowedOrigins[0]"},
		{"origin uppercase", file(acme(`, "cors": {"allowedOrigins": ["https://App.example.com"]}`)), "cors.allowedOrigins[0]"},
		{"origin default port", file(acme(`, "cors": {"allowedOrigins": ["https://app.example.com:443"]}`)), "cors.allowedOrigins[0]"},
		{"origin not http", file(acme(`, "cors": {"allowedOrigins": ["ftp://app.example.com"]}`)), "cors.allowedOrigins[0]"},
		{"origin without scheme", file(acme(`, "cors": {"allowedOrigins": ["app.example.com"]}`)), "cors.allowedOrigins[0]"},
		{"model without provider", file(acme(`, "model": {"name": "gpt-9"}`)), "tenants[0].model.name"},
		{"unknown provider", file(acme(`, "model": {"provider": "llama"}`)), "tenants[0].model.provider: llama is not one of: mock openai"},
		{"unparsable baseURL", file(acme(`, "model": {"provider": "openai", "name": "m", "baseURL": "http//nohost"}`)), "tenants[0].model.baseURL"},
		{"openai without name", file(acme(`, "model": {"provider": "openai"}`)), "tenants[0].model.name: is required"},
		{"fallback without name", file(acme(`, "model": {"provider": "openai", "name": "m", "fallbacks": [{"baseURL": "http://127.0.0.1:11434/v1"}]}`)), "tenants[0].model.fallbacks[0].name: is required"},
		{"fallback baseURL", file(acme(`, "model": {"provider": "openai", "name": "m", "fallbacks": [{"name": "n", "baseURL": "::"}]}`)), "tenants[0].model.fallbacks[0].baseURL"},
		{"bad apiKeyEnv", file(acme(`, "model": {"provider": "openai", "name": "m", "apiKeyEnv": "OPENAI KEY"}`)), "tenants[0].model.apiKeyEnv"},
		{"temperature", file(acme(`, "model": {"provider": "openai", "name": "m", "temperature": 7}`)), "tenants[0].model.temperature: must be at most 2"},
		{"negative quota", file(acme(`, "quotas": {"maxSessions": -1}`)), "tenants[0].quotas.maxSessions: must be 0 or more"},
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

func TestAllowedOriginsPerTenantAndAcrossReloads(t *testing.T) {
	globex := strings.NewReplacer(`"acme"`, `"globex"`, tenants.HashKey(goodKey), tenants.HashKey("globex-key")).Replace(acme(`, "cors": {"allowedOrigins": ["http://127.0.0.1:5173"]}`))
	reg, err := tenants.Parse(strings.NewReader(file(acme(`, "cors": {"allowedOrigins": ["https://app.example.com", "http://[::1]:8000"]}`) + "," + globex)))
	if err != nil {
		t.Fatal(err)
	}
	acmeT, _ := reg.Tenant("acme")
	if !acmeT.AllowsOrigin("https://app.example.com") || !acmeT.AllowsOrigin("http://[::1]:8000") {
		t.Error("acme does not allow its own origins")
	}
	if acmeT.AllowsOrigin("http://127.0.0.1:5173") || acmeT.AllowsOrigin("") || acmeT.AllowsOrigin("https://app.example.com.evil.test") {
		t.Error("acme allows an origin it did not list")
	}
	for _, o := range []string{"https://app.example.com", "http://127.0.0.1:5173"} {
		if !reg.AnyAllowsOrigin(o) {
			t.Errorf("AnyAllowsOrigin(%s) = false", o)
		}
	}
	if reg.AnyAllowsOrigin("https://evil.test") {
		t.Error("AnyAllowsOrigin accepts an origin no tenant lists")
	}
	next, err := tenants.Parse(strings.NewReader(file(acme(""))))
	if err != nil {
		t.Fatal(err)
	}
	reg.Replace(next)
	if reg.AnyAllowsOrigin("https://app.example.com") || reg.AnyAllowsOrigin("http://127.0.0.1:5173") {
		t.Error("origins of the old file still allowed after Replace")
	}
}

// A model config builds at start: the mock for the old {"name": "mock"},
// and a missing apiKeyEnv variable is an error naming the field and the
// variable.
func TestModelsReadKeysAtStart(t *testing.T) {
	openai := `, "model": {"provider": "openai", "name": "m", "apiKeyEnv": "ACME_KEY", "fallbacks": [{"name": "n", "apiKeyEnv": "OTHER_KEY"}]}`
	reg, err := tenants.Parse(strings.NewReader(file(acme(openai))))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ACME_KEY": "sk-1"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	_, err = reg.Models(model.Mock{}, model.ChainConfig{}, getenv)
	if err == nil || !strings.Contains(err.Error(), "tenants[0].model.fallbacks[0].apiKeyEnv") || !strings.Contains(err.Error(), "OTHER_KEY") {
		t.Fatalf("missing fallback key: %v", err)
	}
	env["OTHER_KEY"] = "sk-2"
	models, err := reg.Models(model.Mock{}, model.ChainConfig{}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := models("acme").(*model.Chain); !ok {
		t.Fatalf("acme's model is %T, want a chain", models("acme"))
	}
	if _, ok := models("other").(model.Mock); !ok {
		t.Fatalf("an unknown tenant's model is %T, want the mock", models("other"))
	}

	old, err := tenants.Parse(strings.NewReader(file(acme(`, "model": {"name": "mock"}`))))
	if err != nil {
		t.Fatal(err)
	}
	models, err = old.Models(model.Mock{}, model.ChainConfig{}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := models("acme").(model.Mock); !ok {
		t.Fatalf(`{"name": "mock"} built %T, want the mock`, models("acme"))
	}
}

// A fallback on another endpoint never gets the primary's key; one on the
// same endpoint does.
func TestFallbackOnAnotherEndpointGetsNoPrimaryKey(t *testing.T) {
	primary := openaitest.New(t, openaitest.Step{Status: 400}, openaitest.Step{Status: 400})
	other := openaitest.New(t)
	cfg := `, "model": {"provider": "openai", "name": "m", "baseURL": "` + primary.BaseURL() + `", "apiKeyEnv": "ACME_KEY",
		"fallbacks": [{"name": "same"}, {"name": "other", "baseURL": "` + other.BaseURL() + `"}]}`
	reg, err := tenants.Parse(strings.NewReader(file(acme(cfg))))
	if err != nil {
		t.Fatal(err)
	}
	models, err := reg.Models(model.Mock{}, model.ChainConfig{}, func(string) (string, bool) { return "sk-acme", true })
	if err != nil {
		t.Fatal(err)
	}
	usage, err := models("acme").Stream(context.Background(), model.Request{Message: "hi"}, func(string) error { return nil })
	if err != nil || usage.Model != "other" {
		t.Fatalf("usage %+v, err %v", usage, err)
	}
	for i, r := range primary.Requests() {
		if r.Authorization != "Bearer sk-acme" {
			t.Errorf("primary endpoint request %d: authorization %q", i, r.Authorization)
		}
	}
	if a := other.Requests()[0].Authorization; a != "" {
		t.Fatalf("the other endpoint was sent %q", a)
	}
}
