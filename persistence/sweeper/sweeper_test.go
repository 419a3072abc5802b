package sweeper_test

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
	"github.com/parley-chat/parley/persistence/sweeper"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const sid = "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10"

// keysOnDisk counts the keys store holds, expired or not.
func keysOnDisk(t *testing.T, store *badgerstore.Store) int {
	t.Helper()
	n := 0
	if err := store.ScanKeys(t.Context(), "", func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEveryStoreIsSweptOncePerInterval(t *testing.T) {
	clk := testkit.NewFakeClock(t0)
	sessions := testkit.OpenStore(t, t.TempDir())
	limits := testkit.OpenStore(t, t.TempDir())

	key := persistence.SessionKey{Tenant: "acme", Session: sid}
	old := persistence.Message{Seq: 1, ID: "m1", Role: persistence.RoleUser, Content: "old", CreatedAt: t0}
	if _, err := sessions.Append(t.Context(), key, 0, []persistence.Message{old}, persistence.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	counter := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: "user:web"}
	if err := limits.Put(t.Context(), counter, []byte("window"), t0.Add(3*time.Minute), persistence.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	live := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: "user:other"}
	if err := limits.Put(t.Context(), live, []byte("window"), t0.Add(48*time.Hour), persistence.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	s := sweeper.Start(sweeper.Config{
		// The sessions store under a second name too: it is swept once.
		Stores:    map[string]persistence.Store{"sessions": sessions, "cache": sessions, "ratelimit": limits},
		Clock:     clk,
		Interval:  time.Hour,
		Retention: func(string) time.Duration { return 24 * time.Hour },
		Logger:    testkit.NewLogger(t),
	})
	t.Cleanup(s.Stop)

	if got := keysOnDisk(t, limits); got != 2 {
		t.Fatalf("before the sweep the counter store holds %d keys, want 2", got)
	}
	clk.Advance(time.Hour) // the counter has expired; the message is an hour old
	if got := keysOnDisk(t, limits); got != 1 {
		t.Fatalf("after the first sweep the counter store holds %d keys, want 1 (the live counter)", got)
	}
	if got := s.Stats(); got != (sweeper.Stats{Runs: 1, KVEntries: 1}) {
		t.Fatalf("stats after the first sweep %+v", got)
	}

	clk.Advance(24 * time.Hour) // the message is past its retention
	meta, err := sessions.Meta(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if meta.FirstSeq != 0 || meta.LastSeq != 1 {
		t.Fatalf("session meta after its message aged out %+v, want LastSeq 1 and nothing stored", meta)
	}
	if got := s.Stats(); got.Runs != 25 || got.Messages != 1 || got.Sessions != 1 || got.KVEntries != 1 || got.Failures != 0 {
		t.Fatalf("stats after 25 sweeps %+v", got)
	}
}

func TestStopEndsTheSweeps(t *testing.T) {
	clk := testkit.NewFakeClock(t0)
	limits := testkit.OpenStore(t, "")
	s := sweeper.Start(sweeper.Config{Stores: map[string]persistence.Store{"ratelimit": limits}, Clock: clk, Interval: time.Minute})
	clk.Advance(time.Minute)
	s.Stop()
	s.Stop()
	clk.Advance(time.Hour)
	if got := s.Stats().Runs; got != 1 {
		t.Fatalf("%d sweeps, want 1 (none after Stop)", got)
	}
	if got := clk.Timers(); got != 0 {
		t.Fatalf("%d timers left after Stop", got)
	}
}
