// Package harness starts `parley serve` processes: the one launcher behind
// the end-to-end tests (tests/) and parley-bench. It builds the binary,
// gives every node its own ports (internal/ports) and data dir, joins the
// nodes to each other, waits until they are ready and stops them by the
// pid it started, never by name.
//
// Functions return errors rather than taking a *testing.T, so that a
// command-line tool can use them too; tests wrap them.
package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parley-chat/parley/internal/ports"
)

// Build compiles cmd/parley of the module rooted at moduleRoot into out.
func Build(ctx context.Context, moduleRoot, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/parley")
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/parley: %w\n%s", err, b)
	}
	return nil
}

// ModuleRoot is the directory of the go.mod of the module the current
// directory is in.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the parley module")
	}
	return filepath.Dir(gomod), nil
}

// Spec is how to start a group of nodes.
type Spec struct {
	Bin string // the parley binary (Build)
	Dir string // each node's data dir and log go under Dir/nodeN
	N   int    // how many nodes, each joined to all

	// LocalStore runs --store local; otherwise the replicated store, which
	// node1 bootstraps and the others join as voters.
	LocalStore bool

	// Plaintext runs the cluster's planes in the clear. By default every
	// node gets a certificate of a new cluster CA and the gossip key,
	// written to Dir/certs (WriteCredentials), as a production cluster
	// must run (docs/security.md).
	Plaintext bool

	// Args are more flags for node i (from 0); nil for none.
	Args func(i int) []string
}

// Start starts spec.N nodes and returns without waiting for them (see
// Cluster.WaitReady). On an error it stops whatever it started.
func Start(spec Spec) (_ *Cluster, err error) {
	type addrs struct{ http, gossip, remote, raft string }
	all := make([]addrs, spec.N)
	var seeds []string
	for i := range all {
		for _, a := range []*string{&all[i].http, &all[i].gossip, &all[i].remote, &all[i].raft} {
			if *a, err = ports.Free(); err != nil {
				return nil, err
			}
		}
		seeds = append(seeds, all[i].gossip)
	}
	c := &Cluster{}
	if !spec.Plaintext {
		creds, err := WriteCredentials(filepath.Join(spec.Dir, "certs"), spec.N)
		if err != nil {
			return nil, err
		}
		c.Credentials = &creds
	}
	defer func() {
		if err != nil {
			c.Kill()
		}
	}()
	for i, a := range all {
		name := fmt.Sprintf("node%d", i+1)
		dir := filepath.Join(spec.Dir, name)
		args := []string{"serve",
			"--node-name", name,
			"--http-addr", a.http, "--gossip-addr", a.gossip, "--remote-addr", a.remote,
			"--join", strings.Join(seeds, ","),
			"--data-dir", filepath.Join(dir, "data"),
			"--log-level", "warn"}
		switch {
		case spec.LocalStore:
			args = append(args, "--store", "local")
		case i == 0:
			args = append(args, "--raft-addr", a.raft, "--raft-bootstrap")
		default:
			args = append(args, "--raft-addr", a.raft)
		}
		if c.Credentials != nil {
			args = append(args, c.Credentials.Flags(name)...)
		}
		if spec.Args != nil {
			args = append(args, spec.Args(i)...)
		}
		n := &Node{Name: name, HTTP: a.http, Gossip: a.gossip, Remote: a.remote, Raft: a.raft,
			dir: dir, bin: spec.Bin, args: args}
		if err := n.start(); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// Cluster is a group of nodes started together. Nodes[i] is replaced by
// Restart's result when a test restarts it.
type Cluster struct {
	Nodes []*Node
	// Credentials are the nodes' certificates and gossip key; nil for a
	// Plaintext cluster.
	Credentials *Credentials
}

// URLs are the base URLs of every node's HTTP edge.
func (c *Cluster) URLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.URL(""))
	}
	return out
}

// Stop stops every node at once (Node.Stop).
func (c *Cluster) Stop(timeout time.Duration) {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Go(func() { n.Stop(timeout) })
	}
	wg.Wait()
}

// Kill sends SIGKILL to every node still running and waits until each has
// exited.
func (c *Cluster) Kill() {
	for _, n := range c.Nodes {
		n.Kill()
	}
}

// Node is one `parley serve` process. Its addresses stay the same across
// a Restart.
type Node struct {
	Name                       string
	HTTP, Gossip, Remote, Raft string // Raft is unused with --store local

	dir    string
	bin    string
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// LogPath is the file the node's stdout and stderr go to; a restarted
// node appends to it.
func (n *Node) LogPath() string { return filepath.Join(n.dir, "log") }

// start runs the process and reaps it when it exits.
func (n *Node) start() error {
	if err := os.MkdirAll(n.dir, 0o750); err != nil {
		return err
	}
	log, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, n.args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so a terminal's Ctrl-C reaches only the
	// caller, which then stops each node itself; and SIGKILL should the
	// caller die without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = log.Close()
		close(n.exited)
	}()
	return nil
}

// URL is the node's HTTP base URL followed by path.
func (n *Node) URL(path string) string { return "http://" + n.HTTP + path }

// Pid is the process id.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Args are the flags the node was started with (after the binary).
func (n *Node) Args() []string { return n.args }

// DataDir is the node's --data-dir.
func (n *Node) DataDir() string { return n.flag("--data-dir") }

func (n *Node) flag(name string) string {
	for i, a := range n.args {
		if a == name && i+1 < len(n.args) {
			return n.args[i+1]
		}
	}
	return ""
}

// Exited is closed once the process has exited.
func (n *Node) Exited() <-chan struct{} { return n.exited }

// ExitCode is the process's exit code once Exited is closed, -1 before or
// when it was killed by a signal.
func (n *Node) ExitCode() int {
	select {
	case <-n.exited:
		return n.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Signal sends sig to the process (SIGTERM: a graceful leave).
func (n *Node) Signal(sig os.Signal) error { return n.cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits until the process has exited; nothing if it
// already has.
func (n *Node) Kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// Stop sends SIGTERM (a graceful leave), waits up to timeout, then
// SIGKILL. It is safe to call twice.
func (n *Node) Stop(timeout time.Duration) {
	n.once.Do(func() {
		select {
		case <-n.exited:
			return
		default:
		}
		_ = n.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(timeout):
			n.Kill()
		}
	})
}

// Restart starts an exited node again with the same name, addresses and
// flags, on dataDir ("" for its old one). It returns the new process.
func (n *Node) Restart(dataDir string) (*Node, error) {
	select {
	case <-n.exited:
	default:
		return nil, fmt.Errorf("restart %s: still running", n.Name)
	}
	args := append([]string(nil), n.args...)
	if dataDir != "" {
		for i, a := range args {
			if a == "--data-dir" {
				args[i+1] = dataDir
			}
		}
	}
	next := &Node{Name: n.Name, HTTP: n.HTTP, Gossip: n.Gossip, Remote: n.Remote, Raft: n.Raft,
		dir: n.dir, bin: n.bin, args: args}
	if err := next.start(); err != nil {
		return nil, err
	}
	return next, nil
}

// Log is everything the node (and its earlier runs) wrote so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogPath())
	return string(b)
}
