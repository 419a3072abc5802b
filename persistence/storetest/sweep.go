package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

func testSweep(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	now := t0.Add(100 * time.Minute)
	retention := map[string]time.Duration{"acme": time.Hour, "globex": 0, "initech": -time.Hour}
	retentionOf := func(tenant string) time.Duration { return retention[tenant] }
	every := func(d time.Duration) func(uint64) time.Time {
		return func(seq uint64) time.Time { return t0.Add(time.Duration(seq-1) * d) }
	}

	aged := persistence.SessionKey{Tenant: "acme", Session: sid1}    // created every 10 min from t0
	emptied := persistence.SessionKey{Tenant: "acme", Session: sid2} // all older than an hour
	recent := persistence.SessionKey{Tenant: "acme", Session: sid3}  // all within the hour
	keptForever := persistence.SessionKey{Tenant: "globex", Session: sid1}
	keptNegative := persistence.SessionKey{Tenant: "initech", Session: sid1}
	mustAppend(t, s, aged, 0, messages(1, 10, every(10*time.Minute)), persistence.AppendOptions{})
	mustAppend(t, s, emptied, 0, messages(1, 3, every(time.Minute)), persistence.AppendOptions{})
	mustAppend(t, s, recent, 0, messages(1, 2, func(uint64) time.Time { return t0.Add(90 * time.Minute) }), persistence.AppendOptions{})
	mustAppend(t, s, keptForever, 0, messages(1, 3, every(time.Minute)), persistence.AppendOptions{})
	mustAppend(t, s, keptNegative, 0, messages(1, 2, every(time.Minute)), persistence.AppendOptions{})

	kv := func(tenant, k string) persistence.KVKey {
		return persistence.KVKey{Tenant: tenant, Space: persistence.SpaceCache, Key: k}
	}
	mustPut(t, s, kv("acme", "expired"), "v", now.Add(-time.Second))
	mustPut(t, s, kv("acme", "expires-now"), "v", now)
	mustPut(t, s, kv("acme", "live"), "v", now.Add(time.Second))
	mustPut(t, s, kv("acme", "forever"), "v", time.Time{})
	mustPut(t, s, kv("globex", "expired"), "v", t0)

	// Cutoff is now-1h = t0+40min: messages 1..4 of aged (t0 to t0+30min)
	// and all 3 of emptied go; message 5 of aged, created exactly at the
	// cutoff, stays.
	stats, err := s.Sweep(ctx, now, retentionOf)
	if want := (persistence.SweepStats{Messages: 7, KVEntries: 3, Sessions: 1}); err != nil || stats != want {
		t.Fatalf("Sweep = %+v, %v; want %+v", stats, err, want)
	}

	checkMeta(t, s, aged, persistence.SessionMeta{LastSeq: 10, FirstSeq: 5})
	page := mustPage(t, s, aged, 0, 100, time.Time{})
	checkSeqs(t, "aged session", page, newestFirst(10, 5))
	checkMessage(t, page[5], messages(5, 1, every(10*time.Minute))[0])
	checkMeta(t, s, emptied, persistence.SessionMeta{LastSeq: 3, FirstSeq: 0})
	checkSeqs(t, "emptied session", mustPage(t, s, emptied, 0, 100, time.Time{}), nil)
	checkSeqs(t, "recent session", mustPage(t, s, recent, 0, 100, time.Time{}), []uint64{2, 1})
	checkSeqs(t, "retention 0", mustPage(t, s, keptForever, 0, 100, time.Time{}), []uint64{3, 2, 1})
	checkSeqs(t, "negative retention", mustPage(t, s, keptNegative, 0, 100, time.Time{}), []uint64{2, 1})

	// Swept entries are gone, not just expired: an earlier now misses too.
	checkKVMiss(t, s, kv("acme", "expired"), t0)
	checkKVMiss(t, s, kv("acme", "expires-now"), t0)
	checkKVMiss(t, s, kv("globex", "expired"), t0.Add(-time.Hour))
	checkKV(t, s, kv("acme", "live"), t0, "v", now.Add(time.Second))
	checkKV(t, s, kv("acme", "forever"), t0, "v", time.Time{})

	// The emptied session keeps its sequence: appending continues at 4.
	if _, err := s.Append(ctx, emptied, 0, messages(1, 1, nil), persistence.AppendOptions{}); !errors.Is(err, persistence.ErrSequenceConflict) {
		t.Fatalf("Append from 0 to a swept session: %v, want ErrSequenceConflict", err)
	}
	fresh := messages(4, 1, func(uint64) time.Time { return now })
	if meta := mustAppend(t, s, emptied, 3, fresh, persistence.AppendOptions{}); meta != (persistence.SessionMeta{LastSeq: 4, FirstSeq: 4}) {
		t.Fatalf("Append to a swept session = %+v, want {4 4}", meta)
	}

	stats, err = s.Sweep(ctx, now, retentionOf)
	if err != nil || stats != (persistence.SweepStats{}) {
		t.Fatalf("second Sweep at the same now = %+v, %v; want nothing removed", stats, err)
	}

	// Later, everything of acme but the freshest message has aged out.
	stats, err = s.Sweep(ctx, now.Add(time.Hour), retentionOf)
	if want := (persistence.SweepStats{Messages: 8, KVEntries: 1, Sessions: 2}); err != nil || stats != want {
		t.Fatalf("Sweep an hour later = %+v, %v; want %+v", stats, err, want)
	}
	checkMeta(t, s, aged, persistence.SessionMeta{LastSeq: 10, FirstSeq: 0})
	checkMeta(t, s, recent, persistence.SessionMeta{LastSeq: 2, FirstSeq: 0})
	checkMeta(t, s, emptied, persistence.SessionMeta{LastSeq: 4, FirstSeq: 4})
}
