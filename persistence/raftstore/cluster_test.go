package raftstore

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
)

func TestWritesThroughAnyMemberAreReadFromEvery(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, nil)
	leader := c.waitLeader()

	var sessions []persistence.SessionKey
	for i := range c.nodes {
		key := session(i)
		sessions = append(sessions, key)
		for seq := range uint64(3) {
			appendOne(t, c.store(i), key, seq, fmt.Sprintf("n%d-m%d", i, seq+1))
		}
		kv := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "from-" + c.nodes[i].id}
		if err := c.store(i).Put(t.Context(), kv, []byte(c.nodes[i].id), time.Time{}, persistence.PutOptions{}); err != nil {
			t.Fatalf("Put through %s (leader %d): %v", c.nodes[i].id, leader, err)
		}
	}

	for j := range c.nodes {
		for i, key := range sessions {
			ids := map[uint64]string{1: fmt.Sprintf("n%d-m1", i), 2: fmt.Sprintf("n%d-m2", i), 3: fmt.Sprintf("n%d-m3", i)}
			checkHistory(t, c.store(j), key, ids, 3)
			kv := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "from-" + c.nodes[i].id}
			v, _, ok, err := c.store(j).Get(t.Context(), kv, t0)
			if err != nil || !ok || string(v) != c.nodes[i].id {
				t.Fatalf("Get %s through %s = %q, %v, %v", kv.Key, c.nodes[j].id, v, ok, err)
			}
		}
	}
	// Every member's own copy, not only the leader's, has everything.
	c.waitSameCopies(sessions...)
}

// TestLeaderDeathLosesNoAcknowledgedAppend kills the leader while a writer
// appends through another member, retrying as a session grain does: every
// append acknowledged before, during and after the kill is on the
// survivors, with no gap and no duplicate.
func TestLeaderDeathLosesNoAcknowledgedAppend(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, nil)
	victim := c.waitLeader()
	via := c.follower()
	key := session(1)

	var acked atomic.Uint64 // highest acknowledged seq
	ids := make(map[uint64]string)
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		writerDone <- writeUntil(t, c.store(via), key, stop, &acked, ids)
	}()

	waitAcked := func(n uint64) {
		t.Helper()
		testkit.Eventually(t, waitTimeout, func() error {
			if got := acked.Load(); got < n {
				return fmt.Errorf("%d appends acknowledged, waiting for %d", got, n)
			}
			return nil
		})
	}
	waitAcked(20)
	beforeKill := acked.Load()
	killed := time.Now()
	c.kill(victim)
	waitAcked(beforeKill + 2) // one more may have been in flight at the kill
	t.Logf("appends acknowledged again %s after the leader was killed", time.Since(killed).Round(time.Millisecond))
	if newLeader := c.waitLeader(); newLeader == victim {
		t.Fatalf("the killed member still leads")
	}
	waitAcked(beforeKill + 20)
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}

	n := acked.Load()
	for _, i := range c.running() {
		checkHistory(t, c.store(i), key, ids, n)
	}
	// Writes through the other survivor work too.
	other := 3 - victim - via
	appendOne(t, c.store(other), key, n, "after")
	c.waitSameCopies(key)
	if got := c.localMeta(via, key).LastSeq; got != n+1 {
		t.Fatalf("%s's own copy ends at %d, want %d", c.nodes[via].id, got, n+1)
	}
}

// writeUntil appends messages 1, 2, 3… to key through s until stop is
// closed. An append whose outcome is unknown (ErrUnavailable) is resolved
// the way a grain does: reload the meta; if the message landed, go on, else
// send it again. It records every acknowledged seq in ids and the highest in
// acked.
func writeUntil(t testing.TB, s *Store, key persistence.SessionKey, stop <-chan struct{}, acked *atomic.Uint64, ids map[uint64]string) error {
	for seq := uint64(1); ; seq++ {
		id := "m" + strconv.FormatUint(seq, 10)
		for attempt := 0; ; attempt++ {
			select {
			case <-stop:
				return nil
			default:
			}
			if attempt == 200 {
				return fmt.Errorf("append %d: still failing after %d attempts", seq, attempt)
			}
			_, err := s.Append(t.Context(), key, seq-1, []persistence.Message{msg(seq, id)}, persistence.AppendOptions{})
			if err == nil {
				ids[seq] = id
				acked.Store(seq)
				break
			}
			if !isRetryable(err) && !errors.Is(err, persistence.ErrSequenceConflict) {
				return fmt.Errorf("append %d: %w", seq, err)
			}
			// Did it land anyway? Only this writer writes, so a LastSeq of
			// seq means it did.
			meta, merr := s.Meta(t.Context(), key)
			if merr != nil {
				continue
			}
			if meta.LastSeq == seq {
				ids[seq] = id // stored, though its answer was lost
				acked.Store(seq)
				break
			}
			if meta.LastSeq != seq-1 {
				return fmt.Errorf("append %d: LastSeq is %d", seq, meta.LastSeq)
			}
		}
	}
}

