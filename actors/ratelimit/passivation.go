package ratelimit

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// scheduleIdleCheck asks the clock to remind the grain in d. The callback
// only sends a message: the check itself runs on the grain's goroutine.
func (g *grain) scheduleIdleCheck(ctx actor.Context, d time.Duration) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	g.idle = g.cfg.Clock.AfterFunc(d, func() { root.Send(self, idleCheck{}) })
}

// checkIdle passivates the grain when nothing reached it for IdleTimeout:
// it stops, writing its counters as it does (stopping), and the next call
// activates it again from storage. Calls that race the stop are answered
// as dead letters and retried by cluster.Node.Request.
func (g *grain) checkIdle(ctx actor.Context) {
	idleFor := g.cfg.Clock.Now().Sub(g.lastActive)
	if idleFor < g.cfg.IdleTimeout {
		g.scheduleIdleCheck(ctx, g.cfg.IdleTimeout-idleFor)
		return
	}
	g.cfg.Logger.Debug("passivating idle rate limiter", "tenant", g.key.Tenant, "scope", g.key.Scope, "idle", idleFor)
	ctx.Stop(ctx.Self())
}
