package testkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/actors/testkit/countergrain"
)

// This is the example docs/testing.md walks through: a grain kind on a
// three-node cluster, one activation reached from every node, and what
// happens when its node dies.
func TestExampleCounterAcrossACluster(t *testing.T) {
	// Three nodes on 127.0.0.1 free ports, each hosting the Counter kind.
	// They are stopped when the test ends.
	c := testkit.NewCluster(t, 3, testkit.WithKinds(countergrain.NewKind))

	increment := func(node int) *countergrain.Count {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := c.Node(node).Request(ctx, "example", countergrain.Kind, &countergrain.Increment{})
		if err != nil {
			t.Fatalf("increment from node %d: %v", node, err)
		}
		return res.(*countergrain.Count)
	}

	// Whichever node calls, the same activation counts.
	first, second := increment(0), increment(1)
	if second.Value != 2 || second.Activation != first.Activation {
		t.Fatalf("two calls reached %s and %s; value %d", first.Activation, second.Activation, second.Value)
	}

	// Kill the node hosting it, as SIGKILL would. Once the survivors agree
	// on membership the grain re-activates on one of them, with fresh
	// in-memory state.
	for i, n := range c.Nodes() {
		if n.RemoteAddr() == second.Node {
			c.KillNode(i)
			break
		}
	}
	c.WaitConverged(0)
	survivor := c.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := survivor.Request(ctx, "example", countergrain.Kind, &countergrain.Get{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.(*countergrain.Count); got.Value != 0 || got.Node == second.Node {
		t.Fatalf("after the kill: value %d on %s", got.Value, got.Node)
	}
}
