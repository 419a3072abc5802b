package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// microRun is one `go test -bench` invocation over one package.
type microRun struct {
	pkg       string // ./persistence/badgerstore
	pattern   string // -bench
	benchtime string // -benchtime
}

// microRuns are the grain paths' micro-benchmarks (docs/benchmarks.md
// lists which covers which path). The persistence and ratelimit ones live
// beside their code; those of the session and cache grains live in this
// package, since they need no package's internals.
var microRuns = []microRun{
	{"./persistence/badgerstore/", "^(BenchmarkAppend|BenchmarkPage100)$", "1000x"},
	// What replication costs one append, in one process on one disk.
	{"./persistence/raftstore/", "^BenchmarkAppend$/^raft-(1-node|3-nodes-via-leader|3-nodes-via-follower)$", "1000x"},
	{"./cmd/parley-bench/", ".", "1000x"},
	{"./actors/ratelimit/", "^BenchmarkGrainDecisions$/^(local|node.Request)$/^one-caller$", "1000x"},
	// Tens of nanoseconds: 1000 iterations would measure the timer. A
	// run of its own, since a pattern with sub-levels skips benchmarks
	// that have none.
	{"./actors/ratelimit/", "^BenchmarkCountersCheck$", "100000x"},
	// Always the same 10,000 sessions whatever b.N: the passivated
	// memory row comes from it.
	{"./actors/session/", "^BenchmarkSessionMemory$", "1x"},
}

// microLabels name the path each micro-benchmark measures.
var microLabels = map[string]string{
	"BenchmarkAppend":                                 "store append (Badger, fsync)",
	"BenchmarkPage100":                                "store page of 100",
	"BenchmarkAppend/raft-1-node":                     "replicated store append, 1 member",
	"BenchmarkAppend/raft-3-nodes-via-leader":         "replicated store append, 3 members, via the leader",
	"BenchmarkAppend/raft-3-nodes-via-follower":       "replicated store append, 3 members, via a follower",
	"BenchmarkSessionAppend":                          "session grain append",
	"BenchmarkSessionHistory100":                      "session grain history page of 100",
	"BenchmarkCacheGet":                               "cache grain get (hit)",
	"BenchmarkGrainDecisions/local/one-caller":        "limiter grain check, local",
	"BenchmarkGrainDecisions/node.Request/one-caller": "limiter grain check, Node.Request",
	"BenchmarkCountersCheck":                          "limiter window arithmetic",
}

// microPhases run the micro-benchmarks; BenchmarkSessionMemory's metrics
// replace the passivated-memory row.
func (b *bench) microPhases(ctx context.Context, root string) {
	for _, m := range microRuns {
		progress("go test -bench %q -benchtime %s %s", m.pattern, m.benchtime, m.pkg)
		res, err := runMicro(ctx, root, m)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%v\n", err)
			first, _, _ := strings.Cut(err.Error(), "\n")
			b.add(secMicro, Row{Name: "go bench: " + strings.TrimSuffix(m.pkg, "/"), Benchmark: m.pkg + " " + m.pattern, Errors: 1,
				ErrorKinds: map[string]int64{first: 1}, Result: "FAIL (go test failed; its output is above)"})
			continue
		}
		for _, r := range res {
			if r.name == "BenchmarkSessionMemory" {
				b.replace(passivatedRow(r.metrics))
				continue
			}
			b.add(secMicro, r.row(m.pkg))
		}
	}
}

// passivatedRow is the memory of passivated sessions. `parley serve` has
// no idle-timeout flag and sessions passivate after 5 idle minutes, too
// long for a bench, so the figure is BenchmarkSessionMemory's, in-process
// (its metrics, when it ran).
func passivatedRow(metrics map[string]float64) Row {
	r := Row{Name: "memory: 10,000 passivated sessions", section: secMemory}
	heap, ok := metrics["heapB/passivated"]
	if !ok {
		r.Result = "not measured: parley serve has no idle-timeout flag (sessions passivate after 5 idle minutes); docs/sessions.md: the heap returns to its baseline"
		return r
	}
	r.Count = activeSessions
	r.Benchmark = "./actors/session BenchmarkSessionMemory"
	r.Result = fmt.Sprintf("heap %+.1f MiB per 10,000 vs before they existed (%+.1f MiB while active); in-process BenchmarkSessionMemory",
		heap*activeSessions/(1<<20), metrics["heapB/active"]*activeSessions/(1<<20))
	r.Values = metrics
	return r
}

// microResult is one benchmark line of `go test -bench` output.
type microResult struct {
	name       string             // BenchmarkGrainDecisions/local/one-caller (no -GOMAXPROCS suffix)
	iterations int64              //
	metrics    map[string]float64 // by unit: ns/op, B/op, allocs/op and custom ones
}

// runMicro runs one package's benchmarks in the module at root.
func runMicro(ctx context.Context, root string, m microRun) ([]microResult, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", m.pattern, "-benchmem",
		"-benchtime", m.benchtime, "-count", "1", "-timeout", "3m", m.pkg)
	cmd.Dir = root
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test %s: %w\n%s", m.pkg, err, tail(string(out), 15))
	}
	res := parseBench(out)
	if len(res) == 0 {
		return nil, fmt.Errorf("go test %s: no benchmark matched %q", m.pkg, m.pattern)
	}
	return res, nil
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads the result lines of `go test -bench` output:
//
//	BenchmarkAppend-2   1000   2134567 ns/op   1234 B/op   20 allocs/op
func parseBench(out []byte) []microResult {
	var res []microResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		r := microResult{name: procsSuffix.ReplaceAllString(f[0], ""), iterations: n, metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			r.metrics[f[i+1]] = v
		}
		res = append(res, r)
	}
	return res
}

// row shows a micro-benchmark: its cost per operation beside nothing (the
// seed sets no target for it).
func (r microResult) row(pkg string) Row {
	parts := []string{fmtNs(r.metrics["ns/op"]) + "/op"}
	if b, ok := r.metrics["B/op"]; ok {
		parts = append(parts, fmtBytes(b)+"/op")
	}
	if a, ok := r.metrics["allocs/op"]; ok {
		parts = append(parts, fmt.Sprintf("%.0f allocs/op", a))
	}
	label := microLabels[r.name]
	if label == "" {
		label = r.name
	}
	return Row{
		Name:      "go bench: " + label,
		Benchmark: strings.TrimSuffix(pkg, "/") + " " + r.name,
		Count:     r.iterations,
		Result:    strings.Join(parts, ", "),
		Values:    r.metrics,
		section:   secMicro,
	}
}

// fmtNs shows a duration per operation.
func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmtMs(ns / 1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
