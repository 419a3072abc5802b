package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/actors/testkit/countergrain"
	"github.com/parley-chat/parley/cluster"
)

// failoverBound is the documented bound (docs/cluster.md) within which
// grains of a killed node answer again from the survivors: failure
// detection plus a topology update, with a wide margin for a loaded CI.
const failoverBound = 10 * time.Second

func increment(ctx context.Context, n *cluster.Node, id string) (*countergrain.Count, error) {
	res, err := n.Request(ctx, id, countergrain.Kind, &countergrain.Increment{})
	if err != nil {
		return nil, err
	}
	c, ok := res.(*countergrain.Count)
	if !ok {
		return nil, fmt.Errorf("reply is %T, want *Count", res)
	}
	return c, nil
}

func mustIncrement(t *testing.T, n *cluster.Node, id string) *countergrain.Count {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := increment(ctx, n, id)
	if err != nil {
		t.Fatalf("increment %s from %s: %v", id, n.Name(), err)
	}
	return c
}

// ownedBy returns k identities the cluster places on node.
func ownedBy(t *testing.T, c *testkit.Cluster, node *cluster.Node, k int) []string {
	t.Helper()
	var ids []string
	for i := 0; len(ids) < k && i < 10000; i++ {
		id := fmt.Sprintf("counter-%d", i)
		if c.Node(0).OwnerOf(id, countergrain.Kind) == node.RemoteAddr() {
			ids = append(ids, id)
		}
	}
	if len(ids) < k {
		t.Fatalf("found only %d identities owned by %s", len(ids), node.Name())
	}
	return ids
}

func TestEveryNodeAgreesOnOwnerAndReachesOneActivation(t *testing.T) {
	c := testkit.NewCluster(t, 3, testkit.WithKinds(countergrain.NewKind))
	nodes := c.Nodes()

	owners := map[string]bool{}
	for i := range 50 {
		id := fmt.Sprintf("agree-%d", i)
		want := nodes[0].OwnerOf(id, countergrain.Kind)
		if want == "" {
			t.Fatalf("%s has no owner", id)
		}
		owners[want] = true
		for _, n := range nodes[1:] {
			if got := n.OwnerOf(id, countergrain.Kind); got != want {
				t.Fatalf("%s: %s says owner %s, %s says %s", id, nodes[0].Name(), want, n.Name(), got)
			}
		}
	}
	if len(owners) != 3 {
		t.Errorf("50 identities spread over %d nodes, want all 3", len(owners))
	}

	// Three rounds of calls from every node, concurrently: one activation
	// counts all of them, on the owner every node named.
	const id = "single-activation"
	var (
		mu          sync.Mutex
		activations = map[string]bool{}
		wg          sync.WaitGroup
	)
	for _, n := range nodes {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				got, err := increment(ctx, n, id)
				if err != nil {
					t.Errorf("from %s: %v", n.Name(), err)
					return
				}
				mu.Lock()
				activations[got.Activation+" on "+got.Node] = true
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if len(activations) != 1 {
		t.Fatalf("calls reached %d activations, want 1: %v", len(activations), activations)
	}
	final := mustIncrement(t, nodes[1], id)
	if final.Value != 10 {
		t.Errorf("counter = %d after 10 increments from 3 nodes", final.Value)
	}
	if owner := nodes[2].OwnerOf(id, countergrain.Kind); final.Node != owner {
		t.Errorf("activation on %s, owner is %s", final.Node, owner)
	}
}

func TestKilledNodesGrainsReactivateOnSurvivors(t *testing.T) {
	c := testkit.NewCluster(t, 3, testkit.WithKinds(countergrain.NewKind))
	victim := c.Node(2)
	ids := ownedBy(t, c, victim, 5)
	for _, id := range ids {
		if got := mustIncrement(t, c.Node(0), id); got.Node != victim.RemoteAddr() {
			t.Fatalf("%s activated on %s, want %s", id, got.Node, victim.RemoteAddr())
		}
	}

	killed := time.Now()
	c.KillNode(2)
	survivors := map[string]bool{c.Node(0).RemoteAddr(): true, c.Node(1).RemoteAddr(): true}
	for _, id := range ids {
		testkit.Eventually(t, failoverBound, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			got, err := increment(ctx, c.Node(1), id)
			if err != nil {
				return err
			}
			if !survivors[got.Node] {
				return fmt.Errorf("%s answered from %s", id, got.Node)
			}
			// The counter lived only in the killed node's memory.
			if got.Value != 1 {
				return fmt.Errorf("%s = %d on its new activation, want 1", id, got.Value)
			}
			return nil
		})
	}
	t.Logf("grains of the killed node answered again %s after the kill", time.Since(killed).Round(time.Millisecond))
	c.WaitConverged(0)
}

