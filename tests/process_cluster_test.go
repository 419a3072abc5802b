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
			if !slices.Equal(r.Members, want) {
				return fmt.Errorf("%s sees %v, want %v", p.Name, r.Members, want)
			}
			return nil
		})
	}
}

func TestThreeProcessesSurviveSIGKILLOfOne(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	waitMembers(t, nodes, []string{"node1", "node2", "node3"})

	killed := time.Now()
	kill(t, nodes[2])
	waitMembers(t, nodes[:2], []string{"node1", "node2"})
	t.Logf("survivors agreed on membership %s after SIGKILL", time.Since(killed).Round(10*time.Millisecond))
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
