package ratelimit_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/testkit"
)

// BenchmarkLimiterMemory measures what 10,000 active limiter grains cost
// in memory, and what is left once they have passivated
// (docs/rate-limiting.md). It does the same work whatever b.N is; run it
// with -benchtime=1x.
func BenchmarkLimiterMemory(b *testing.B) {
	const keys = 10_000
	store := testkit.OpenStore(b, b.TempDir())
	clk := testkit.NewFakeClock(time.Time{})
	system := testkit.NewActorSystem(b)
	props, err := ratelimit.Props(ratelimit.Config{Store: store, Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	limits := &ratelimit.Limits{PerMinute: 600, Burst: 60}
	heap0 := liveHeap()

	pids := make([]*actor.PID, keys)
	for i := range pids {
		id := identity(b, ratelimit.ScopeIP, fmt.Sprintf("198.51.%d.%d", i/256, i%256))
		pids[i] = system.Root.Spawn(cluster.WithClusterIdentity(props, cluster.NewClusterIdentity(id, ratelimit.Kind)))
		res, err := system.Root.RequestFuture(pids[i], &ratelimit.Check{Limits: limits}, 5*time.Second).Result()
		if d, ok := res.(*ratelimit.Decision); err != nil || !ok || !d.Allowed {
			b.Fatalf("check: %v %v", res, err)
		}
	}
	heap1 := liveHeap()

	clk.Advance(2 * time.Minute) // all write behind, then all passivate
	testkit.Eventually(b, 60*time.Second, func() error {
		for _, pid := range pids {
			if _, ok := system.ProcessRegistry.GetLocal(pid.Id); ok {
				return fmt.Errorf("%s still active", pid.Id)
			}
		}
		return nil
	})
	heap2 := liveHeap()

	b.ReportMetric(float64(heap1-heap0)/keys, "heapB/active")
	b.ReportMetric(float64(int64(heap2)-int64(heap0))/keys, "heapB/passivated")
	b.Logf("heap: %d KiB before, %d KiB with %d active limiters, %d KiB after they passivated; rss now %d MiB",
		heap0>>10, heap1>>10, keys, heap2>>10, rss()>>20)
}

// liveHeap returns the live heap after a GC.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func rss() uint64 {
	statm, _ := os.ReadFile("/proc/self/statm")
	fields := strings.Fields(string(statm))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(fields[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
