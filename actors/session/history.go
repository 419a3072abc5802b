package session

import (
	"fmt"
	"time"

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
	// Memory answers only while it is current: another activation of
	// the session (for a moment, while placements settle) may have
	// written since. One point read of the sequence tells.
	meta, err := g.cfg.Store.Meta(sctx, g.key)
	if err != nil {
		g.fail(ctx, "history", err)
		return
	}
	if meta.LastSeq != g.lastSeq {
		if err := g.load(); err != nil {
			g.fail(ctx, "history", err)
			return
		}
	}
	// One more than asked tells whether an older page exists.
	if req.Before == 0 && g.newest != nil && g.newestLimit == limit && g.visible(g.newest) {
		ctx.Respond(g.newest)
		return
	}
	notBefore := g.notBefore()
	msgs, ok := g.tailPage(req.Before, limit+1, notBefore)
	if !ok {
		if msgs, err = g.cfg.Store.Page(sctx, g.key, req.Before, limit+1, notBefore); err != nil {
			g.fail(ctx, "history", err)
			return
		}
		if req.Before == 0 {
			g.fillTail(msgs, limit+1)
		}
	}
	page := &Page{}
	if len(msgs) > limit {
		msgs = msgs[:limit]
		page.NextBefore = msgs[limit-1].Seq
	}
	page.Messages = make([]*Message, 0, len(msgs))
	for _, m := range msgs {
		page.Messages = append(page.Messages, toProto(m))
	}
	if ok && req.Before == 0 {
		// From memory: answered again, as it is, until the tail
		// changes (a Page is never changed once sent). Its messages
		// share their text with the tail.
		g.newest, g.newestLimit = page, limit
	}
	ctx.Respond(page)
}

// visible says whether the oldest message of a page is still one that
// retention shows (the others are newer).
func (g *grain) visible(p *Page) bool {
	if len(p.Messages) == 0 {
		return true
	}
	return !time.Unix(0, p.Messages[len(p.Messages)-1].CreatedAtUnixNano).Before(g.notBefore())
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
	g.lastSeq = 0
	g.setTail(nil, true)
	ctx.Respond(&Cleared{})
}
