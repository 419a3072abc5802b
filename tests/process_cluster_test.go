// Package tests holds Parley's end-to-end tests: they build the parley
// binary and drive real processes over HTTP, as an operator would.
package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
)

type readyz struct {
	Status  string `json:"status"`
	Members []struct {
		Name string `json:"name"`
	} `json:"members"`
}

// memberNames asks node's /readyz who is in the cluster; an error unless
// the node answers 200.
func memberNames(p *process) ([]string, error) {
	resp, err := http.Get(p.url("/readyz"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body readyz
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s /readyz: %w", p.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /readyz: %d", p.name, resp.StatusCode)
	}
	var names []string
	for _, m := range body.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names, nil
}

func waitMembers(t *testing.T, nodes []*process, want []string) {
	t.Helper()
	for _, p := range nodes {
		testkit.Eventually(t, 20*time.Second, func() error {
			got, err := memberNames(p)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s sees %v, want %v", p.name, got, want)
			}
			return nil
		})
	}
}

func TestThreeProcessesSurviveSIGKILLOfOne(t *testing.T) {
	bin := buildParley(t)
	nodes := startCluster(t, bin, 3)
	waitMembers(t, nodes, []string{"node1", "node2", "node3"})

	killed := time.Now()
	if err := nodes[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, nodes[:2], []string{"node1", "node2"})
	t.Logf("survivors agreed on membership %s after SIGKILL", time.Since(killed).Round(10*time.Millisecond))
}

func TestSIGTERMLeavesGracefullyAndExitsZero(t *testing.T) {
	bin := buildParley(t)
	nodes := startCluster(t, bin, 2)
	waitMembers(t, nodes, []string{"node1", "node2"})

	if err := nodes[1].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := nodes[1].wait(t, 30*time.Second); code != 0 {
		t.Fatalf("node2 exited %d after SIGTERM, want 0; log:\n%s", code, nodes[1].log.String())
	}
	waitMembers(t, nodes[:1], []string{"node1"})
}
