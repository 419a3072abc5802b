// Package countergrain is the smallest useful grain: a counter that answers
// with its value and the activation that holds it. The test kit's own tests
// and docs/testing.md use it to show how a grain kind is registered and
// called across a cluster.
package countergrain

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// Kind is the counter's grain kind name.
const Kind = "Counter"

// NewKind returns the counter grain kind to register on every node.
func NewKind() *cluster.Kind {
	return cluster.NewKind(Kind, actor.PropsFromProducer(func() actor.Actor { return &grain{} }))
}

// grain is the counter's state: its value, in memory only.
type grain struct{ value int64 }

func (g *grain) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *Increment:
		g.value++
		ctx.Respond(g.count(ctx))
	case *Get:
		ctx.Respond(g.count(ctx))
	}
}

func (g *grain) count(ctx actor.Context) *Count {
	return &Count{Value: g.value, Activation: ctx.Self().String(), Node: ctx.ActorSystem().Address()}
}

// Idempotent marks Get as safe to deliver twice (cluster.Idempotent): a
// call whose node fails before it answers is sent to the new activation.
func (*Get) Idempotent() bool { return true }
