package session

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
)

// stop cancels the reply in progress: its goroutine sees its context end,
// and replyDone stores what was written with finish reason "stopped".
// Nothing runs: Stopped all the same, so that a client's stop is never an
// error.
func (g *grain) stop(ctx actor.Context) {
	if g.keyErr != nil {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: g.keyErr.Error()})
		return
	}
	if !g.replying || g.stopReply == nil {
		ctx.Respond(&Stopped{})
		return
	}
	g.stopped = true
	g.stopReply()
	ctx.Respond(&Stopped{Replying: true})
}