func TestGracefulLeaveMovesGrainsWithoutFailedCalls(t *testing.T) {
	c := testkit.NewCluster(t, 3, testkit.WithKinds(countergrain.NewKind))
	leaving := c.Node(2)
	ids := ownedBy(t, c, leaving, 5)
	for _, id := range ids {
		mustIncrement(t, c.Node(0), id)
	}

	// Callers on the two staying nodes keep calling the leaving node's
	// grains, before, during and after the leave.
	stop := make(chan struct{})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		calls int
		fails []error
	)
	for _, n := range []*cluster.Node{c.Node(0), c.Node(1)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, id := range ids {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := increment(ctx, n, id)
					cancel()
					mu.Lock()
					calls++
					if err != nil {
						fails = append(fails, fmt.Errorf("%s from %s: %w", id, n.Name(), err))
					}
					mu.Unlock()
				}
			}
		}()
	}
	testkit.Eventually(t, 5*time.Second, func() error { // calls flow before the leave
		mu.Lock()
		defer mu.Unlock()
		if calls < 50 {
			return fmt.Errorf("%d calls so far", calls)
		}
		return nil
	})
	c.StopNode(2)
	for _, id := range ids {
		got := mustIncrement(t, c.Node(0), id)
		if got.Node == leaving.RemoteAddr() {
			t.Errorf("%s still answered by the node that left", id)
		}
	}
	close(stop)
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of %d calls failed during a graceful leave; first: %v", len(fails), calls, errors.Join(fails[:min(3, len(fails))]...))
	}
	t.Logf("%d calls during the leave, none failed", calls)
	c.WaitConverged(0)
}

func startNode(t *testing.T, cfg cluster.Config) *cluster.Node {
	t.Helper()
	cfg.Logger = testkit.NewLogger(t).With("node", cfg.NodeName)
	n, err := cluster.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	return n
}

func TestNodeStartedBeforeItsSeedWaitsForIt(t *testing.T) {
	seedAddr := testkit.FreeAddr(t)
	early := testkit.TestConfig(1)
	early.Join = []string{seedAddr}
	waiting := startNode(t, early)
	if err := waiting.Ready(); !errors.Is(err, cluster.ErrNotReady) {
		t.Fatalf("Ready() = %v before the seed exists, want ErrNotReady", err)
	}

	seed := testkit.TestConfig(0)
	seed.GossipAddr = seedAddr
	startNode(t, seed)
	testkit.Eventually(t, 10*time.Second, func() error {
		if err := waiting.Ready(); err != nil {
			return err
		}
		if got := len(waiting.TopologyIDs()); got != 2 {
			return fmt.Errorf("topology has %d members", got)
		}
		return nil
	})
}

func TestStartFailsCleanlyWhenTheRemotePortIsTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testkit.TestConfig(0)
	cfg.GossipAddr = testkit.FreeAddr(t)
	cfg.RemoteAddr = l.Addr().String()
	if n, err := cluster.Start(cfg); err == nil {
		_ = n.Shutdown(context.Background())
		t.Fatal("Start succeeded on a taken remote port")
	}
	// Nothing was left bound: the same gossip port works for a second try.
	cfg.RemoteAddr = "127.0.0.1:0"
	startNode(t, cfg)
}
