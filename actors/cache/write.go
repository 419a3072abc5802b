package cache

import (
	"bytes"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/persistence"
)

// put stores the entry: first in the store, which returns once the write
// is durable, then in memory, so the grain never answers with a value the
// store could not keep.
func (g *grain) put(ctx actor.Context, req *Put) {
	if !g.ready(ctx) {
		return
	}
	ttl, err := checkPut(req)
	if err != nil {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: err.Error()})
		return
	}
	// A local sender still holds req.Value; the entry keeps its own copy.
	value := bytes.Clone(req.Value)
	expiresAt := g.cfg.Clock.Now().Add(ttl)
	sctx, cancel := g.storeContext()
	defer cancel()
	if err := g.cfg.Store.Put(sctx, g.key, value, expiresAt, persistence.PutOptions{Quota: g.cfg.Quota(g.key.Tenant)}); err != nil {
		g.unsure()
		g.fail(ctx, "put", err)
		return
	}
	g.present, g.value, g.expiresAt = true, value, expiresAt
	ctx.Respond(&Stored{ExpiresAtUnixNano: expiresAt.UnixNano()})
}

// delete removes the entry from the store, then from memory.
func (g *grain) delete(ctx actor.Context) {
	if !g.ready(ctx) {
		return
	}
	sctx, cancel := g.storeContext()
	defer cancel()
	if err := g.cfg.Store.Delete(sctx, g.key); err != nil {
		g.unsure()
		g.fail(ctx, "delete", err)
		return
	}
	g.forget()
	ctx.Respond(&Deleted{})
}

// unsure follows a failed write, which may still have reached the disk (a
// timeout after the commit): memory no longer mirrors the store, so the
// next request reloads it instead of answering from a guess.
func (g *grain) unsure() {
	g.forget()
	g.loaded = false
}

// checkPut validates a Put with the rules Client applies, and returns the
// TTL the entry gets.
func checkPut(req *Put) (time.Duration, error) {
	if err := checkValue(req.Value); err != nil {
		return 0, err
	}
	return effectiveTTL(time.Duration(req.TtlNanos))
}
