package raftstore

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/sweeper"
)

// sweepFixture is a three-member group on a fake clock at t0 holding one
// session message created at t0+1s and one KV entry expiring at t0+1h.
func sweepFixture(t *testing.T) (*testCluster, *testkit.FakeClock, persistence.SessionKey, persistence.KVKey) {
	t.Helper()
	clk := testkit.NewFakeClock(t0)
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.Clock = clk })
	key := session(1)
	appendOne(t, c.store(c.waitLeader()), key, 0, "m1")
	kv := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "k"}
	if err := c.store(c.waitLeader()).Put(t.Context(), kv, []byte("v"), t0.Add(time.Hour), persistence.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	c.waitSameCopies(key)
	return c, clk, key, kv
}

// copies returns every member's own copy of key's session and the KV keys.
func (c *testCluster) copies(key persistence.SessionKey) []string {
	c.t.Helper()
	var out []string
	for _, i := range c.running() {
		s, err := c.localState(i, []persistence.SessionKey{key})
		if err != nil {
			c.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestAFollowerWhoseClockIs30DaysAheadDeletesNothing(t *testing.T) {
	c, _, key, _ := sweepFixture(t)
	f := c.follower()

	// The follower's own clock, and so its sweeper's, jumped 30 days.
	ahead := testkit.NewFakeClock(t0.Add(30 * 24 * time.Hour))
	sw := sweeper.Start(sweeper.Config{
		Stores:    map[string]persistence.Store{"sessions": c.store(f)},
		Clock:     ahead,
		Interval:  time.Minute,
		Retention: func(string) time.Duration { return 24 * time.Hour },
		Logger:    testkit.NewLogger(t),
	})
	t.Cleanup(sw.Stop)
	ahead.Advance(time.Minute)
	if got := sw.Stats(); got != (sweeper.Stats{Runs: 1}) {
		t.Fatalf("the follower's sweep did %+v, want one run that removed nothing", got)
	}
	// A write after the sweep: once every copy has it, a sweep entry
	// before it would have been applied too.
	appendOne(t, c.store(c.waitLeader()), key, 1, "m2")
	c.checkNothingSwept(key)
}

// checkNothingSwept waits for every copy to hold the fixture's second
// message and fails unless each still holds the first one and the KV entry.
func (c *testCluster) checkNothingSwept(key persistence.SessionKey) {
	c.t.Helper()
	c.waitSameCopies(key)
	for _, i := range c.running() {
		if meta := c.localMeta(i, key); meta != (persistence.SessionMeta{LastSeq: 2, FirstSeq: 1}) {
			c.t.Fatalf("%s's copy of the session %+v, want both messages kept", c.nodes[i].id, meta)
		}
		if !strings.Contains(c.dump(i), "acme:k:cache:k") {
			c.t.Fatalf("%s's copy lost the KV entry:\n%s", c.nodes[i].id, c.dump(i))
		}
	}
}

func TestTheLeaderSweepsWithItsClockAndRefusesATimeAheadOfIt(t *testing.T) {
	c, clk, key, kv := sweepFixture(t)
	leader := c.store(c.waitLeader())
	retention := func(string) time.Duration { return 24 * time.Hour }

	// A now 30 days ahead of the leader's clock: refused, nothing deleted.
	before := c.copies(key)
	if _, err := leader.Sweep(t.Context(), clk.Now().Add(30*24*time.Hour), retention); !errors.Is(err, ErrSweepAhead) {
		t.Fatalf("sweep 30 days ahead of the leader's clock: %v, want ErrSweepAhead", err)
	}
	// Within a minute of it: accepted.
	clk.Advance(2 * time.Hour)
	stats, err := leader.Sweep(t.Context(), clk.Now().Add(MaxSweepLead), retention)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (persistence.SweepStats{KVEntries: 1}) {
		t.Fatalf("the leader's sweep removed %+v, want the expired KV entry only", stats)
	}
	c.waitSameCopies(key)
	for i, s := range c.copies(key) {
		if s == before[i] {
			t.Fatalf("member %d's copy kept the expired KV entry:\n%s", i, s)
		}
	}
	if _, _, ok, err := leader.Get(t.Context(), kv, time.Time{}); err != nil || ok {
		t.Fatalf("the expired entry after the sweep: found %v, %v", ok, err)
	}
	if meta := c.localMeta(c.follower(), key); meta.FirstSeq != 1 {
		t.Fatalf("a follower's copy of the session after the sweep %+v, want its message kept", meta)
	}
}

// The state machine checks a sweep against the leader's clock carried in
// the command, so whatever proposed it, every member refuses it alike.
func TestStateMachinesRefuseASweepAheadOfTheLeadersClock(t *testing.T) {
	c, _, key, _ := sweepFixture(t)
	leader := c.store(c.waitLeader())
	retention := map[string]time.Duration{"acme": time.Hour}

	ahead := command{op: opSweep, now: t0.Add(30 * 24 * time.Hour), leaderNow: t0, retention: retention}
	if _, err := leader.write(t.Context(), ahead); !errors.Is(err, ErrSweepAhead) {
		t.Fatalf("a committed sweep 30 days ahead of the leader's clock: %v, want ErrSweepAhead", err)
	}
	appendOne(t, leader, key, 1, "m2")
	c.checkNothingSwept(key)

	// The same sweep stamped with a leader's clock that agrees deletes.
	agreed := ahead
	agreed.leaderNow = ahead.now
	r, err := leader.write(t.Context(), agreed)
	if err != nil {
		t.Fatal(err)
	}
	if want := (persistence.SweepStats{Messages: 2, KVEntries: 1, Sessions: 1}); r.stats != want {
		t.Fatalf("the agreed sweep removed %+v, want %+v", r.stats, want)
	}
	c.waitSameCopies(key)
	for _, i := range c.running() {
		if meta := c.localMeta(i, key); meta != (persistence.SessionMeta{LastSeq: 2}) {
			t.Fatalf("member %d's session after the agreed sweep %+v", i, meta)
		}
	}
}

// TestEarlierSweepFormatsStillDecode reads a sweep as versions before
// format 3 wrote it: it carries no leader's clock and is carried out as it
// was then, so a log written by one replays to the same copy.
func TestEarlierSweepFormatsStillDecode(t *testing.T) {
	got, err := decodeCommand(mustHex(t, "010580a9a19a0d00010461636d658080c58bc6d101"))
	if err != nil {
		t.Fatal(err)
	}
	want := command{op: opSweep, now: t0, retention: map[string]time.Duration{"acme": time.Hour}}
	if !got.now.Equal(want.now) || !got.leaderNow.IsZero() {
		t.Fatalf("format 1 sweep decoded with now %v, leaderNow %v", got.now, got.leaderNow)
	}
	got.now = want.now
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("format 1 sweep decoded as %+v, want %+v", got, want)
	}
}
