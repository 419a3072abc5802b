package storetest

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

func testKV(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	key := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "greeting"}
	checkKVMiss(t, s, key, t0)

	value := []byte("hello")
	if err := s.Put(ctx, key, value, time.Time{}, persistence.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	value[0] = 'J' // the store kept its own copy
	got, exp, ok, err := s.Get(ctx, key, t0)
	if err != nil || !ok || string(got) != "hello" || !exp.IsZero() {
		t.Fatalf("Get = %q, %v, %v, %v; want hello forever", got, exp, ok, err)
	}
	got[0] = 'Y' // the caller owns what Get returned
	checkKV(t, s, key, t0, "hello", time.Time{})

	mustPut(t, s, key, "replaced", t0.Add(time.Hour))
	checkKV(t, s, key, t0, "replaced", t0.Add(time.Hour))

	mustPut(t, s, key, "", time.Time{})
	got, _, ok, err = s.Get(ctx, key, t0)
	if err != nil || !ok || len(got) != 0 {
		t.Fatalf("Get of an empty value = %q, %v, %v; want an empty hit", got, ok, err)
	}

	for range 2 { // deleting a missing key is fine
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	checkKVMiss(t, s, key, t0)
}

func testKVExpiry(t *testing.T, s persistence.Store) {
	key := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "session-token"}
	expiresAt := t0.Add(time.Hour)
	mustPut(t, s, key, "v", expiresAt)

	checkKV(t, s, key, t0, "v", expiresAt)
	checkKV(t, s, key, expiresAt.Add(-time.Nanosecond), "v", expiresAt)
	checkKVMiss(t, s, key, expiresAt) // gone at its expiry instant
	checkKVMiss(t, s, key, expiresAt.Add(24*time.Hour))
	// Expiry follows the caller's now, not a clock: an earlier now hits again.
	checkKV(t, s, key, t0.Add(-24*time.Hour), "v", expiresAt)

	// An expiry in the far past (a fake clock's) is honoured the same way.
	past := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "old"}
	mustPut(t, s, past, "v", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	checkKV(t, s, past, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), "v", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	checkKVMiss(t, s, past, t0)

	forever := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "forever"}
	mustPut(t, s, forever, "v", time.Time{})
	checkKV(t, s, forever, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "v", time.Time{})
}

// metaLike is what a session meta of LastSeq 7, FirstSeq 1 looks like in the
// Badger store.
const metaLike = "\x01\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01"

func testKVAndSessionsApart(t *testing.T, s persistence.Store) {
	// KV entries whose key text mimics a session's stored keys must not
	// appear as session data, whatever the implementation's layout.
	for _, space := range []string{"s", "q", "m", "cache"} {
		for _, k := range []string{sid1, sid1 + ":m", sid1 + ":q:", "s:" + sid1 + ":m"} {
			mustPut(t, s, persistence.KVKey{Tenant: "acme", Space: space, Key: k}, metaLike, time.Time{})
		}
	}
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	checkMeta(t, s, key, persistence.SessionMeta{})
	checkSeqs(t, "session beside KV entries", mustPage(t, s, key, 0, 100, time.Time{}), nil)

	mustAppend(t, s, key, 0, messages(1, 2, nil), persistence.AppendOptions{})
	checkKV(t, s, persistence.KVKey{Tenant: "acme", Space: "s", Key: sid1 + ":m"}, t0, metaLike, time.Time{})

	// The same key in two spaces is two entries.
	a := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "user:1"}
	b := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: "user:1"}
	mustPut(t, s, a, "cache", time.Time{})
	mustPut(t, s, b, "limit", time.Time{})
	checkKV(t, s, a, t0, "cache", time.Time{})
	checkKV(t, s, b, t0, "limit", time.Time{})
}
