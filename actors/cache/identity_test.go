package cache_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/persistence"
)

func TestHostileKeysStayInsideTheirTenant(t *testing.T) {
	for _, key := range []string{
		"other:cache:x", "globex:cache:secret", "a/b", "../x", "../../etc/passwd", "x:y:z", ":", "cache:",
		"ключ", "🔑/:", " ", "%2F..%2F", strings.Repeat("k", cache.MaxKeyBytes), strings.Repeat("é", cache.MaxKeyBytes/2),
	} {
		identity, err := cache.Identity("acme", key)
		if err != nil {
			t.Errorf("Identity(acme, %q): %v", key, err)
			continue
		}
		if identity != "acme:cache:"+key {
			t.Errorf("Identity(acme, %q) = %q", key, identity)
		}
		got, err := cache.ParseIdentity(identity)
		want := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: key}
		if err != nil || got != want {
			t.Errorf("ParseIdentity(%q) = %+v, %v; want %+v", identity, got, err, want)
		}
	}
}

func TestIdentityRefusesMalformedTenantsAndKeys(t *testing.T) {
	for _, tc := range []struct{ tenant, key string }{
		{"acme", ""},
		{"acme", "a\x00b"},
		{"acme", "\x00"},
		{"acme", strings.Repeat("k", cache.MaxKeyBytes+1)},
		{"acme", strings.Repeat("é", cache.MaxKeyBytes/2) + "k"}, // 513 bytes, 257 characters
		{"acme", "\xff\xfe"},
		{"ACME", "x"},
		{"", "x"},
		{"acme:globex", "x"},
		{"acme:cache", "x"},
		{"a/b", "x"},
		{"..", "x"},
		{strings.Repeat("a", 65), "x"},
	} {
		if id, err := cache.Identity(tc.tenant, tc.key); !errors.Is(err, cache.ErrInvalidKey) {
			t.Errorf("Identity(%q, %q) = %q, %v; want ErrInvalidKey", tc.tenant, tc.key, id, err)
		}
	}
}

func TestParseIdentitySplitsAtTheFirstColon(t *testing.T) {
	got, err := cache.ParseIdentity("other:cache:x")
	if err != nil || got.Tenant != "other" || got.Key != "x" {
		t.Fatalf("ParseIdentity(other:cache:x) = %+v, %v", got, err)
	}
	for _, identity := range []string{
		"acme", "acme:x", "acme:cachex", "acme:cache:", "acme:kv:x", "acme:Cache:x", ":cache:x",
		"ACME:cache:x", "acme:cache:a\x00", "acme:cache:" + strings.Repeat("k", cache.MaxKeyBytes+1),
	} {
		if key, err := cache.ParseIdentity(identity); !errors.Is(err, cache.ErrInvalidKey) {
			t.Errorf("ParseIdentity(%q) = %+v, %v; want ErrInvalidKey", identity, key, err)
		}
	}
}
