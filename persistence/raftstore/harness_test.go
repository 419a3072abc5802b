package raftstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
)

// testCluster is a group of in-process members on 127.0.0.1 free ports, in
// the spirit of raft's MakeCluster: members can be killed (Close, no
// leave), restarted on their Dir or on an empty one, and the test can wait
// for a leader or for every copy to match.
type testCluster struct {
	t     testing.TB
	cfg   Config // template: NodeID, Dir, BindAddr and Bootstrap are per member
	each  func(id string, cfg *Config)
	nodes []*testNode
}

type testNode struct {
	id    string
	dir   string
	addr  string // the raft address it last had
	store *Store // nil while stopped
}

// waitTimeout bounds every wait for the cluster to settle.
const waitTimeout = 15 * time.Second

// newTestCluster starts n members: the first bootstraps, the others join
// through AddVoter. tweak, if not nil, adjusts the configuration.
func newTestCluster(t testing.TB, n int, tweak func(*Config)) *testCluster {
	t.Helper()
	var each func(string, *Config)
	if tweak != nil {
		each = func(_ string, cfg *Config) { tweak(cfg) }
	}
	return newTestClusterEach(t, n, each)
}

// newTestClusterEach is newTestCluster with a tweak that sees which member
// it configures (its own TLS identity, say).
func newTestClusterEach(t testing.TB, n int, each func(id string, cfg *Config)) *testCluster {
	t.Helper()
	cfg := LocalConfig()
	c := &testCluster{t: t, cfg: cfg, each: each}
	// The first TempDir registers the removal of every member's dir; it
	// must run after the members are closed, and cleanups run last first.
	_ = t.TempDir()
	t.Cleanup(func() {
		for _, node := range c.nodes {
			if node.store != nil {
				if err := node.store.Close(); err != nil {
					t.Errorf("Close %s: %v", node.id, err)
				}
			}
		}
	})
	for i := range n {
		node := &testNode{id: fmt.Sprintf("node%d", i), dir: t.TempDir()}
		c.nodes = append(c.nodes, node)
		c.open(i, "127.0.0.1:0", i == 0)
		if i == 0 {
			c.waitLeader()
			continue
		}
		if err := c.nodes[0].store.AddVoter(node.id, node.addr); err != nil {
			t.Fatalf("AddVoter %s: %v", node.id, err)
		}
	}
	c.waitVoters(n)
	return c
}

// open starts member i on its dir.
func (c *testCluster) open(i int, bindAddr string, bootstrap bool) {
	c.t.Helper()
	node := c.nodes[i]
	cfg := c.cfg
	cfg.NodeID = node.id
	cfg.Dir = node.dir
	cfg.BindAddr = bindAddr
	cfg.Bootstrap = bootstrap
	cfg.Logger = testkit.NewLogger(c.t).With("node", node.id)
	if c.each != nil {
		c.each(node.id, &cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("Open %s: %v", node.id, err)
	}
	node.store = s
	node.addr = s.RaftAddr()
}

// store returns member i, which must be running.
func (c *testCluster) store(i int) *Store {
	c.t.Helper()
	if c.nodes[i].store == nil {
		c.t.Fatalf("%s is stopped", c.nodes[i].id)
	}
	return c.nodes[i].store
}

// kill stops member i abruptly: no leadership hand-over, no leave.
func (c *testCluster) kill(i int) {
	c.t.Helper()
	if err := c.nodes[i].store.Close(); err != nil {
		c.t.Fatalf("Close %s: %v", c.nodes[i].id, err)
	}
	c.nodes[i].store = nil
}

// restart starts a stopped member again on its dir and its old address.
func (c *testCluster) restart(i int) {
	c.t.Helper()
	c.open(i, c.nodes[i].addr, false)
}

// restartEmpty starts a stopped member again on an empty dir and a new
// port; it has to be added again to get any data.
func (c *testCluster) restartEmpty(i int) {
	c.t.Helper()
	c.nodes[i].dir = c.t.TempDir()
	c.open(i, "127.0.0.1:0", false)
}

// running returns the indexes of the running members.
func (c *testCluster) running() []int {
	var out []int
	for i, n := range c.nodes {
		if n.store != nil {
			out = append(out, i)
		}
	}
	return out
}

// waitLeader waits until every running member names the same running
// leader, and returns its index.
func (c *testCluster) waitLeader() int {
	c.t.Helper()
	leader := -1
	testkit.Eventually(c.t, waitTimeout, func() error {
		leader = -1
		var seen []string
		for _, i := range c.running() {
			id, _ := c.nodes[i].store.Leader()
			seen = append(seen, c.nodes[i].id+"→"+id)
			if id == "" {
				return fmt.Errorf("no leader known: %v", seen)
			}
			if id != c.nodes[c.running()[0]].store.leaderID() {
				return fmt.Errorf("members disagree on the leader: %v", seen)
			}
		}
		for _, i := range c.running() {
			if c.nodes[i].store.IsLeader() {
				leader = i
				return nil
			}
		}
		return fmt.Errorf("no running member leads: %v", seen)
	})
	return leader
}

func (s *Store) leaderID() string { id, _ := s.Leader(); return id }

// follower returns a running member that does not lead.
func (c *testCluster) follower() int {
	c.t.Helper()
	leader := c.waitLeader()
	for _, i := range c.running() {
		if i != leader {
			return i
		}
	}
	c.t.Fatal("no running follower")
	return -1
}

// waitVoters waits until every running member's configuration has n voters.
func (c *testCluster) waitVoters(n int) {
	c.t.Helper()
	testkit.Eventually(c.t, waitTimeout, func() error {
		for _, i := range c.running() {
			if v := c.nodes[i].store.Voters(); len(v) != n {
				return fmt.Errorf("%s sees voters %v, want %d", c.nodes[i].id, v, n)
			}
		}
		return nil
	})
}

// dump lists every key of member i's own copy, without asking the leader.
func (c *testCluster) dump(i int) string {
	c.t.Helper()
	var keys []string
	err := c.store(i).fsm.scanKeys(context.Background(), func(k []byte) error {
		keys = append(keys, string(k))
		return nil
	})
	if err != nil {
		c.t.Fatalf("scan %s: %v", c.nodes[i].id, err)
	}
	return strings.Join(keys, "\n")
}

// waitSameCopies waits until every running member's own copy has the same
// keys and the same messages of the given sessions.
func (c *testCluster) waitSameCopies(sessions ...persistence.SessionKey) {
	c.t.Helper()
	testkit.Eventually(c.t, waitTimeout, func() error {
		run := c.running()
		want, err := c.localState(run[0], sessions)
		if err != nil {
			return err
		}
		for _, i := range run[1:] {
			got, err := c.localState(i, sessions)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("copies of %s and %s differ:\n%s\n---\n%s", c.nodes[run[0]].id, c.nodes[i].id, want, got)
			}
		}
		return nil
	})
}

