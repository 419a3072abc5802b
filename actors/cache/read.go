package cache

import (
	"bytes"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// get answers from memory. An entry whose expiry has come is a miss from
// that instant and is dropped from memory; the node's sweep removes it from
// disk.
func (g *grain) get(ctx actor.Context) {
	if !g.ready(ctx) {
		return
	}
	if g.present && !g.expiresAt.After(g.cfg.Clock.Now()) {
		g.forget()
	}
	if !g.present {
		ctx.Respond(&Miss{})
		return
	}
	// A local caller receives this very message, so it gets its own copy
	// of the bytes and cannot change the entry by changing its answer.
	ctx.Respond(&Value{Value: bytes.Clone(g.value), ExpiresAtUnixNano: g.expiresAt.UnixNano()})
}

// forget empties the in-memory entry.
func (g *grain) forget() {
	g.present, g.value, g.expiresAt = false, nil, time.Time{}
}
