package tenants_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/tenants"
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
		{"bad model", file(acme(`, "model": {"name": "gpt-9"}`)), "tenants[0].model.name"},
		{"origin with a path", file(acme(`, "cors": {"allowedOrigins": ["https://app.example.com/"]}`)), `tenants[0].cors.allowedOrigins[0]: "https://app.example.com/" is not an origin`},
		{"origin wildcard", file(acme(`, "cors": {"allowedOrigins": ["https://ok.example.com", "*"]}`)), `tenants[0].cors.allowedOrigins[1]: "*" is not an origin`},
		{"origin subdomain wildcard", file(acme(`, "cors": {"allowedOrigins": ["https://*.example.com"]}`)), "cors.allowedOrigins[0]"},
		{"origin uppercase", file(acme(`, "cors": {"allowedOrigins": ["https://App.example.com"]}`)), "cors.allowedOrigins[0]"},
		{"origin default port", file(acme(`, "cors": {"allowedOrigins": ["https://app.example.com:443"]}`)), "cors.allowedOrigins[0]"},
		{"origin not http", file(acme(`, "cors": {"allowedOrigins": ["ftp://app.example.com"]}`)), "cors.allowedOrigins[0]"},
		{"origin without scheme", file(acme(`, "cors": {"allowedOrigins": ["app.example.com"]}`)), "cors.allowedOrigins[0]"},
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
