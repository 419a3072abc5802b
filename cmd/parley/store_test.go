package main

import (
	"slices"
	"testing"
	"time"
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