// TestNoQuorumRefusesWritesAndRestartedMembersCatchUp stops two of three
// members, leaving the leader or a follower: the survivor refuses writes and
// reads within ApplyTimeout, with ErrNoQuorum, and acknowledges nothing.
// Restarted on their dirs, the stopped members catch up and the group
// writes again.
func TestNoQuorumRefusesWritesAndRestartedMembersCatchUp(t *testing.T) {
	t.Parallel()
	for _, survivorLeads := range []bool{true, false} {
		t.Run(fmt.Sprintf("survivor leads %v", survivorLeads), func(t *testing.T) {
			t.Parallel()
			testNoQuorum(t, survivorLeads)
		})
	}
}

func testNoQuorum(t *testing.T, survivorLeads bool) {
	const applyTimeout = time.Second
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.ApplyTimeout = applyTimeout })
	key := session(1)
	for seq := range uint64(5) {
		appendOne(t, c.store(int(seq%3)), key, seq, fmt.Sprintf("m%d", seq+1))
	}

	survivor := c.waitLeader()
	if !survivorLeads {
		survivor = c.follower()
	}
	for _, i := range c.running() {
		if i != survivor {
			c.kill(i)
		}
	}
	s := c.store(survivor)
	// It fails rather than hangs (the test's own deadline is the bound:
	// durations on a loaded machine are make chaos's business).
	_, err := s.Append(t.Context(), key, 5, []persistence.Message{msg(6, "refused")}, persistence.AppendOptions{})
	if !errors.Is(err, ErrNoQuorum) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append without a quorum: %v, want ErrNoQuorum", err)
	}
	if err := s.Put(t.Context(), persistence.KVKey{Tenant: "acme", Space: "cache", Key: "k"}, []byte("v"), time.Time{}, persistence.PutOptions{}); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("Put without a quorum: %v, want ErrNoQuorum", err)
	}
	if _, err := s.Meta(t.Context(), key); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("Meta without a quorum: %v, want ErrNoQuorum", err)
	}

	// One member back on its dir restores the quorum; it catches up.
	back := (survivor + 1) % 3
	c.restart(back)
	c.waitLeader()
	meta, err := s.Meta(t.Context(), key)
	if err != nil {
		t.Fatalf("Meta after the restart: %v", err)
	}
	// The refused append was never acknowledged, but a leader that lost
	// its quorum cannot know whether it will be committed: it is when the
	// old leader's log wins the next election. Nothing else was written.
	if meta.LastSeq != 5 && !(survivorLeads && meta.LastSeq == 6) {
		t.Fatalf("LastSeq %d after the restart, want 5 (or 6 if the refused append was committed later)", meta.LastSeq)
	}
	appendOne(t, c.store(back), key, meta.LastSeq, "after")

	c.restart(3 - survivor - back)
	c.waitSameCopies(key)
	for _, i := range c.running() {
		if got := c.localMeta(i, key).LastSeq; got != meta.LastSeq+1 {
			t.Fatalf("%s's own copy ends at %d, want %d", c.nodes[i].id, got, meta.LastSeq+1)
		}
	}
}

