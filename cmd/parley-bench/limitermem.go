package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
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
	// limiterLoad bounds the time the keys may take, so that the row
	// stays under a minute on a slow machine (it then reports how many
	// keys it reached).
	limiterLoad = 35 * time.Second
	// heapMetric is the Go heap in use, from the node's Go collector.
	heapMetric = "go_memstats_heap_inuse_bytes"
)

// limiterMemoryPhase starts a node with --limiter-idle-timeout 5s, warms it
// with 1,000 keys, and sends limiterKeys rate-limited requests, each under
// a new X-User-Id (a limiter grain and a counter each). It reads the node's
// resident set, Go heap in use and counter store size before, right after,
// and once every limiter has passivated (twice the idle timeout after the
// last request, and a garbage collection forced through the node's debug
// listener). PASS when the resident growth is under 50 MiB and the heap
// is back within 10 MiB of where it started.
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
			_, h, err := b.client.history(ctx, edge, session, 1, fmt.Sprintf("%s-%d-%d", prefix, w, i))
			if err == nil && h.Get("X-RateLimit-Limit") == "" {
				err = fmt.Errorf("no X-RateLimit-Limit header: no limiter answered in time (failed open)")
			}
			return []time.Duration{time.Since(start)}, err
		}
	}
	type sample struct{ rss, heap, disk float64 }
	measure := func() (sample, error) {
		if err := forceGC(ctx, debugAddr); err != nil {
			return sample{}, err
		}
		rss, err := rssBytes(p.Pid())
		if err != nil {
			return sample{}, err
		}
		heap, err := b.client.metric(ctx, edge, heapMetric, "")
		if err != nil {
			return sample{}, err
		}
		disk, err := dirBytes(filepath.Join(p.DataDir(), "ratelimit"))
		return sample{rss: float64(rss), heap: heap, disk: float64(disk)}, err
	}

	warm := load{conc: manyWorkers, total: 1_000, measure: 10 * time.Second, series: []string{"check"}, do: check("warm")}.run(ctx)
	before, err := measure()
	if err != nil {
		fail(err)
		return
	}
	res := load{conc: manyWorkers, total: limiterKeys, measure: limiterLoad, series: []string{"check"}, do: check("key")}.run(ctx)
	after, err := measure()
	if err != nil {
		fail(err)
		return
	}
	select {
	case <-time.After(2 * limiterIdle):
	case <-ctx.Done():
		return
	}
	idle, err := measure()
	if err != nil {
		fail(err)
		return
	}
	res.errs.merge(warm.errs)
	row := Row{Name: name, Nodes: 1, Concurrency: manyWorkers, Count: res.ok, Latency: latencyOf(res.hists[0]), Throughput: res.throughput(),
		Values: map[string]float64{
			"rssBeforeBytes": before.rss, "rssAfterBytes": after.rss, "rssPassivatedBytes": idle.rss,
			"heapBeforeBytes": before.heap, "heapAfterBytes": after.heap, "heapPassivatedBytes": idle.heap,
			"counterStoreBeforeBytes": before.disk, "counterStoreAfterBytes": after.disk, "counterStorePassivatedBytes": idle.disk,
		}}
	row.setErrors(res.errs)
	verdict := "PASS"
	if after.rss-before.rss >= limiterRSSTarget || idle.heap-before.heap > 10<<20 {
		verdict = "FAIL"
	}
	row.Result = fmt.Sprintf("%s: %d keys; RSS %s → %s → %s passivated (target < +50 MiB); heap %s → %s → %s; counter store %s → %s → %s",
		verdict, res.ok, fmtBytes(before.rss), fmtBytes(after.rss), fmtBytes(idle.rss),
		fmtBytes(before.heap), fmtBytes(after.heap), fmtBytes(idle.heap),
		fmtBytes(before.disk), fmtBytes(after.disk), fmtBytes(idle.disk))
	b.add(secMemory, row)
}

// forceGC asks the node's debug listener for a heap profile after a
// collection, so that the heap figures that follow count live data only.
func forceGC(ctx context.Context, debugAddr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+debugAddr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("force a GC: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("force a GC: HTTP %d", resp.StatusCode)
	}
	return nil
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
