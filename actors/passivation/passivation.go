// Package passivation stops grains that sit idle, on the injected clock.
// Every grain kind uses it the same way:
//
//	case *actor.Started:  g.idle = passivation.Start(ctx, cfg.Clock, cfg.IdleTimeout)
//	case *actor.Stopping: g.idle.Stop()
//	case passivation.Tick: if idleFor, ok := g.idle.Check(ctx, busy); ok { …; ctx.Stop(ctx.Self()) }
//	any request:          g.idle.Touch()
//
// A passivated grain's state is already in storage; the next call
// activates it again from there. A call that races the stop is answered as
// a dead letter and retried by cluster.Node.Request, never lost.
package passivation

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/clock"
)

// Tick is the reminder an Idle sends its grain; the grain hands it to
// Check on its own goroutine.
type Tick struct{}

// Idle tracks one activation's last activity. It is used only from the
// grain's goroutine; the clock callback only sends a Tick.
type Idle struct {
	clock   clock.Clock
	timeout time.Duration
	last    time.Time
	timer   clock.Timer
}

// Start begins tracking: the grain is active now and is reminded after
// timeout.
func Start(ctx actor.Context, clk clock.Clock, timeout time.Duration) *Idle {
	i := &Idle{clock: clk, timeout: timeout, last: clk.Now()}
	i.schedule(ctx, timeout)
	return i
}

// Touch records activity. It costs no timer: Check reschedules from it.
func (i *Idle) Touch() { i.last = i.clock.Now() }

// Check handles a Tick: it reports how long the grain has been idle and
// whether that reached the timeout, in which case the caller stops the
// grain. A busy grain (work in progress) is never idle; otherwise the next
// Tick is scheduled.
func (i *Idle) Check(ctx actor.Context, busy bool) (idleFor time.Duration, passivate bool) {
	idleFor = i.clock.Now().Sub(i.last)
	if busy {
		idleFor = 0
	}
	if idleFor >= i.timeout {
		return idleFor, true
	}
	i.schedule(ctx, i.timeout-idleFor)
	return idleFor, false
}

// IdleFor is how long the grain has gone without activity (since Start or
// the last Touch).
func (i *Idle) IdleFor() time.Duration { return i.clock.Now().Sub(i.last) }

// Stop cancels the pending reminder; call it when the grain stops.
func (i *Idle) Stop() {
	if i != nil && i.timer != nil {
		i.timer.Stop()
	}
}

func (i *Idle) schedule(ctx actor.Context, d time.Duration) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	i.timer = i.clock.AfterFunc(d, func() { root.Send(self, Tick{}) })
}
