package tests

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/harness"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// process is one `parley serve` started by a test.
type process = harness.Node

// buildParley builds cmd/parley once per test binary run.
func buildParley(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "parley")
		buildErr = harness.Build(context.Background(), "..", binPath)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startCluster starts n nodes joined to each other, each with its own
// ports and data dir, running the replicated store (node1 bootstraps it;
// the others become voters), with extra flags for node i (from 0) unless
// extra is nil. It does not wait for them. Every process is killed, by its
// pid, when the test ends, and its log shown if the test failed.
func startCluster(t *testing.T, n int, extra func(i int) []string) []*process {
	t.Helper()
	c, err := harness.Start(harness.Spec{Bin: buildParley(t), Dir: t.TempDir(), N: n, Args: extra})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Nodes {
		cleanupProcess(t, p)
	}
	return c.Nodes
}

// restart starts an exited process again with the same flags, on dataDir
// ("" for its old one).
func restart(t *testing.T, p *process, dataDir string) *process {
	t.Helper()
	next, err := p.Restart(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	cleanupProcess(t, next)
	return next
}

func cleanupProcess(t *testing.T, p *process) {
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s log:\n%s", p.Name, p.Log())
		}
	})
}

// kill SIGKILLs p and waits until it has exited.
func kill(t *testing.T, p *process) {
	t.Helper()
	p.Kill()
}

// waitExit returns p's exit code, failing the test if it is still running
// after timeout.
func waitExit(t *testing.T, p *process, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.Exited():
		return p.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.Name, timeout)
		return -1
	}
}
