package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// The limiter-memory row: what 100,000 rate-limit keys cost a node, and
// what is left of it once their limiters have passivated.
const (
	limiterKeys = 100_000
	// limiterIdle is the node's --limiter-idle-timeout for the row, so
	// that the limiters passivate within it (2 minutes by default).
	limiterIdle = 5 * time.Second
	// limiterRSSTarget is the bound on the node's resident growth.
	limiterRSSTarget = 50 << 20
	// limiterWorkers send the keys: more than manyWorkers, because each
	// request waits on a new activation and the row is bound by latency
	// as much as by CPU.
	limiterWorkers = 64
	// limiterLoad bounds the time the keys may take (about 40 s on an
	// idle 2-core machine), so that the row stays under two and a half
	// minutes on a busy one (it then reports how many keys it reached);
	// limiterWarmLoad bounds the warm-up.
	limiterLoad     = 75 * time.Second
	limiterWarmLoad = 30 * time.Second
	// limiterWarm requests over limiterWarmKeys keys come first: the same
	// load as the row's, on keys that repeat, so that the resident set
	// measured before the row already holds what any such load costs (the
	// collector's room for garbage, the pages of the connections and
	// buffers) and the growth that follows is what distinct keys cost.
	limiterWarm     = 20_000
	limiterWarmKeys = 1_000
	// limiterPassivate bounds the wait for every limiter to passivate.
	limiterPassivate = 60 * time.Second
	// heapMetric is the Go heap allocated; read after a forced
	// collection, it is the live heap.
	heapMetric = "go_memstats_heap_alloc_bytes"
	// activeMetric is the node's activations of a grain kind.
	activeMetric = "parley_grains_active"
)

