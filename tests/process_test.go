package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
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
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/parley").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is one `parley serve` started by a test.
type process struct {
	name   string
	http   string
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
}

func (p *process) url(path string) string { return "http://" + p.http + path }

// wait returns the exit code, failing the test if the process is still
// running after timeout.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.name, timeout)
		return -1
	}
}

// startCluster starts n nodes joined through node1's gossip address, each
// with its own free ports and data dir, running the replicated store
// (node1 bootstraps it; the others become voters). Every process is killed when the
// test ends (by its pid, through cmd.Process).
func startCluster(t *testing.T, bin string, n int) []*process {
	t.Helper()
	return startClusterWith(t, bin, n, nil)
}

// startClusterWith is startCluster with extra flags for node i (from 0).
// Every node runs with the cluster's TLS certificates and gossip key
// (clusterCredentials), as a production cluster does.
func startClusterWith(t *testing.T, bin string, n int, extra func(i int) []string) []*process {
	t.Helper()
	creds := clusterCredentials(t, n)
	type ports struct{ http, gossip, remote, raft string }
	all := make([]ports, n)
	var seeds []string
	for i := range all {
		all[i] = ports{testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)}
		seeds = append(seeds, all[i].gossip)
	}
	var procs []*process
	for i, pt := range all {
		name := fmt.Sprintf("node%d", i+1)
		cmd := exec.Command(bin, "serve",
			"--node-name", name,
			"--http-addr", pt.http, "--gossip-addr", pt.gossip, "--remote-addr", pt.remote, "--raft-addr", pt.raft,
			"--join", strings.Join(seeds, ","),
			"--data-dir", filepath.Join(t.TempDir(), "data"),
			"--log-level", "warn")
		if i == 0 {
			cmd.Args = append(cmd.Args, "--raft-bootstrap")
		}
		cmd.Args = append(cmd.Args, creds.Flags(name)...)
		if extra != nil {
			cmd.Args = append(cmd.Args, extra(i)...)
		}
		procs = append(procs, launch(t, name, pt.http, cmd.Args))
	}
	return procs
}

// launch starts `parley` with args (args[0] is the binary) and kills it,
// by its pid, when the test ends.
func launch(t *testing.T, name, httpAddr string, args []string) *process {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	p := &process{name: name, http: httpAddr, cmd: cmd, log: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.log.String())
		}
	})
	return p
}

// restart starts a stopped process again with the same flags, on dataDir
// (its old one, or a new empty one).
func restart(t *testing.T, p *process, dataDir string) *process {
	t.Helper()
	args := slices.Clone(p.cmd.Args)
	if i := slices.Index(args, "--data-dir"); i >= 0 {
		args[i+1] = dataDir
	}
	return launch(t, p.name, p.http, args)
}

// dataDir is the --data-dir a process was started with.
func dataDir(p *process) string {
	i := slices.Index(p.cmd.Args, "--data-dir")
	return p.cmd.Args[i+1]
}

// syncBuffer is a bytes.Buffer a process writes to while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
