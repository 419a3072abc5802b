package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/passivation"
)

// NewKind returns the RateLimiter grain kind to register on every node.
func NewKind(cfg Config) (*cluster.Kind, error) {
	return grains.NewKind(Kind, cfg, DefaultConfig(), activate)
}

// Props returns the grain's props, for tests that spawn one outside a
// cluster (testkit.SpawnGrain).
func Props(cfg Config) (*actor.Props, error) {
	return grains.Props(cfg, DefaultConfig(), activate)
}

func activate(cfg Config) actor.Actor { return &grain{cfg: cfg} }

// grain is one key's activation: its counters, and whether they changed
// since they were last written.
type grain struct {
	cfg    Config
	key    Key
	keyErr error // a malformed identity: every request is refused

	loaded   bool
	counters counters
	dirty    bool        // counters changed since the last write
	flushing clock.Timer // the pending write-behind, nil when none
	writing  bool        // a write-behind is in flight

	// Writes, from the grain or a write-behind goroutine, are numbered
	// (generation) and applied in order under writes: written is the
	// newest stored.
	generation uint64
	writes     sync.Mutex
	written    uint64
	inflight   sync.WaitGroup // write-behinds not yet finished

	idle *passivation.Idle
}

// flushDue is the grain's own reminder to write its counters behind.
type flushDue struct{}

func (g *grain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		g.started(ctx)
	case *actor.Stopping:
		g.stopping()
	case passivation.Tick:
		if idleFor, ok := g.idle.Check(ctx, false); ok {
			g.cfg.Logger.Debug("passivating idle rate limiter", "tenant", g.key.Tenant, "scope", g.key.Scope, "idle", idleFor)
			ctx.Stop(ctx.Self())
		}
	case flushDue:
		g.flushing = nil
		g.flushBehind(ctx)
		if !g.dirty && !g.writing {
			g.yieldIfCrowded(ctx)
		}
	case flushDone:
		g.flushed(ctx, msg)
	case *Check:
		g.check(ctx, msg)
	case *Refund:
		g.refund(ctx, msg)
	}
}

func (g *grain) started(ctx actor.Context) {
	ci := cluster.GetClusterIdentity(ctx)
	g.key, g.keyErr = ParseIdentity(ci.Identity)
	if g.keyErr == nil {
		if err := g.load(); err != nil {
			// Not fatal: the first request tries again.
			g.cfg.Logger.Warn("loading rate limiter", "tenant", g.key.Tenant, "scope", g.key.Scope, "err", err)
		}
	}
	g.idle = passivation.Start(ctx, g.cfg.Clock, g.cfg.IdleTimeout)
}

// stopping writes what the write-behind has not yet written: a passivated
// or drained limiter forgets nothing.
func (g *grain) stopping() {
	g.idle.Stop()
	if g.flushing != nil {
		g.flushing.Stop()
		g.flushing = nil
	}
	g.flush()
}

// crowdedShare divides FlushInterval on a crowded node: a limiter there
// writes its counters and passivates after a quarter of the interval, so
// that a flood of distinct keys keeps about a quarter as many limiters
// active (a flood of 8,000 new keys a second held 8,500 at once with the
// whole interval) for at most four writes a second of a key in use.
const crowdedShare = 4

// crowded reports Config.Crowded: false when it is not set.
func (g *grain) crowded() bool { return g.cfg.Crowded != nil && g.cfg.Crowded() }

// flushDelay is how long changed counters wait before they are written:
// FlushInterval, or a crowdedShare of it on a crowded node.
func (g *grain) flushDelay() time.Duration {
	if g.crowded() {
		return g.cfg.FlushInterval / crowdedShare
	}
	return g.cfg.FlushInterval
}

// yieldIfCrowded passivates the grain early when the node is crowded
// (Config.Crowded): its counters are written (the caller checked) and it
// has received nothing for flushDelay. A crowded grain still in use is
// looked at again one flushDelay later.
func (g *grain) yieldIfCrowded(ctx actor.Context) {
	if g.flushing != nil || !g.crowded() {
		return
	}
	if idleFor := g.idle.IdleFor(); idleFor >= g.cfg.FlushInterval/crowdedShare {
		g.cfg.Logger.Debug("passivating rate limiter on a crowded node", "tenant", g.key.Tenant, "scope", g.key.Scope, "idle", idleFor)
		ctx.Stop(ctx.Self())
		return
	}
	g.scheduleFlush(ctx)
}

// ready is true when the grain can serve a request; otherwise it has
// answered with a Failure.
func (g *grain) ready(ctx actor.Context) bool {
	if g.keyErr != nil {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: g.keyErr.Error()})
		return false
	}
	if !g.loaded {
		if err := g.load(); err != nil {
			g.cfg.Logger.Error("loading rate limiter", "tenant", g.key.Tenant, "scope", g.key.Scope, "err", err)
			ctx.Respond(&grains.Failure{Code: grains.CodeUnavailable, Message: "load counters: storage unavailable"})
			return false
		}
	}
	return true
}

func (g *grain) storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), g.cfg.StoreTimeout)
}
