package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/actors/testkit/countergrain"
	"github.com/parley-chat/parley/cluster"
)

// silentKind is a counter that answers nowhere but off the node at
// silentOn: calls to an activation there stay pending until that node dies.
const silentKind = "SilentCounter"

type silentGrain struct {
	silentOn string        // remote address where the grain does not answer
	received chan<- string // told of every message held unanswered
}

func (g *silentGrain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *countergrain.Increment, *countergrain.Get:
		if ctx.ActorSystem().Address() == g.silentOn {
			g.received <- fmt.Sprintf("%T", m)
			return
		}
		ctx.Respond(&countergrain.Count{Node: ctx.ActorSystem().Address()})
	}
}

// TestCallsToAFailedNodeEndWhenItIsDeclaredDead: a call waiting on a node
// that dies ends when the failure detector declares the node dead, not at
// its deadline: an Idempotent message is sent to the grain's new
// activation and answered; any other fails with ErrHostLost, since it may
// have taken effect.
func TestCallsToAFailedNodeEndWhenItIsDeclaredDead(t *testing.T) {
	received := make(chan string, 2)
	var silentOn string
	kind := func() *protocluster.Kind {
		return protocluster.NewKind(silentKind, actor.PropsFromProducer(func() actor.Actor {
			return &silentGrain{silentOn: silentOn, received: received}
		}))
	}
	c := testkit.NewCluster(t, 3, testkit.WithKinds(kind))
	victim := c.Node(2)
	silentOn = victim.RemoteAddr()
	id := ""
	for i := 0; id == ""; i++ {
		if candidate := fmt.Sprint("silent-", i); c.Node(0).OwnerOf(candidate, silentKind) == silentOn {
			id = candidate
		}
	}

	// The deadline is far beyond failure detection: reaching it would
	// mean the call was not ended by the node's death.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type outcome struct {
		res any
		err error
	}
	write, read := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		res, err := c.Node(0).Request(ctx, id, silentKind, &countergrain.Increment{})
		write <- outcome{res, err}
	}()
	go func() {
		res, err := c.Node(1).Request(ctx, id, silentKind, &countergrain.Get{})
		read <- outcome{res, err}
	}()
	for range 2 {
		select {
		case <-received:
		case <-time.After(10 * time.Second):
			t.Fatal("the calls did not reach the grain")
		}
	}
	c.KillNode(2)

	w := <-write
	if !errors.Is(w.err, cluster.ErrHostLost) || !errors.Is(w.err, cluster.ErrUnavailable) {
		t.Fatalf("Increment to a grain whose node died: (%v, %v), want ErrHostLost", w.res, w.err)
	}
	r := <-read
	if r.err != nil {
		t.Fatalf("Get to a grain whose node died: %v, want an answer from its new activation", r.err)
	}
	if got := r.res.(*countergrain.Count).Node; got == silentOn {
		t.Fatalf("Get answered from the dead node %s", got)
	}
	if ctx.Err() != nil {
		t.Fatal("the calls ran into their deadline")
	}
}
