package session

import (
	"context"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/persistence"
)

// replyFinished is what the reply's goroutine tells the grain when the
// model is done.
type replyFinished struct {
	to      *actor.PID
	content string
	usage   model.Usage
	err     error
}

// chat stores the user's message, answers ChatStarted, and runs the model
// on its own goroutine so the grain keeps serving (a second Chat gets
// "conflict" at once, History still answers). Tokens go straight from that
// goroutine to the requester's PID; the grain stores the reply when the
// model finishes, whether or not anyone is still listening. A Chat whose
// idempotency key the session already holds is chatAgain's.
func (g *grain) chat(ctx actor.Context, req *Chat) {
	if !g.ready(ctx) {
		return
	}
	if g.replying {
		ctx.Respond(&grains.Failure{Code: grains.CodeConflict, Message: "a reply is already in progress in this session"})
		return
	}
	if err := checkAppend(&Append{Role: string(persistence.RoleUser), Content: req.Content}); err != nil || req.ReplyId == "" {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: "chat needs non-empty UTF-8 content and a reply PID"})
		return
	}
	if err := checkIdempotencyKey(req.IdempotencyKey); err != nil {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: err.Error()})
		return
	}
	history := g.turns(g.tail)
	user, stored, err := g.store(persistence.Message{
		Role: persistence.RoleUser, Content: req.Content, TokenCount: model.CountTokens(req.Content), IdempotencyKey: req.IdempotencyKey,
	}, persistence.RoleUser)
	if err != nil {
		g.fail(ctx, "chat", err)
		return
	}
	if !stored {
		g.chatAgain(ctx, req)
		return
	}
	g.startReply(ctx, req, user, history)
}

// startReply answers ChatStarted for the stored user message and runs the
// model on it, given history (oldest first).
func (g *grain) startReply(ctx actor.Context, req *Chat, user persistence.Message, history []model.Turn) {
	g.replying = true
	ctx.Respond(&ChatStarted{UserMessage: toProto(user), Host: ctx.ActorSystem().Address()})

	to := actor.NewPID(req.ReplyAddress, req.ReplyId)
	live := g.startLive(ctx, user, to)
	root, self := ctx.ActorSystem().Root, ctx.Self()
	prompt := req.Prompt
	if prompt == "" {
		prompt = g.cfg.Prompt(g.key.Tenant)
	}
	mreq := model.Request{Prompt: prompt, History: history, Message: user.Content}
	m, timeout := g.cfg.Model, g.cfg.ReplyTimeout
	go func() {
		mctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var reply strings.Builder
		index := int32(0)
		usage, err := m.Stream(mctx, mreq, func(token string) error {
			live.token(&Token{Index: index, Text: token})
			reply.WriteString(token)
			index++
			return nil
		})
		root.Send(self, &replyFinished{to: to, content: reply.String(), usage: usage, err: err})
	}()
}

// replyDone stores a finished reply and tells the requester.
func (g *grain) replyDone(ctx actor.Context, done *replyFinished) {
	g.replying = false
	if done.err != nil {
		g.cfg.Logger.Warn("model reply failed", "tenant", g.key.Tenant, "session", g.key.Session, "err", done.err)
		g.endLive(&ReplyFailed{Code: grains.CodeUnavailable, Message: "the model failed to complete the reply"})
		return
	}
	msg, _, err := g.store(persistence.Message{Role: persistence.RoleAssistant, Content: done.content, TokenCount: done.usage.CompletionTokens}, "")
	if err != nil {
		g.cfg.Logger.Error("storing reply", "tenant", g.key.Tenant, "session", g.key.Session, "err", err)
		g.endLive(&ReplyFailed{Code: grains.CodeUnavailable, Message: "the reply could not be stored"})
		return
	}
	g.endLive(&ReplyDone{
		Message:          toProto(msg),
		PromptTokens:     int32(done.usage.PromptTokens),
		CompletionTokens: int32(done.usage.CompletionTokens),
	})
}

// turns is the history a reply is given: msgs (part of the in-memory tail,
// oldest first) without what retention already hides.
func (g *grain) turns(msgs []persistence.Message) []model.Turn {
	nb := g.notBefore()
	var out []model.Turn
	for i, m := range msgs {
		// An assistant message followed by another was replaced
		// (Regenerate): only the newer is context.
		superseded := m.Role == persistence.RoleAssistant && i+1 < len(msgs) && msgs[i+1].Role == persistence.RoleAssistant
		if !m.CreatedAt.Before(nb) && !superseded {
			out = append(out, model.Turn{Role: string(m.Role), Content: m.Content})
		}
	}
	return out
}
