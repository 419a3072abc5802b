package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parley-chat/parley/internal/harness"
)

// Process lifecycle budget.
const (
	readyTimeout = 30 * time.Second // until every node answers /readyz with every member
	stopTimeout  = 20 * time.Second // SIGTERM (graceful leave), then SIGKILL
)

// nodeSpec is how to start one group of `parley serve` processes.
type nodeSpec struct {
	bin        string        // the parley binary
	dir        string        // data dirs and logs go under it
	tenants    string        // tenants file
	n          int           // how many nodes, all joined to each other
	tokenDelay time.Duration // --mock-token-delay
	localStore bool          // --store local instead of the replicated store
	// plaintext runs a cluster's planes in the clear; by default a cluster
	// of more than one node runs mutual TLS and an encrypted gossip key.
	plaintext bool
}

// proc is one `parley serve` this tool started. It is stopped by the pid
// in cmd.Process, never by name.
type proc struct {
	name    string
	http    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// url is the node's base URL.
func (p *proc) url() string { return "http://" + p.http }

// pid is the node's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// nodes is a group of processes started together. stop is safe to call
// twice.
type nodes struct {
	procs      []*proc
	localStore bool // started with --store local
	plaintext  bool // a cluster with its planes in the clear
	once       sync.Once
}

// edges are the base URLs of every node's HTTP edge.
func (ns *nodes) edges() []string {
	var out []string
	for _, p := range ns.procs {
		out = append(out, p.url())
	}
	return out
}

// startNodes starts spec.n nodes on free 127.0.0.1 ports, each joined to
// all, and waits until every one is ready and sees every member. On any
// failure it stops whatever it started.
func startNodes(ctx context.Context, spec nodeSpec) (_ *nodes, err error) {
	type addrs struct{ http, gossip, remote, raft string }
	all := make([]addrs, spec.n)
	var seeds []string
	for i := range all {
		for _, a := range []*string{&all[i].http, &all[i].gossip, &all[i].remote, &all[i].raft} {
			if *a, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		seeds = append(seeds, all[i].gossip)
	}
	ns := &nodes{localStore: spec.localStore, plaintext: spec.plaintext && spec.n > 1}
	defer func() {
		if err != nil {
			ns.stop()
		}
	}()
	credentials := func(string) []string { return nil }
	if spec.n > 1 && !spec.plaintext {
		creds, err := harness.WriteCredentials(filepath.Join(spec.dir, "certs"), spec.n)
		if err != nil {
			return nil, err
		}
		credentials = creds.Flags
	}
	for i, a := range all {
		name := fmt.Sprintf("node%d", i+1)
		dir := filepath.Join(spec.dir, name)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		logPath := filepath.Join(dir, "log")
		logFile, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(spec.bin, "serve",
			"--node-name", name,
			"--http-addr", a.http, "--gossip-addr", a.gossip, "--remote-addr", a.remote,
			"--join", strings.Join(seeds, ","),
			"--data-dir", filepath.Join(dir, "data"),
			"--tenants", spec.tenants,
			"--mock-token-delay", spec.tokenDelay.String(),
			"--log-level", "warn")
		cmd.Args = append(cmd.Args, credentials(name)...)
		switch {
		case spec.localStore:
			cmd.Args = append(cmd.Args, "--store", "local")
		case i == 0:
			cmd.Args = append(cmd.Args, "--raft-addr", a.raft, "--raft-bootstrap")
		default:
			cmd.Args = append(cmd.Args, "--raft-addr", a.raft)
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// Its own process group, so a terminal's Ctrl-C reaches only this
		// tool, which then stops each node itself; and SIGKILL should this
		// tool die without stopping them.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			_ = logFile.Close()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		p := &proc{name: name, http: a.http, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
		go func() {
			_ = cmd.Wait()
			_ = logFile.Close()
			close(p.exited)
		}()
		ns.procs = append(ns.procs, p)
	}
	for _, p := range ns.procs {
		if err := waitReady(ctx, p, spec.n); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// stop sends SIGTERM to every node (a graceful leave), waits up to
// stopTimeout for each, then sends SIGKILL to those still running.
func (ns *nodes) stop() {
	ns.once.Do(func() {
		var wg sync.WaitGroup
		for _, p := range ns.procs {
			wg.Go(func() {
				select {
				case <-p.exited:
					return
				default:
				}
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-p.exited:
				case <-time.After(stopTimeout):
					progress("%s (pid %d) still running %s after SIGTERM: SIGKILL", p.name, p.pid(), stopTimeout)
					_ = p.cmd.Process.Kill()
					<-p.exited
				}
			})
		}
		wg.Wait()
	})
}

// waitReady polls /readyz until it is 200 and lists want members.
func waitReady(ctx context.Context, p *proc, want int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%s); its log:\n%s", p.name, p.cmd.ProcessState, logTail(p.logPath, 10))
		default:
		}
		last := readyOnce(ctx, p, want)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (%w); its log:\n%s", p.name, last, ctx.Err(), logTail(p.logPath, 10))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readyOnce(ctx context.Context, p *proc, want int) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url()+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Members []struct{ Name string } `json:"members"`
		Voters  []string                `json:"voters"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("readyz body: %w", err)
	}
	if len(body.Members) != want {
		return fmt.Errorf("readyz lists %d of %d members", len(body.Members), want)
	}
	// With the replicated store, a node serves writes once every node
	// votes (the leader adds them within about a second).
	if len(body.Voters) > 0 && len(body.Voters) != want {
		return fmt.Errorf("readyz lists %d of %d voters", len(body.Voters), want)
	}
	return nil
}

// freeAddr returns a 127.0.0.1 port free for TCP and UDP (gossip uses
// both) at the moment of the call.
func freeAddr() (string, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		_ = l.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		_ = pc.Close()
		return addr, nil
	}
	return "", errors.New("no free 127.0.0.1 port for TCP and UDP")
}

// rssBytes is the resident set of process pid (VmRSS in /proc/pid/status).
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// logTail is the last n lines of a node's log, indented.
func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	return "    " + strings.ReplaceAll(tail(string(b), n), "\n", "\n    ")
}
