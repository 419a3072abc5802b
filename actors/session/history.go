package session

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
)

// History page sizes.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 100
)

func (g *grain) history(ctx actor.Context, req *History) {
	if !g.ready(ctx) {
		return
	}
	limit := int(req.Limit)
	if limit == 0 {
		limit = DefaultHistoryLimit
	}
	if limit < 1 || limit > MaxHistoryLimit {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: fmt.Sprintf("limit %d is outside 1..%d", req.Limit, MaxHistoryLimit)})
		return
	}
	sctx, cancel := g.storeContext()
	defer cancel()
	// One more than asked tells whether an older page exists.
	msgs, err := g.cfg.Store.Page(sctx, g.key, req.Before, limit+1, g.notBefore())
	if err != nil {
		g.fail(ctx, "history", err)
		return
	}
	page := &Page{}
	if len(msgs) > limit {
		msgs = msgs[:limit]
		page.NextBefore = msgs[limit-1].Seq
	}
	for _, m := range msgs {
		page.Messages = append(page.Messages, toProto(m))
	}
	ctx.Respond(page)
}

func (g *grain) clear(ctx actor.Context) {
	if !g.ready(ctx) {
		return
	}
	sctx, cancel := g.storeContext()
	defer cancel()
	if err := g.cfg.Store.DeleteSession(sctx, g.key); err != nil {
		g.fail(ctx, "clear", err)
		return
	}
	g.lastSeq, g.tail = 0, nil
	ctx.Respond(&Cleared{})
}
