package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

func testTenantIsolation(t *testing.T, s persistence.Store) {
	// "acme" is a string prefix of "acme-eu": their data must still be apart.
	tenants := []string{"acme", "acme-eu"}
	for i, tenant := range tenants {
		key := persistence.SessionKey{Tenant: tenant, Session: sid1}
		msgs := messages(1, 2+i, nil)
		for j := range msgs {
			msgs[j].Content = tenant + " says hi"
		}
		mustAppend(t, s, key, 0, msgs, persistence.AppendOptions{})
		mustPut(t, s, persistence.KVKey{Tenant: tenant, Space: persistence.SpaceCache, Key: "k"}, tenant+" value", time.Time{})
	}
	check := func(tenant string, n uint64) {
		t.Helper()
		key := persistence.SessionKey{Tenant: tenant, Session: sid1}
		checkMeta(t, s, key, persistence.SessionMeta{LastSeq: n, FirstSeq: 1})
		page := mustPage(t, s, key, 0, 100, time.Time{})
		checkSeqs(t, tenant, page, newestFirst(n, 1))
		for _, m := range page {
			if m.Content != tenant+" says hi" {
				t.Fatalf("tenant %s reads %q", tenant, m.Content)
			}
		}
		checkKV(t, s, persistence.KVKey{Tenant: tenant, Space: persistence.SpaceCache, Key: "k"}, t0, tenant+" value", time.Time{})
	}
	check("acme", 2)
	check("acme-eu", 3)

	if err := s.DeleteTenant(t.Context(), "acme"); err != nil {
		t.Fatalf("DeleteTenant: %v", err)
	}
	gone := persistence.SessionKey{Tenant: "acme", Session: sid1}
	checkMeta(t, s, gone, persistence.SessionMeta{})
	checkSeqs(t, "deleted tenant", mustPage(t, s, gone, 0, 100, time.Time{}), nil)
	checkKVMiss(t, s, persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "k"}, t0)
	check("acme-eu", 3)

	if err := s.DeleteTenant(t.Context(), "nobody"); err != nil {
		t.Fatalf("DeleteTenant of a tenant without data: %v", err)
	}
	mustAppend(t, s, gone, 0, messages(1, 1, nil), persistence.AppendOptions{})
	checkMeta(t, s, gone, persistence.SessionMeta{LastSeq: 1, FirstSeq: 1})
}

// testInvalidKeys feeds hostile keys to every method. Some are built to alias
// a real key under a naive layout (a tenant holding ':' or a space holding
// the tenant's next part), so the suite also checks that the real key is
// untouched and that nothing at all was written.
func testInvalidKeys(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	real := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "x:y"}
	mustPut(t, s, real, "real", time.Time{})

	badTenants := []string{"", "a:b", "acme:cache", "../x", "Acme", "ACME", strings.Repeat("a", 65),
		"a b", "acme\x00", "acme/x", "é", "acme\n"}
	badSessions := []string{"", "../x", "not-a-uuid", strings.ToUpper(sid1), sid1 + ":m", sid1[:35],
		"{" + sid1 + "}", sid1 + "\x00", strings.ReplaceAll(sid1, "-", ""), "a:b"}

	var sessionKeys []persistence.SessionKey
	for _, tenant := range badTenants {
		sessionKeys = append(sessionKeys, persistence.SessionKey{Tenant: tenant, Session: sid1})
	}
	for _, session := range badSessions {
		sessionKeys = append(sessionKeys, persistence.SessionKey{Tenant: "acme", Session: session})
	}
	for _, key := range sessionKeys {
		wantInvalid := func(method string, err error) {
			t.Helper()
			if !errors.Is(err, persistence.ErrInvalidKey) {
				t.Errorf("%s(%q): %v, want ErrInvalidKey", method, key, err)
			}
		}
		_, err := s.Meta(ctx, key)
		wantInvalid("Meta", err)
		_, err = s.Append(ctx, key, 0, messages(1, 1, nil), persistence.AppendOptions{})
		wantInvalid("Append", err)
		_, err = s.Page(ctx, key, 0, 10, time.Time{})
		wantInvalid("Page", err)
		wantInvalid("DeleteSession", s.DeleteSession(ctx, key))
	}

	kvKeys := []persistence.KVKey{
		{Tenant: "acme", Space: "", Key: "k"},
		{Tenant: "acme", Space: "Cache", Key: "k"},
		{Tenant: "acme", Space: "cache:x", Key: "y"},
		{Tenant: "acme", Space: "ca che", Key: "k"},
		{Tenant: "acme", Space: "cache\x00", Key: "k"},
		{Tenant: "acme", Space: "cache", Key: ""},
		{Tenant: "acme", Space: "cache", Key: "a\x00b"},
		{Tenant: "acme", Space: "cache", Key: "\x00"},
		{Tenant: "acme", Space: "cache", Key: strings.Repeat("k", 513)},
	}
	for _, tenant := range badTenants {
		kvKeys = append(kvKeys, persistence.KVKey{Tenant: tenant, Space: "cache", Key: "k"})
	}
	for _, key := range kvKeys {
		wantInvalid := func(method string, err error) {
			t.Helper()
			if !errors.Is(err, persistence.ErrInvalidKey) {
				t.Errorf("%s(%q): %v, want ErrInvalidKey", method, key, err)
			}
		}
		v, _, _, err := s.Get(ctx, key, t0)
		wantInvalid("Get", err)
		if v != nil {
			t.Errorf("Get(%q) returned %q with its error", key, v)
		}
		wantInvalid("Put", s.Put(ctx, key, []byte("hostile"), t0, persistence.PutOptions{}))
		wantInvalid("Delete", s.Delete(ctx, key))
	}
	for _, tenant := range badTenants {
		if err := s.DeleteTenant(ctx, tenant); !errors.Is(err, persistence.ErrInvalidKey) {
			t.Errorf("DeleteTenant(%q): %v, want ErrInvalidKey", tenant, err)
		}
	}

	checkKV(t, s, real, t0, "real", time.Time{})
	// Every hostile Put expired at t0 and every hostile Append was created
	// before t0+2s: a sweep that expires all of them finds nothing to remove.
	stats, err := s.Sweep(ctx, t0.Add(time.Hour), func(string) time.Duration { return time.Nanosecond })
	if err != nil || stats != (persistence.SweepStats{}) {
		t.Fatalf("Sweep after hostile writes = %+v, %v; want nothing removed", stats, err)
	}
	checkKV(t, s, real, t0, "real", time.Time{})
}

func testValidKeyEdges(t *testing.T, s persistence.Store) {
	tenants := []string{"a", "0", "a-b_c9", strings.Repeat("z", 64), "-", "_"}
	for _, tenant := range tenants {
		key := persistence.SessionKey{Tenant: tenant, Session: sid1}
		mustAppend(t, s, key, 0, messages(1, 1, nil), persistence.AppendOptions{})
		checkMeta(t, s, key, persistence.SessionMeta{LastSeq: 1, FirstSeq: 1})
	}
	keys := []string{"k", strings.Repeat("k", 512), "a:b:c", "../../etc/passwd", "ü/🎉", " ", "\xff\xfe"}
	for i, k := range keys {
		key := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: k}
		mustPut(t, s, key, fmt.Sprint(i), time.Time{})
	}
	for i, k := range keys {
		checkKV(t, s, persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: k}, t0, fmt.Sprint(i), time.Time{})
	}
}
