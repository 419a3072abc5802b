package raftstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
)

// TestDeadVotersAreThoseAbsentForTheTimeout walks the reconciler's view
// through a failure, a return, and a failure that lasts.
func TestDeadVotersAreThoseAbsentForTheTimeout(t *testing.T) {
	const timeout = time.Minute
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	voters := []string{"node1", "node2", "node3", "node4"}
	all := map[string]string{"node1": "a1", "node2": "a2", "node3": "a3", "node4": "a4"}
	without := func(names ...string) map[string]string {
		m := map[string]string{}
		for k, v := range all {
			if !slices.Contains(names, k) {
				m[k] = v
			}
		}
		return m
	}
	absent := map[string]time.Time{}
	steps := []struct {
		at      time.Duration
		members map[string]string
		want    []string
	}{
		{0, all, nil},
		{time.Second, without("node3"), nil},                // node3 fails
		{50 * time.Second, without("node3"), nil},           // not long enough
		{55 * time.Second, all, nil},                        // it restarted: forgotten
		{61 * time.Second, all, nil},                        // a minute after it first failed: still fine
		{70 * time.Second, without("node3", "node4"), nil},  // both fail
		{129 * time.Second, without("node3", "node4"), nil}, // 59 s later
		{130 * time.Second, without("node3", "node4"), []string{"node3", "node4"}},
		{131 * time.Second, without("node4"), []string{"node4"}}, // node3 is back
	}
	for _, s := range steps {
		got := deadVoters(voters, s.members, absent, t0.Add(s.at), timeout)
		if !slices.Equal(got, s.want) {
			t.Fatalf("at +%s: dead %v, want %v", s.at, got, s.want)
		}
	}
	// A voter removed from the configuration is forgotten too.
	deadVoters([]string{"node1", "node2", "node3"}, without("node4"), absent, t0.Add(132*time.Second), timeout)
	if _, ok := absent["node4"]; ok {
		t.Fatal("a voter no longer in the configuration is still tracked")
	}
}

// fakeVoters is a voterStore whose peers' certificates name whom names
// says: member -> the name its certificate carries.
type fakeVoters struct {
	leader  bool
	tls     bool
	voters  []string
	names   map[string]string
	added   []string
	removed []string
}

var _ voterStore = (*fakeVoters)(nil)

func (f *fakeVoters) IsLeader() bool   { return f.leader }
func (f *fakeVoters) Voters() []string { return slices.Sorted(slices.Values(f.voters)) }
func (f *fakeVoters) TLS() bool        { return f.tls }
func (f *fakeVoters) AddVoter(id, addr string) error {
	f.voters = append(f.voters, id)
	f.added = append(f.added, id)
	return nil
}
func (f *fakeVoters) RemoveServer(id string) error {
	f.voters = slices.DeleteFunc(f.voters, func(v string) bool { return v == id })
	f.removed = append(f.removed, id)
	return nil
}
func (f *fakeVoters) VerifyPeer(_ context.Context, name, addr string) error {
	if f.names[name] != name {
		return fmt.Errorf("certificate at %s names %q", addr, f.names[name])
	}
	return nil
}

func TestReconcilerAddsOnlyMembersWhoseCertificateNamesThem(t *testing.T) {
	store := &fakeVoters{leader: true, tls: true, voters: []string{"node1"},
		names: map[string]string{"node1": "node1", "node2": "node2", "rogue": "node3"}}
	members := map[string]string{"node1": "a1", "node2": "a2", "rogue": "a9"}
	r := newReconciler(store, ReconcilerConfig{Members: func() map[string]string { return members }, DeadAfter: time.Minute, Logger: testkit.NewLogger(t)})
	t0 := time.Now()
	r.reconcile(t0)
	r.reconcile(t0.Add(time.Second))
	if !slices.Equal(store.added, []string{"node2"}) {
		t.Fatalf("added %v, want only node2: rogue's certificate names node3", store.added)
	}

	// Not the leader: nothing changes, whoever joins.
	store.leader = false
	members["node4"] = "a4"
	store.names["node4"] = "node4"
	r.reconcile(t0.Add(2 * time.Second))
	if len(store.added) != 1 {
		t.Fatalf("a follower added %v", store.added[1:])
	}

	// Without TLS there is no identity to check (a loopback cluster).
	plain := &fakeVoters{leader: true, voters: []string{"node1"}, names: map[string]string{}}
	newReconciler(plain, ReconcilerConfig{Members: func() map[string]string { return map[string]string{"node1": "a1", "node2": "a2"} }, DeadAfter: time.Minute}).reconcile(t0)
	if !slices.Equal(plain.added, []string{"node2"}) {
		t.Fatalf("without TLS added %v, want node2", plain.added)
	}
}

func TestReconcilerRemovesOneDeadVoterPerRoundWhileMinVotersStay(t *testing.T) {
	store := &fakeVoters{leader: true, voters: []string{"node1", "node2", "node3", "node4", "node5"}}
	members := map[string]string{"node1": "a1", "node2": "a2", "node3": "a3"}
	r := newReconciler(store, ReconcilerConfig{Members: func() map[string]string { return members }, DeadAfter: time.Minute})
	t0 := time.Now()
	r.reconcile(t0)
	r.reconcile(t0.Add(59 * time.Second))
	if len(store.removed) != 0 {
		t.Fatalf("removed %v before the timeout", store.removed)
	}
	r.reconcile(t0.Add(time.Minute))
	if !slices.Equal(store.removed, []string{"node4"}) {
		t.Fatalf("removed %v, want node4 alone in the first round", store.removed)
	}
	r.reconcile(t0.Add(61 * time.Second))
	if !slices.Equal(store.removed, []string{"node4", "node5"}) {
		t.Fatalf("removed %v, want node4 then node5", store.removed)
	}
	// Three voters left: node3's death is waited out, not acted on.
	delete(members, "node3")
	r.reconcile(t0.Add(2 * time.Minute))
	r.reconcile(t0.Add(4 * time.Minute))
	if len(store.removed) != 2 {
		t.Fatalf("removed %v below MinVoters", store.removed)
	}
}
