package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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
	// extra are more `parley serve` flags, for every node.
	extra []string
}

// nodes is a group of processes started together, through the harness
// the end-to-end tests use too. stop is safe to call twice.
type nodes struct {
	*harness.Cluster
	localStore bool // started with --store local
	plaintext  bool // a cluster with its planes in the clear
	once       sync.Once
}

// startNodes starts spec.n nodes on their own 127.0.0.1 ports, each joined
// to all, and waits until every one is ready and sees every member (and
// voter). On any failure it stops whatever it started.
func startNodes(ctx context.Context, spec nodeSpec) (*nodes, error) {
	c, err := harness.Start(harness.Spec{
		Bin: spec.bin, Dir: spec.dir, N: spec.n, LocalStore: spec.localStore, Plaintext: spec.plaintext,
		Args: func(int) []string {
			return append([]string{"--tenants", spec.tenants, "--mock-token-delay", spec.tokenDelay.String()}, spec.extra...)
		},
	})
	if err != nil {
		return nil, err
	}
	ns := &nodes{Cluster: c, localStore: spec.localStore, plaintext: spec.plaintext && spec.n > 1}
	if err := c.WaitReady(ctx, readyTimeout); err != nil {
		ns.stop()
		return nil, err
	}
	return ns, nil
}

// stop sends SIGTERM to every node (a graceful leave), waits up to
// stopTimeout for each, then sends SIGKILL to those still running.
func (ns *nodes) stop() {
	ns.once.Do(func() { ns.Stop(stopTimeout) })
}

// rssBytes is the resident set of process pid (VmRSS in /proc/pid/status).
func rssBytes(pid int) (int64, error) { return statusBytes(pid, "VmRSS") }

// statusBytes reads one size field (VmRSS, RssAnon, RssFile…) of
// /proc/pid/status.
func statusBytes(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s of %d: %w", field, pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// clockTicks is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clockTicks = 100

// cpuTime is the CPU time process pid has used, user and system, from
// /proc/<pid>/stat (to 10 ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	t, err := statCPUTime(string(b))
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return t, nil
}

// statCPUTime reads utime + stime from the text of a /proc/<pid>/stat.
func statCPUTime(stat string) (time.Duration, error) {
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses; utime and stime are fields 14 and 15, the 12th and
	// 13th after it.
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the name, want at least 13", len(f))
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// cpuTime is the CPU time every node of ns has used.
func (ns *nodes) cpuTime() (time.Duration, error) {
	var total time.Duration
	for _, p := range ns.Nodes {
		t, err := cpuTime(p.Pid())
		if err != nil {
			return 0, err
		}
		total += t
	}
	return total, nil
}