// TestEmptyMemberRebuildsFromSnapshot restarts a member on an empty dir
// after the others compacted their logs: added again as a voter, it gets a
// snapshot and the log after it, and its copy matches theirs.
func TestEmptyMemberRebuildsFromSnapshot(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.TrailingLogs = 2
		cfg.SnapshotThreshold = 1 << 20 // only the explicit snapshots below
	})
	key := session(1)
	for seq := range uint64(30) {
		appendOne(t, c.store(int(seq)%3), key, seq, fmt.Sprintf("m%d", seq+1))
	}
	kv := persistence.KVKey{Tenant: "globex", Space: persistence.SpaceRateLimit, Key: "user:1"}
	if err := c.store(0).Put(t.Context(), kv, []byte("5"), t0.Add(time.Hour), persistence.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	c.waitSameCopies(key)

	victim := c.follower()
	c.kill(victim)
	for _, i := range c.running() {
		if err := c.store(i).Snapshot(); err != nil {
			t.Fatalf("Snapshot on %s: %v", c.nodes[i].id, err)
		}
	}
	// Writes after the snapshot reach the rebuilt member through the log.
	appendOne(t, c.store(c.running()[0]), key, 30, "m31")

	helper := c.running()[0]
	if err := c.store(helper).RemoveServer(c.nodes[victim].id); err != nil {
		t.Fatalf("RemoveServer: %v", err)
	}
	c.restartEmpty(victim)
	if err := c.store(helper).AddVoter(c.nodes[victim].id, c.nodes[victim].addr); err != nil {
		t.Fatalf("AddVoter: %v", err)
	}
	c.waitVoters(3)
	c.waitSameCopies(key)
	if got := c.localMeta(victim, key); got != (persistence.SessionMeta{LastSeq: 31, FirstSeq: 1}) {
		t.Fatalf("rebuilt copy has meta %+v", got)
	}
	if idx := c.store(victim).Stats()["last_snapshot_index"]; idx == "0" || idx == "" {
		t.Fatalf("rebuilt member's last_snapshot_index is %q: it caught up without a snapshot", idx)
	}
	// And it serves and takes writes like the others.
	checkHistory(t, c.store(victim), key, map[uint64]string{1: "m1", 31: "m31"}, 31)
	appendOne(t, c.store(victim), key, 31, "m32")
	v, _, ok, err := c.store(victim).Get(t.Context(), kv, t0)
	if err != nil || !ok || string(v) != "5" {
		t.Fatalf("Get through the rebuilt member = %q, %v, %v", v, ok, err)
	}
	// The usage the snapshot carried plus the log after it is the others'.
	c.waitSameCopies(key)
	c.checkSameUsage(key.Tenant)
}

// checkSameUsage fails unless every running member accounts tenant alike,
// and for something.
func (c *testCluster) checkSameUsage(tenant string) {
	c.t.Helper()
	var first persistence.Usage
	for n, i := range c.running() {
		u, err := c.store(i).Usage(tenant)
		if err != nil {
			c.t.Fatalf("Usage on %s: %v", c.nodes[i].id, err)
		}
		if n == 0 {
			first = u
			if u.Sessions == 0 || u.StoredBytes == 0 {
				c.t.Fatalf("usage %+v on %s; want the tenant's session", u, c.nodes[i].id)
			}
		} else if u != first {
			c.t.Fatalf("usage %+v on %s, %+v on %s", u, c.nodes[i].id, first, c.nodes[c.running()[0]].id)
		}
	}
}

// TestQuotaRefusalThroughAFollowerNamesTheQuota: a write over quota is
// refused by the state machine of every member alike, and the member that
// forwarded it still sees which quota.
func TestQuotaRefusalThroughAFollowerNamesTheQuota(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, nil)
	f := c.store(c.follower())
	q := persistence.Quota{MaxCacheEntries: 1}
	kv := func(k string) persistence.KVKey {
		return persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: k}
	}
	if err := f.Put(t.Context(), kv("a"), []byte("v"), time.Time{}, persistence.PutOptions{Quota: q}); err != nil {
		t.Fatalf("Put within the quota: %v", err)
	}
	err := f.Put(t.Context(), kv("b"), []byte("v"), time.Time{}, persistence.PutOptions{Quota: q})
	if !errors.Is(err, persistence.ErrQuotaExceeded) || persistence.ExceededQuota(err) != persistence.QuotaCacheEntries {
		t.Fatalf("Put over the quota through a follower = %v; want ErrQuotaExceeded naming %s", err, persistence.QuotaCacheEntries)
	}
	key := session(1)
	appendOne(t, f, key, 0, "m1")
	c.waitSameCopies(key)
	c.checkSameUsage("acme")
}

