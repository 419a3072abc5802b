package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// newRateLimitCluster starts n nodes, each hosting the RateLimiter kind on
// its own in-memory store, all on clk.
func newRateLimitCluster(t testing.TB, n int, clk *testkit.FakeClock) *testkit.Cluster {
	t.Helper()
	stores := make([]*badgerstore.Store, n)
	for i := range stores {
		// Registered before the cluster's own cleanup, so it runs after
		// the nodes have left (and their limiters written their counters).
		store := testkit.OpenStore(t, "")
		stores[i] = store
	}
	return testkit.NewCluster(t, n, testkit.WithConfig(func(i int, cfg *cluster.Config) {
		kind, err := ratelimit.NewKind(ratelimit.Config{Store: stores[i], Clock: clk, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind)
		cfg.LeaveTimeout = time.Second // in-memory stores: passivating takes microseconds
	}))
}

func TestRequestsThroughEveryNodeShareOneWindow(t *testing.T) {
	clk := testkit.NewFakeClock(time.Time{})
	c := newRateLimitCluster(t, 3, clk)
	limiters := make([]*ratelimit.Limiter, 3)
	for i := range limiters {
		var err error
		// A generous timeout: the first call activates the grain across
		// the network, under the race detector.
		limiters[i], err = ratelimit.NewLimiter(c.Node(i), ratelimit.LimiterConfig{Timeout: 5 * time.Second, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
	}
	user := ratelimit.ScopeCheck{Scope: ratelimit.ScopeUser, ID: "alice", PerMinute: 10}
	for i := range 12 {
		res, err := limiters[i%3].Check(context.Background(), "acme", []ratelimit.ScopeCheck{user}, ratelimit.PolicyClosed)
		if err != nil {
			t.Fatalf("request %d via node %d: %v", i, i%3, err)
		}
		wantAllowed := i < 10
		if res.Allowed != wantAllowed || len(res.Unavailable) != 0 || (wantAllowed && res.Remaining != int64(9-i)) {
			t.Fatalf("request %d via node %d: %+v", i, i%3, res)
		}
	}
	identity, _ := ratelimit.Identity("acme", ratelimit.ScopeUser, "alice")
	owner := c.Node(0).OwnerOf(identity, ratelimit.Kind)
	for i, n := range c.Nodes() {
		if got := n.OwnerOf(identity, ratelimit.Kind); got != owner {
			t.Fatalf("node %d places the limiter on %s, node 0 on %s", i, got, owner)
		}
	}
	t.Logf("the limiter lives on %s", owner)
}
