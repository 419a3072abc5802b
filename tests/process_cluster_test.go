// Package tests holds Parley's end-to-end tests: they build the parley
// binary and drive real processes over HTTP, as an operator would.
package tests

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/testkit"
)

func waitMembers(t *testing.T, nodes []*process, want []string) {
	t.Helper()
	for _, p := range nodes {
		testkit.Eventually(t, 20*time.Second, func() error {
			r, err := p.Readyz(context.Background())
			if err != nil {
				return err
			}
			if !slices.Equal(r.Members, want) || !slices.Equal(r.Placed, want) {
				return fmt.Errorf("%s sees %v and places grains on %v, want %v", p.Name, r.Members, r.Placed, want)
			}
			return nil
		})
	}
}

func TestThreeProcessesSurviveSIGKILLOfOne(t *testing.T) {
	nodes := replicatedCluster(t)
	waitMembers(t, nodes, []string{"node1", "node2", "node3"})
	sessions := make([]string, 12) // spread over every node's grains
	for i := range sessions {
		sessions[i] = uuid.NewString()
		if res, detail := chatOnce(nodes[i%3], sessions[i], "before", false, "before-"+sessions[i]); res != acked {
			t.Fatalf("chat before the kill: %s", detail)
		}
	}

	killed := time.Now()
	kill(t, nodes[2])
	waitMembers(t, nodes[:2], []string{"node1", "node2"})
	t.Logf("survivors agreed on membership %s after SIGKILL", time.Since(killed).Round(10*time.Millisecond))

	// Both survivors serve every session again, those whose grains were
	// on the killed node included: a chat is acknowledged (the same
	// Idempotency-Key while refused) and the history holds both messages.
	for i, sid := range sessions {
		via := nodes[i%2]
		testkit.Eventually(t, 20*time.Second, func() error {
			if res, detail := chatOnce(via, sid, "after", false, "after-"+sid); res != acked {
				return fmt.Errorf("chat via %s after the kill: %v %s", via.Name, res, detail)
			}
			return nil
		})
		got, err := fullHistory(via, sid)
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, m := range got {
			if m.Role == "user" {
				users = append(users, m.Content)
			}
		}
		if !slices.Equal(users, []string{"before", "after"}) {
			t.Fatalf("session %s via %s holds user messages %v, want [before after]", sid, via.Name, users)
		}
	}
}

// A member frozen for longer than the failure detector waits (a long GC
// or VM pause, SIGSTOP here) is declared failed; when it wakes it refutes
// that, and every node places grains on it again and serves through it.
// Proto.Actor shuts a member that left the topology out for good, so
// without letting it back in (cluster.MemberlistProvider.nodeUp) the
// others would never place on it again while it went on serving its own
// grains outside their placement.
func TestAMemberPausedPastFailureDetectionIsLetBackIn(t *testing.T) {
	nodes := replicatedCluster(t)
	waitMembers(t, nodes, []string{"node1", "node2", "node3"})
	if err := nodes[2].Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := nodes[2].Signal(syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	defer resume() // so that the cleanup can stop it
	waitMembers(t, nodes[:2], []string{"node1", "node2"})
	resume()
	waitMembers(t, nodes, []string{"node1", "node2", "node3"})

	// Every node serves sessions, those the paused node hosts among them:
	// twelve sessions spread over the three.
	for i := range 12 {
		sid := uuid.NewString()
		testkit.Eventually(t, 20*time.Second, func() error {
			if res, detail := chatOnce(nodes[i%3], sid, "after the pause", false, "pause-"+sid); res != acked {
				return fmt.Errorf("chat via %s: %v %s", nodes[i%3].Name, res, detail)
			}
			return nil
		})
	}
}

func TestSIGTERMLeavesGracefullyAndExitsZero(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	waitMembers(t, nodes, []string{"node1", "node2"})

	if err := nodes[1].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, nodes[1], 30*time.Second); code != 0 {
		t.Fatalf("node2 exited %d after SIGTERM, want 0; log:\n%s", code, nodes[1].Log())
	}
	waitMembers(t, nodes[:1], []string{"node1"})
}