func (c *testCluster) localState(i int, sessions []persistence.SessionKey) (string, error) {
	var b strings.Builder
	b.WriteString(c.dump(i))
	for _, key := range sessions {
		r := c.store(i).fsm.query(context.Background(), query{kind: queryPage, session: key, limit: 1000})
		if r.err != nil {
			return "", r.err
		}
		for _, m := range r.msgs {
			fmt.Fprintf(&b, "\n%s %d %s %q", key.Session, m.Seq, m.ID, m.Content)
		}
	}
	return b.String(), nil
}

// localMeta reads a session's meta from member i's own copy.
func (c *testCluster) localMeta(i int, key persistence.SessionKey) persistence.SessionMeta {
	c.t.Helper()
	r := c.store(i).fsm.query(context.Background(), query{kind: queryMeta, session: key})
	if r.err != nil {
		c.t.Fatalf("local meta on %s: %v", c.nodes[i].id, r.err)
	}
	return r.meta
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func session(n int) persistence.SessionKey {
	return persistence.SessionKey{Tenant: "acme", Session: fmt.Sprintf("00000000-0000-4000-8000-%012d", n)}
}

func msg(seq uint64, id string) persistence.Message {
	return persistence.Message{Seq: seq, ID: id, Role: persistence.RoleUser, Content: "content " + id, TokenCount: int(seq), CreatedAt: t0.Add(time.Duration(seq) * time.Second)}
}

// appendOne appends one message after last through s.
func appendOne(t testing.TB, s *Store, key persistence.SessionKey, last uint64, id string) persistence.SessionMeta {
	t.Helper()
	meta, err := s.Append(t.Context(), key, last, []persistence.Message{msg(last+1, id)}, persistence.AppendOptions{})
	if err != nil {
		t.Fatalf("Append %s after %d through %s: %v", id, last, s.NodeID(), err)
	}
	return meta
}

// checkHistory fails unless reading key through s gives exactly messages
// 1..n with the ids ids[seq].
func checkHistory(t testing.TB, s *Store, key persistence.SessionKey, ids map[uint64]string, n uint64) {
	t.Helper()
	meta, err := s.Meta(t.Context(), key)
	if err != nil || meta != (persistence.SessionMeta{LastSeq: n, FirstSeq: min(n, 1)}) {
		t.Fatalf("Meta through %s = %+v, %v; want LastSeq %d", s.NodeID(), meta, err, n)
	}
	page, err := s.Page(t.Context(), key, 0, 1000, time.Time{})
	if err != nil {
		t.Fatalf("Page through %s: %v", s.NodeID(), err)
	}
	var seqs []uint64
	for _, m := range page {
		seqs = append(seqs, m.Seq)
		if want, ok := ids[m.Seq]; ok && m.ID != want {
			t.Fatalf("through %s: seq %d is %q, want %q", s.NodeID(), m.Seq, m.ID, want)
		}
	}
	var want []uint64
	for seq := n; seq >= 1; seq-- {
		want = append(want, seq)
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("through %s: sequences %v, want %v", s.NodeID(), seqs, want)
	}
}

// isRetryable reports whether err leaves a write's outcome open.
func isRetryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}