// TestConcurrentConditionalAppendsThroughDifferentMembers races two
// appenders with the same expectedLast through two members, as two
// activations of one session on two nodes would: exactly one wins.
func TestConcurrentConditionalAppendsThroughDifferentMembers(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, nil)
	key := session(1)
	const rounds = 20
	for round := 0; round < rounds; {
		last := uint64(round)
		members := []int{round % 3, (round + 1) % 3}
		errs := make([]error, len(members))
		ids := make([]string, len(members))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w, m := range members {
			ids[w] = fmt.Sprintf("r%d-w%d", round, w)
			wg.Go(func() {
				<-start
				_, errs[w] = c.store(m).Append(t.Context(), key, last, []persistence.Message{msg(last+1, ids[w])}, persistence.AppendOptions{})
			})
		}
		close(start)
		wg.Wait()
		// A write that failed with ErrUnavailable (a leadership change
		// under load) has an unknown outcome: as a grain does, read what
		// is stored at last+1 to learn whether it was applied.
		var stored string
		for _, err := range errs {
			if errors.Is(err, ErrUnavailable) {
				stored = storedAt(t, c.store(2), key, last+1)
				break
			}
		}
		winners := 0
		for w, err := range errs {
			switch {
			case err == nil, errors.Is(err, ErrUnavailable) && stored == ids[w]:
				winners++
			case errors.Is(err, persistence.ErrSequenceConflict), errors.Is(err, ErrUnavailable):
			default:
				t.Fatalf("round %d: writer %d through %s: %v", round, w, c.nodes[members[w]].id, err)
			}
		}
		if winners == 0 && stored == "" {
			continue // both outcomes unknown and neither applied: the round again
		}
		if winners != 1 {
			t.Fatalf("round %d: %d writers won (%v), want exactly one", round, winners, errs)
		}
		round++
	}
	checkHistory(t, c.store(2), key, nil, rounds)
}

// TestRestartRebuildsStateMachine restarts a single member: its state
// machine is rebuilt from the snapshot and the log after it.
func TestRestartRebuildsStateMachine(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 1, nil)
	key := session(1)
	ids := make(map[uint64]string)
	for seq := range uint64(10) {
		ids[seq+1] = fmt.Sprintf("m%d", seq+1)
		appendOne(t, c.store(0), key, seq, ids[seq+1])
		if seq == 4 {
			if err := c.store(0).Snapshot(); err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
		}
	}
	c.kill(0)
	c.restart(0)
	checkHistory(t, c.store(0), key, ids, 10)
	appendOne(t, c.store(0), key, 10, "m11")
}

// TestLeadershipTransferHandsOverBeforeAStop: the leader hands leadership
// to another voter, which then takes writes; a member that does not lead,
// or the only voter, does nothing when asked; nothing written before is
// lost.
func TestLeadershipTransferHandsOverBeforeAStop(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, nil)
	old := c.waitLeader()
	key := session(1)
	appendOne(t, c.store(old), key, 0, "before")

	if err := c.store(c.follower()).TransferLeadership(); err != nil {
		t.Fatalf("TransferLeadership on a follower: %v, want nil (nothing to do)", err)
	}
	if err := c.store(old).TransferLeadership(); err != nil {
		t.Fatal(err)
	}
	if c.store(old).IsLeader() {
		t.Fatalf("%s still leads after TransferLeadership", c.nodes[old].id)
	}
	c.kill(old)
	next := c.waitLeader()
	appendOne(t, c.store(next), key, 1, "after")
	checkHistory(t, c.store(next), key, map[uint64]string{1: "before", 2: "after"}, 2)

	// The only voter (make run) has nobody to hand over to.
	single := newTestCluster(t, 1, nil)
	single.waitLeader()
	if err := single.store(0).TransferLeadership(); err != nil {
		t.Fatalf("TransferLeadership on the only voter: %v, want nil", err)
	}
}

// storedAt is the id of the message at seq in key, read through s once
// the group answers; "" when there is none.
func storedAt(t *testing.T, s *Store, key persistence.SessionKey, seq uint64) string {
	t.Helper()
	var id string
	testkit.Eventually(t, 10*time.Second, func() error {
		page, err := s.Page(t.Context(), key, seq+1, 1, time.Time{})
		if err != nil {
			return err
		}
		id = ""
		if len(page) == 1 && page[0].Seq == seq {
			id = page[0].ID
		}
		return nil
	})
	return id
}
