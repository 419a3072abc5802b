package cluster_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/actors/testkit/countergrain"
)

// stoppingKind is a counter that stops itself once it has answered a Get,
// as an idle grain passivates.
const stoppingKind = "StoppingCounter"

type stoppingGrain struct{ value int64 }

func (g *stoppingGrain) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *countergrain.Increment:
		g.value++
		ctx.Respond(&countergrain.Count{Value: g.value, Node: ctx.ActorSystem().Address()})
	case *countergrain.Get:
		ctx.Respond(&countergrain.Count{Value: g.value, Node: ctx.ActorSystem().Address()})
		ctx.Stop(ctx.Self())
	}
}

// TestAPassivatedGrainLeavesNothingBehind: once a grain stops, no member
// keeps its PID in the PID cache (the caller's node included, which only
// hears of it through the owner's ActivationTerminated broadcast), its
// owner counts no activation, and its actor can be collected: neither the
// placement actor's children nor anything else still holds it.
func TestAPassivatedGrainLeavesNothingBehind(t *testing.T) {
	var (
		mu     sync.Mutex
		actors []weak.Pointer[stoppingGrain]
	)
	kind := func() *protocluster.Kind {
		return protocluster.NewKind(stoppingKind, actor.PropsFromProducer(func() actor.Actor {
			g := &stoppingGrain{}
			mu.Lock()
			actors = append(actors, weak.Make(g))
			mu.Unlock()
			return g
		}))
	}
	c := testkit.NewCluster(t, 2, testkit.WithKinds(kind))
	caller, owner := c.Node(0), c.Node(1)
	var ids []string
	for i := 0; len(ids) < 5; i++ {
		if id := fmt.Sprint("stopping-", i); caller.OwnerOf(id, stoppingKind) == owner.RemoteAddr() {
			ids = append(ids, id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pidCache := protocluster.GetCluster(caller.System()).PidCache
	for _, id := range ids {
		if _, err := caller.Request(ctx, id, stoppingKind, &countergrain.Increment{}); err != nil {
			t.Fatalf("increment %s: %v", id, err)
		}
		if _, ok := pidCache.Get(id, stoppingKind); !ok {
			t.Fatalf("%s: the caller cached no PID after a call", id)
		}
	}
	if n := owner.ActiveGrains(stoppingKind); n != len(ids) {
		t.Fatalf("owner hosts %d activations, want %d", n, len(ids))
	}
	for _, id := range ids {
		if _, err := caller.Request(ctx, id, stoppingKind, &countergrain.Get{}); err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
	}

	testkit.Eventually(t, 10*time.Second, func() error {
		if n := owner.ActiveGrains(stoppingKind); n != 0 {
			return fmt.Errorf("owner still hosts %d activations", n)
		}
		for _, id := range ids {
			if pid, ok := pidCache.Get(id, stoppingKind); ok {
				return fmt.Errorf("the caller still caches %s for %s", pid, id)
			}
		}
		return nil
	})
	testkit.Eventually(t, 10*time.Second, func() error {
		runtime.GC()
		mu.Lock()
		defer mu.Unlock()
		alive := 0
		for _, p := range actors {
			if p.Value() != nil {
				alive++
			}
		}
		if alive > 0 {
			return fmt.Errorf("%d of %d stopped grains still reachable", alive, len(actors))
		}
		return nil
	})
}
