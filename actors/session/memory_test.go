package session_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
)

// BenchmarkSessionMemory measures what 10,000 active sessions cost in
// memory, and what is left once they have passivated (docs/sessions.md).
// It does the same work whatever b.N is; run it with -benchtime=1x.
func BenchmarkSessionMemory(b *testing.B) {
	const sessions = 10_000
	store := testkit.OpenStore(b, b.TempDir())
	clk := testkit.NewFakeClock(time.Time{})
	system := testkit.NewActorSystem(b)
	props, err := session.Props(session.Config{Store: store, Clock: clk, IdleTimeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	heap0, rss0 := memory()

	pids := make([]*actor.PID, sessions)
	for i := range pids {
		identity, _ := session.Identity("acme", uuid.NewString())
		pids[i] = system.Root.Spawn(clusterIdentity(props, identity))
		res, err := system.Root.RequestFuture(pids[i], &session.Append{Role: "user", Content: "hello, how are you today?", TokenCount: 7}, 5*time.Second).Result()
		if _, ok := res.(*session.Appended); err != nil || !ok {
			b.Fatalf("append: %v %v", res, err)
		}
	}
	heap1, rss1 := memory()

	clk.Advance(5 * time.Minute) // every session is idle: all passivate
	testkit.Eventually(b, 30*time.Second, func() error {
		for _, pid := range pids {
			if _, ok := system.ProcessRegistry.GetLocal(pid.Id); ok {
				return fmt.Errorf("%s still active", pid.Id)
			}
		}
		return nil
	})
	heap2, rss2 := memory()

	b.ReportMetric(float64(heap1-heap0)/sessions, "heapB/active")
	b.ReportMetric(float64(rss1-rss0)/sessions, "rssB/active")
	b.ReportMetric(float64(int64(heap2)-int64(heap0))/sessions, "heapB/passivated")
	b.Logf("heap: %d MiB before, %d MiB with %d active sessions, %d MiB after they passivated",
		heap0>>20, heap1>>20, sessions, heap2>>20)
	b.Logf("rss:  %d MiB before, %d MiB with %d active sessions, %d MiB after they passivated",
		rss0>>20, rss1>>20, sessions, rss2>>20)
}

// memory returns the live heap after a GC, and the resident set size.
func memory() (heap, rss uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	statm, _ := os.ReadFile("/proc/self/statm")
	fields := strings.Fields(string(statm))
	if len(fields) > 1 {
		pages, _ := strconv.ParseUint(fields[1], 10, 64)
		rss = pages * uint64(os.Getpagesize())
	}
	return ms.HeapAlloc, rss
}
