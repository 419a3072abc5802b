package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
)

// callersPerProc × GOMAXPROCS goroutines call at once in the parallel
// cases: a busy node has many HTTP requests in flight.
const callersPerProc = 32

// BenchmarkGrainDecisions measures how many decisions one limiter grain
// makes per second (docs/rate-limiting.md, Hot keys): called locally with
// RequestFuture, through Node.Request on the node that hosts it, and
// through Node.Request from the other node of a two-node cluster (over
// remoting), by one caller at a time and by many at once. The last case is
// a whole Limiter.Check of three scopes. The grain runs on the real clock
// with its write-behind, limits high enough that every check is allowed.
//
//	go test -run '^$' -bench GrainDecisions -benchtime 2s ./actors/ratelimit/

func BenchmarkGrainDecisions(b *testing.B) {
	limits := &ratelimit.Limits{PerMinute: ratelimit.MaxLimit, Burst: ratelimit.MaxLimit}
	store := testkit.OpenStore(b, "")
	cfg := ratelimit.Config{Store: store, Clock: clock.Real}

	system := testkit.NewActorSystem(b)
	props, err := ratelimit.Props(cfg)
	if err != nil {
		b.Fatal(err)
	}
	local := func(id string) func() (any, error) {
		pid := testkit.SpawnGrain(b, system, props, ratelimit.Kind, identity(b, ratelimit.ScopeUser, id))
		return func() (any, error) {
			return system.Root.RequestFuture(pid, &ratelimit.Check{Limits: limits}, 5*time.Second).Result()
		}
	}
	c := testkit.NewCluster(b, 2, testkit.WithConfig(func(_ int, ccfg *cluster.Config) {
		kind, err := ratelimit.NewKind(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ccfg.Kinds = append(ccfg.Kinds, kind)
	}))
	node := c.Node(0)
	// viaNode calls, from node 0, a limiter that lives on node owner.
	viaNode := func(prefix string, owner int) func() (any, error) {
		var id string
		for i := 0; ; i++ {
			id = identity(b, ratelimit.ScopeUser, fmt.Sprint(prefix, i))
			if node.OwnerOf(id, ratelimit.Kind) == c.Node(owner).RemoteAddr() {
				break
			}
		}
		return func() (any, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return node.Request(ctx, id, ratelimit.Kind, &ratelimit.Check{Limits: limits})
		}
	}

	for _, bc := range []struct {
		name     string
		call     func() (any, error)
		parallel bool
	}{
		{"local/one-caller", local("local-1"), false},
		{"local/parallel", local("local-p"), true},
		{"node.Request/one-caller", viaNode("node-1", 0), false},
		{"node.Request/parallel", viaNode("node-p", 0), true},
		{"node.Request/remote/one-caller", viaNode("remote-1", 1), false},
		{"node.Request/remote/parallel", viaNode("remote-p", 1), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			decide := func() {
				res, err := bc.call()
				if d, ok := res.(*ratelimit.Decision); err != nil || !ok || !d.Allowed {
					b.Fatalf("check: %v %v", res, err)
				}
			}
			if bc.parallel {
				b.SetParallelism(callersPerProc)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						decide()
					}
				})
			} else {
				for b.Loop() {
					decide()
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}

	b.Run("limiter/3-scopes/parallel", func(b *testing.B) {
		limiter, err := ratelimit.NewLimiter(node, ratelimit.LimiterConfig{Timeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		checks := []ratelimit.ScopeCheck{
			{Scope: ratelimit.ScopeTenant, ID: "acme", PerMinute: limits.PerMinute, Burst: limits.Burst},
			{Scope: ratelimit.ScopeUser, ID: "web", PerMinute: limits.PerMinute, Burst: limits.Burst},
			{Scope: ratelimit.ScopeIP, ID: "203.0.113.7", PerMinute: limits.PerMinute, Burst: limits.Burst},
		}
		b.SetParallelism(callersPerProc)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := limiter.Check(context.Background(), "acme", checks, ratelimit.PolicyClosed)
				if err != nil || !res.Allowed {
					b.Fatalf("check: %+v %v", res, err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	})
}
