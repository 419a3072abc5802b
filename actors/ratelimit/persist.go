package ratelimit

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// expiryMargin is how long stored counters outlive the end of their
// minute window. They matter until the end of the next window (as its
// previous count); the rest is slack for clocks that differ between nodes.
const expiryMargin = 2 * time.Minute

// load reads the counters a previous activation wrote. Nothing stored (or
// expired) means a fresh key; unreadable bytes are logged and treated the
// same, since starting from zero is what an expired entry does anyway.
func (g *grain) load() error {
	sctx, cancel := g.storeContext()
	defer cancel()
	value, _, ok, err := g.cfg.Store.Get(sctx, g.key.storeKey(), g.cfg.Clock.Now())
	if err != nil {
		return err
	}
	g.counters = counters{}
	if ok {
		c, err := decodeCounters(value)
		if err != nil {
			g.cfg.Logger.Warn("discarding stored rate limiter counters", "tenant", g.key.Tenant, "scope", g.key.Scope, "err", err)
		} else {
			g.counters = c
		}
	}
	g.loaded = true
	return nil
}

// changed marks the counters dirty and makes sure a write-behind is due
// within FlushInterval: however many requests arrive meanwhile, they cost
// one write.
func (g *grain) changed(ctx actor.Context) {
	g.dirty = true
	if g.flushing == nil {
		g.scheduleFlush(ctx)
	}
}

// scheduleFlush asks the clock to remind the grain in FlushInterval. The
// callback only sends a message: the write runs on the grain's goroutine.
func (g *grain) scheduleFlush(ctx actor.Context) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	g.flushing = g.cfg.Clock.AfterFunc(g.cfg.FlushInterval, func() { root.Send(self, flushDue{}) })
}

// flushBehind is the write-behind: it writes dirty counters, and tries
// again one interval later if the store failed.
func (g *grain) flushBehind(ctx actor.Context) {
	if g.flush() != nil && g.flushing == nil {
		g.scheduleFlush(ctx)
	}
}

// flush writes the counters if they changed since the last write. They
// expire from storage once they can no longer affect a decision.
func (g *grain) flush() error {
	if !g.dirty {
		return nil
	}
	expiresAt := time.UnixMicro(g.counters.sustained.end(minute)).Add(expiryMargin)
	sctx, cancel := g.storeContext()
	err := g.cfg.Store.Put(sctx, g.key.storeKey(), g.counters.encode(), expiresAt)
	cancel()
	if err != nil {
		g.cfg.Logger.Error("writing rate limiter counters", "tenant", g.key.Tenant, "scope", g.key.Scope, "err", err)
		return err
	}
	g.dirty = false
	return nil
}
