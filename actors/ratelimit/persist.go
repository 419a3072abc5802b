package ratelimit

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/persistence"
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
	g.flushing = g.cfg.Clock.AfterFunc(g.flushDelay(), func() { root.Send(self, flushDue{}) })
}

// flushBehind is the write-behind. The write runs off the grain's
// goroutine, so a hot limiter keeps deciding while its counters are
// fsynced; its answer arrives as flushDone. One write is in flight at a
// time; counters that change meanwhile go in the next one.
func (g *grain) flushBehind(ctx actor.Context) {
	if !g.dirty || g.writing {
		return
	}
	gen, key, value, expiresAt := g.snapshot()
	g.dirty, g.writing = false, true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	g.inflight.Add(1)
	go func() {
		defer g.inflight.Done()
		root.Send(self, flushDone{err: g.write(gen, key, value, expiresAt)})
	}()
}

// flushDone is the answer of a write-behind.
type flushDone struct{ err error }

// flushed handles flushDone: a failed write is retried one interval later,
// as are counters that changed while it was in flight.
func (g *grain) flushed(ctx actor.Context, done flushDone) {
	g.writing = false
	if done.err != nil {
		g.cfg.Logger.Error("writing rate limiter counters", "tenant", g.key.Tenant, "scope", g.key.Scope, "err", done.err)
		g.dirty = true
	}
	if g.dirty && g.flushing == nil {
		g.scheduleFlush(ctx)
	}
	if !g.dirty {
		g.yieldIfCrowded(ctx)
	}
}

// flush writes the counters now, on the grain's goroutine: the last write,
// as the grain stops, so a passivated limiter forgets nothing. It first
// waits for a write-behind in flight, so the next activation reads both.
func (g *grain) flush() error {
	g.inflight.Wait()
	if !g.dirty {
		return nil
	}
	gen, key, value, expiresAt := g.snapshot()
	if err := g.write(gen, key, value, expiresAt); err != nil {
		g.cfg.Logger.Error("writing rate limiter counters", "tenant", g.key.Tenant, "scope", g.key.Scope, "err", err)
		return err
	}
	g.dirty = false
	return nil
}

// snapshot numbers and encodes the counters for a write. They expire from
// storage once they can no longer affect a decision.
func (g *grain) snapshot() (gen uint64, key persistence.KVKey, value []byte, expiresAt time.Time) {
	g.generation++
	return g.generation, g.key.storeKey(), g.counters.encode(),
		time.UnixMicro(g.counters.sustained.end(minute)).Add(expiryMargin)
}

// write stores one snapshot unless a newer one is already stored, so a
// write-behind that finishes after the final flush cannot put older
// counters back.
func (g *grain) write(gen uint64, key persistence.KVKey, value []byte, expiresAt time.Time) error {
	g.writes.Lock()
	defer g.writes.Unlock()
	if gen <= g.written {
		return nil
	}
	sctx, cancel := g.storeContext()
	defer cancel()
	if err := g.cfg.Store.Put(sctx, key, value, expiresAt, persistence.PutOptions{}); err != nil {
		return err
	}
	g.written = gen
	return nil
}
