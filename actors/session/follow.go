package session

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/persistence"
)

// liveReply is the reply in progress of a session, shared by the
// goroutine running the model (token) and the grain (follow, end): every
// PID that follows it, the Chat's first, is sent each token in order, and
// the tokens written so far are kept, up to a byte bound, for followers
// that join late (Follow). The lock makes "send the tokens so far, then
// join" one step against "keep a token, then send it to everyone", so a
// follower sees every token once, in order.
type liveReply struct {
	mu        sync.Mutex
	root      *actor.RootContext
	user      *Message
	followers []*actor.PID
	tokens    []*Token
	bytes     int
	limit     int  // the byte bound of tokens
	overflow  bool // tokens past limit were not kept: no new followers
}

func newLiveReply(root *actor.RootContext, user *Message, first *actor.PID, limit int) *liveReply {
	return &liveReply{root: root, user: user, followers: []*actor.PID{first}, limit: limit}
}

// token keeps t (while under the bound) and sends it to every follower.
// Called from the reply's goroutine.
func (l *liveReply) token(t *Token) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.overflow {
		l.bytes += len(t.Text)
		if l.bytes > l.limit {
			l.overflow, l.tokens = true, nil
		} else {
			l.tokens = append(l.tokens, t)
		}
	}
	for _, pid := range l.followers {
		l.root.Send(pid, t)
	}
}

// follow sends pid the tokens so far and makes it a follower, returning
// how many tokens it sent; false when the reply is past the bound and its
// start is lost.
func (l *liveReply) follow(pid *actor.PID) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.overflow {
		return 0, false
	}
	for _, t := range l.tokens {
		l.root.Send(pid, t)
	}
	l.followers = append(l.followers, pid)
	return len(l.tokens), true
}

// end sends every follower the reply's end (ReplyDone or ReplyFailed).
// Called from the grain, after the reply's goroutine has sent its last
// token.
func (l *liveReply) end(msg proto.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, pid := range l.followers {
		l.root.Send(pid, msg)
	}
}

// startLive makes the reply starting now to user the session's live reply,
// first followed by to, the Chat's reply PID.
func (g *grain) startLive(ctx actor.Context, user persistence.Message, to *actor.PID) *liveReply {
	g.live = newLiveReply(ctx.ActorSystem().Root, toProto(user), to, g.cfg.FollowBytes)
	return g.live
}

// endLive sends every follower of the live reply its end; after it no
// reply is live, and Follow answers Idle.
func (g *grain) endLive(msg proto.Message) {
	g.live.end(msg)
	g.live = nil
}

// follow answers Follow: Following and the reply in progress, or Idle.
func (g *grain) follow(ctx actor.Context, req *Follow) {
	if !g.ready(ctx) {
		return
	}
	if req.ReplyId == "" {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: "follow needs a reply PID"})
		return
	}
	if g.live == nil {
		ctx.Respond(&Idle{})
		return
	}
	// The reply PID exists before the request is sent, so the tokens sent
	// here wait in it for the answer below.
	written, ok := g.live.follow(actor.NewPID(req.ReplyAddress, req.ReplyId))
	if !ok {
		ctx.Respond(&grains.Failure{Code: grains.CodeUnavailable,
			Message: "the reply in progress is too long to replay from its start; it will be in the session's history when it ends"})
		return
	}
	ctx.Respond(&Following{UserMessage: g.live.user, Host: ctx.ActorSystem().Address(), Tokens: int32(written)})
}
