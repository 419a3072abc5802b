package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

// usageOf returns what tenant holds in s.
func usageOf(t *testing.T, s persistence.Store, tenant string) persistence.Usage {
	t.Helper()
	u, err := s.Usage(tenant)
	if err != nil {
		t.Fatalf("Usage(%s): %v", tenant, err)
	}
	return u
}

// wantQuota fails unless err is a refusal over the quota named name.
func wantQuota(t *testing.T, what string, err error, name string) {
	t.Helper()
	if !errors.Is(err, persistence.ErrQuotaExceeded) || persistence.ExceededQuota(err) != name {
		t.Fatalf("%s = %v; want ErrQuotaExceeded naming %s", what, err, name)
	}
}

func testQuotaCacheEntries(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	kv := func(k string) persistence.KVKey {
		return persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: k}
	}
	opts := persistence.PutOptions{Quota: persistence.Quota{MaxCacheEntries: 2}}
	put := func(k string) error { return s.Put(ctx, kv(k), []byte("v"), time.Time{}, opts) }
	for _, k := range []string{"a", "b"} {
		if err := put(k); err != nil {
			t.Fatalf("Put %s within the quota: %v", k, err)
		}
	}
	wantQuota(t, "Put of a third entry", put("c"), persistence.QuotaCacheEntries)
	checkKVMiss(t, s, kv("c"), t0)
	if err := put("a"); err != nil {
		t.Fatalf("replacing an entry adds none, but Put = %v", err)
	}
	if u := usageOf(t, s, "acme"); u.CacheEntries != 2 {
		t.Fatalf("usage %+v, want 2 cache entries", u)
	}
	// The limiter's counters are the node's, not the tenant's.
	counter := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: "user:alice"}
	if err := s.Put(ctx, counter, []byte("1"), time.Time{}, opts); err != nil {
		t.Fatalf("Put of a rate-limit counter: %v", err)
	}
	if err := s.Delete(ctx, kv("a")); err != nil {
		t.Fatal(err)
	}
	if err := put("c"); err != nil {
		t.Fatalf("Put after a delete gave room back: %v", err)
	}
	if u := usageOf(t, s, "acme"); u.CacheEntries != 2 {
		t.Fatalf("usage %+v, want 2 cache entries", u)
	}
}

func testQuotaStoredBytes(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	kv := func(k string) persistence.KVKey {
		return persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: k}
	}
	value := make([]byte, 1000)
	mustPut(t, s, kv("first"), string(value), time.Time{})
	one := usageOf(t, s, "acme").StoredBytes
	if one < 1000 {
		t.Fatalf("a 1000-byte entry counts %d stored bytes", one)
	}
	q := persistence.Quota{MaxStoredBytes: one + one/2}
	wantQuota(t, "Put of a second entry", s.Put(ctx, kv("other"), value, time.Time{}, persistence.PutOptions{Quota: q}), persistence.QuotaStoredBytes)
	checkKVMiss(t, s, kv("other"), t0)
	if err := s.Put(ctx, kv("first"), value[:500], time.Time{}, persistence.PutOptions{Quota: persistence.Quota{MaxStoredBytes: 1}}); err != nil {
		t.Fatalf("a smaller value gives room back and fits any quota, but Put = %v", err)
	}

	// Messages count too, and a refused append writes nothing.
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	used := usageOf(t, s, "acme").StoredBytes
	_, err := s.Append(ctx, key, 0, messages(1, 1, nil), persistence.AppendOptions{Quota: persistence.Quota{MaxStoredBytes: used + 10}})
	wantQuota(t, "Append over the bytes quota", err, persistence.QuotaStoredBytes)
	checkMeta(t, s, key, persistence.SessionMeta{})
	if u := usageOf(t, s, "acme"); u.StoredBytes != used || u.Sessions != 0 {
		t.Fatalf("a refused append changed the usage to %+v (stored bytes were %d)", u, used)
	}

	// A session at its MaxMessages cap trims as much as it adds, so it
	// keeps working at a full quota.
	mustAppend(t, s, key, 0, messages(1, 2, nil), persistence.AppendOptions{})
	full := persistence.AppendOptions{MaxMessages: 2, Quota: persistence.Quota{MaxStoredBytes: usageOf(t, s, "acme").StoredBytes}}
	mustAppend(t, s, key, 2, messages(3, 1, nil), full)
	checkMeta(t, s, key, persistence.SessionMeta{LastSeq: 3, FirstSeq: 2})

	// Another tenant's quota is its own.
	other := persistence.SessionKey{Tenant: "globex", Session: sid1}
	mustAppend(t, s, other, 0, messages(1, 1, nil), persistence.AppendOptions{Quota: persistence.Quota{MaxStoredBytes: 1 << 20}})
}

func testQuotaSessions(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	opts := persistence.AppendOptions{Quota: persistence.Quota{MaxSessions: 1}}
	a := persistence.SessionKey{Tenant: "acme", Session: sid1}
	b := persistence.SessionKey{Tenant: "acme", Session: sid2}
	mustAppend(t, s, a, 0, messages(1, 1, nil), opts)
	_, err := s.Append(ctx, b, 0, messages(1, 1, nil), opts)
	wantQuota(t, "Append to a second session", err, persistence.QuotaSessions)
	checkMeta(t, s, b, persistence.SessionMeta{})
	mustAppend(t, s, a, 1, messages(2, 1, nil), opts) // the same session is no new one
	if u := usageOf(t, s, "acme"); u.Sessions != 1 {
		t.Fatalf("usage %+v, want 1 session", u)
	}
	if err := s.DeleteSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, s, "acme"); u != (persistence.Usage{}) {
		t.Fatalf("usage %+v after deleting the only session, want none", u)
	}
	mustAppend(t, s, b, 0, messages(1, 1, nil), opts)
}

func testQuotaExpiryGivesRoomBack(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	now := t0.Add(2 * time.Hour)
	kv := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "short"}
	mustPut(t, s, kv, "v", t0.Add(time.Minute))
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	mustAppend(t, s, key, 0, messages(1, 3, nil), persistence.AppendOptions{})
	kept := persistence.SessionKey{Tenant: "globex", Session: sid1}
	mustAppend(t, s, kept, 0, messages(1, 1, nil), persistence.AppendOptions{})
	globex := usageOf(t, s, "globex")
	if u := usageOf(t, s, "acme"); u.Sessions != 1 || u.CacheEntries != 1 || u.StoredBytes == 0 {
		t.Fatalf("usage %+v, want 1 session, 1 cache entry and their bytes", u)
	}
	retention := func(tenant string) time.Duration {
		if tenant == "acme" {
			return time.Hour
		}
		return 0
	}
	if _, err := s.Sweep(ctx, now, retention); err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, s, "acme"); u != (persistence.Usage{}) {
		t.Fatalf("usage %+v after everything expired and was swept, want none", u)
	}
	if u := usageOf(t, s, "globex"); u != globex {
		t.Fatalf("globex's usage went from %+v to %+v, but nothing of it expired", globex, u)
	}
	_, err := s.Append(ctx, key, 3, messages(4, 1, func(uint64) time.Time { return now }), persistence.AppendOptions{Quota: persistence.Quota{MaxSessions: 1}})
	if err != nil {
		t.Fatalf("an emptied session comes back within a quota of 1: %v", err)
	}
	if err := s.DeleteTenant(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, s, "globex"); u != (persistence.Usage{}) {
		t.Fatalf("usage %+v after DeleteTenant, want none", u)
	}
}