// limiterMemoryPhase starts a node with --limiter-idle-timeout 5s, warms it
// with limiterWarm requests over 1,000 keys, and sends limiterKeys
// rate-limited requests, each under a new X-User-Id (a limiter grain and a
// counter each). It reads the node's resident set, live Go heap and
// counter store size fresh, after the warm-up (before), right after
// (the peak), and once every limiter has passivated (the node's
// parley_grains_active{kind="RateLimiter"} is 0), each after a garbage
// collection forced through the node's debug listener (whose heap
// profiles --keep keeps, limiter-memory-heap-*.pb.gz). PASS when the
// resident growth is under 50 MiB and the live heap is back within 10 MiB
// of where it started.
func (b *bench) limiterMemoryPhase(ctx context.Context) {
	name := fmt.Sprintf("memory: %d rate-limit keys (distinct X-User-Id)", limiterKeys)
	fail := func(err error) { b.add(secMemory, Row{Name: name, Nodes: 1, Result: "FAIL (" + err.Error() + ")"}) }
	debugAddr, err := freeLoopbackAddr()
	if err != nil {
		fail(err)
		return
	}
	ns, err := b.start(ctx, nodeSpec{n: 1, extra: []string{"--limiter-idle-timeout", limiterIdle.String(), "--debug-addr", debugAddr}})
	if err != nil {
		fail(err)
		return
	}
	defer ns.stop()
	p := ns.Nodes[0]
	edge := p.URL("")
	session := uuid.NewString()
	check := func(prefix string) func(ctx context.Context, w, i int) ([]time.Duration, error) {
		return func(ctx context.Context, w, i int) ([]time.Duration, error) {
			start := time.Now()
			if prefix == "warm" {
				i %= limiterWarmKeys
			}
			_, h, err := b.client.history(ctx, edge, session, 1, fmt.Sprintf("%s-%d", prefix, i))
			if err == nil && h.Get("X-RateLimit-Limit") == "" {
				err = fmt.Errorf("no X-RateLimit-Limit header: no limiter answered in time (failed open)")
			}
			return []time.Duration{time.Since(start)}, err
		}
	}
	type sample struct{ rss, file, heap, disk, active float64 }
	measure := func(stage string) (sample, error) {
		if err := forceGC(ctx, debugAddr, filepath.Join(b.dir, "limiter-memory-heap-"+stage+".pb.gz")); err != nil {
			return sample{}, err
		}
		rss, err := rssBytes(p.Pid())
		if err != nil {
			return sample{}, err
		}
		// The file-backed part: pages of Badger's memory-mapped
		// memtables, tables and value logs.
		file, err := statusBytes(p.Pid(), "RssFile")
		if err != nil {
			return sample{}, err
		}
		heap, err := b.client.metric(ctx, edge, heapMetric, "")
		if err != nil {
			return sample{}, err
		}
		active, err := b.client.metric(ctx, edge, activeMetric, `kind="RateLimiter"`)
		if err != nil {
			return sample{}, err
		}
		disk, err := dirBytes(filepath.Join(p.DataDir(), "ratelimit"))
		return sample{rss: float64(rss), file: float64(file), heap: heap, disk: float64(disk), active: active}, err
	}

	fresh, err := measure("fresh")
	if err != nil {
		fail(err)
		return
	}
	warm := load{conc: limiterWorkers, total: limiterWarm, measure: limiterWarmLoad, series: []string{"check"}, do: check("warm")}.run(ctx)
	before, err := measure("before")
	if err != nil {
		fail(err)
		return
	}
	res := load{conc: limiterWorkers, total: limiterKeys, measure: limiterLoad, series: []string{"check"}, do: check("key")}.run(ctx)
	after, err := measure("peak")
	if err != nil {
		fail(err)
		return
	}
	idleFrom := time.Now()
	for {
		n, err := b.client.metric(ctx, edge, activeMetric, `kind="RateLimiter"`)
		if err != nil {
			fail(err)
			return
		}
		if n == 0 || time.Since(idleFrom) > limiterPassivate {
			break
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
	passivatedIn := time.Since(idleFrom)
	idle, err := measure("passivated")
	if err != nil {
		fail(err)
		return
	}
	sent := res.ok + res.errs.total() // a key whose limiter was late is still a key
	res.errs.merge(warm.errs)
	row := Row{Name: name, Nodes: 1, Concurrency: limiterWorkers, Count: res.ok, Latency: latencyOf(res.hists[0]), Throughput: res.throughput(),
		Values: map[string]float64{
			"rssFreshBytes": fresh.rss, "heapFreshBytes": fresh.heap,
			"rssFileBeforeBytes": before.file, "rssFileAfterBytes": after.file, "rssFilePassivatedBytes": idle.file,
			"rssBeforeBytes": before.rss, "rssAfterBytes": after.rss, "rssPassivatedBytes": idle.rss,
			"heapBeforeBytes": before.heap, "heapAfterBytes": after.heap, "heapPassivatedBytes": idle.heap,
			"counterStoreBeforeBytes": before.disk, "counterStoreAfterBytes": after.disk, "counterStorePassivatedBytes": idle.disk,
			"keysSent": float64(sent), "limitersActiveAfter": after.active, "limitersActivePassivated": idle.active, "passivatedSeconds": passivatedIn.Seconds(),
		}}
	row.setErrors(res.errs)
	verdict := "PASS"
	if sent < limiterKeys || after.rss-before.rss >= limiterRSSTarget || idle.heap-before.heap > 10<<20 || idle.active > 0 {
		verdict = "FAIL"
	}
	row.Result = fmt.Sprintf("%s: %d keys in %.0f s (%d answered in time); RSS %s fresh, %s warmed (%d requests on %d keys) → %s (%+.1f MiB, target < +50 MiB) → %s passivated; of which file-backed %s → %s → %s; "+
		"live heap %s → %s → %s; limiters active %.0f → %.0f (%.0f s after the last request); counter store %s → %s → %s",
		verdict, sent, res.elapsed.Seconds(), res.ok, fmtBytes(fresh.rss), fmtBytes(before.rss), limiterWarm, limiterWarmKeys,
		fmtBytes(after.rss), (after.rss-before.rss)/(1<<20), fmtBytes(idle.rss), fmtBytes(before.file), fmtBytes(after.file), fmtBytes(idle.file),
		fmtBytes(before.heap), fmtBytes(after.heap), fmtBytes(idle.heap),
		after.active, idle.active, passivatedIn.Seconds(),
		fmtBytes(before.disk), fmtBytes(after.disk), fmtBytes(idle.disk))
	b.add(secMemory, row)
}

// forceGC asks the node's debug listener for a heap profile after a
// collection, so that the heap figures that follow count live data only,
// and keeps the profile as file (kept with --keep, for go tool pprof).
func forceGC(ctx context.Context, debugAddr, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+debugAddr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("force a GC: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("force a GC: HTTP %d", resp.StatusCode)
	}
	profile, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("force a GC: %w", err)
	}
	return os.WriteFile(file, profile, 0o644)
}

// dirBytes is the disk space the files under dir take.
func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		// Badger preallocates its value log sparsely: count the blocks
		// written, not the length.
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// freeLoopbackAddr returns a 127.0.0.1 address no one listens on now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
