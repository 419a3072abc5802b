package raftstore

import (
	"fmt"
	"testing"

	"github.com/parley-chat/parley/actors/testkit"
)

func TestLeaderlessForCountsFromTheLossOfQuorum(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.waitLeader()
	for _, i := range c.running() {
		if d := c.store(i).LeaderlessFor(); d != 0 {
			t.Fatalf("%s knows a leader and says leaderless for %s", c.nodes[i].id, d)
		}
	}
	// The leader and one follower go: the survivor has no quorum.
	survivor := (leader + 1) % 3
	for i := range 3 {
		if i != survivor {
			c.kill(i)
		}
	}
	s := c.store(survivor)
	var last int64
	testkit.Eventually(t, waitTimeout, func() error {
		d := s.LeaderlessFor()
		if d == 0 || int64(d) <= last {
			last = int64(d)
			return fmt.Errorf("leaderless for %s, not yet growing", d)
		}
		return nil
	})
	c.restart((survivor + 1) % 3)
	testkit.Eventually(t, waitTimeout, func() error {
		if d := s.LeaderlessFor(); d != 0 {
			return fmt.Errorf("quorum back, still leaderless for %s", d)
		}
		return nil
	})
}
