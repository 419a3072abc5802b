package main

import (
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
	"github.com/parley-chat/parley/persistence/sweeper"
)

// The rate-limit counters live in a store of their own beside the
// replicated one; the node's sweep must reach them too, and remove the
// idle key's counters while it keeps those still counting.
func TestNodeSweepRemovesExpiredCountersFromDisk(t *testing.T) {
	cfg := serveConfig{NodeName: "n1", DataDir: t.TempDir(), Store: storeReplicated, RaftAddr: testkit.FreeAddr(t)}
	st, err := openStores(cfg, nil, testkit.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.close() })
	testkit.Eventually(t, 10*time.Second, func() error {
		if !st.replicated().IsLeader() {
			return errors.New("the one-member raft group has no leader yet")
		}
		return nil
	})

	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := testkit.NewFakeClock(t0)
	counter := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: "user:web"}
	if err := st.limits.Put(t.Context(), counter, []byte("window"), t0.Add(3*time.Minute), persistence.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	live := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: "user:busy"}
	if err := st.limits.Put(t.Context(), live, []byte("window"), t0.Add(sweeper.DefaultInterval+3*time.Minute), persistence.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	limits := st.limits.(*badgerstore.Store)
	onDisk := func() int {
		n := 0
		if err := limits.ScanKeys(t.Context(), "acme:", func([]byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := onDisk(); got != 2 {
		t.Fatalf("the counter store holds %d keys before the sweep, want 2", got)
	}

	sw := st.startSweeper(clk, func(string) session.Retention { return session.DefaultRetention }, testkit.NewLogger(t))
	t.Cleanup(sw.Stop)
	clk.Advance(sweeper.DefaultInterval)
	if got := onDisk(); got != 1 {
		t.Fatalf("the counter store holds %d keys after a sweep past the idle one's expiry, want 1", got)
	}
	if _, _, ok, err := st.limits.Get(t.Context(), live, clk.Now()); err != nil || !ok {
		t.Fatalf("the live counter after the sweep: found %v, %v; want it kept", ok, err)
	}
	if got := sw.Stats(); got.Runs != 1 || got.KVEntries != 1 || got.Failures != 0 {
		t.Fatalf("sweep stats %+v, want one run that removed the counter", got)
	}
}
