package session

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/persistence"
)

// regenerate answers Regenerate: a new reply to the newest user message,
// stored as the newest message; nothing stored is rewritten (the store
// appends only), so the reply it replaces stays in the history and turns
// leaves it out of later context.
func (g *grain) regenerate(ctx actor.Context, req *Regenerate) {
	if !g.ready(ctx) {
		return
	}
	if g.replying {
		ctx.Respond(&grains.Failure{Code: grains.CodeConflict, Message: "a reply is already in progress in this session"})
		return
	}
	if req.ReplyId == "" {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: "regenerate needs a reply PID"})
		return
	}
	if !g.reserveReply(ctx) {
		return
	}
	defer g.releaseReply()
	for i := len(g.tail) - 1; i >= g.recentFrom(); i-- {
		if g.tail[i].Role == persistence.RoleUser {
			g.startReply(ctx, &Chat{ReplyAddress: req.ReplyAddress, ReplyId: req.ReplyId, Prompt: req.Prompt}, g.tail[i], g.turns(g.tail[g.recentFrom():i]))
			return
		}
	}
	ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: "the session has no user message to reply to again"})
}
