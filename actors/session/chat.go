package session

import (
	"context"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/persistence"
)

// CodeUpstreamFailed is the Failure code of a ReplyFailed whose model
// failed, before its first token or after it (then the partial reply is
// stored); the Client reports it as an *UpstreamError.
const CodeUpstreamFailed = "upstream_failed"

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
	root, self := ctx.ActorSystem().Root, ctx.Self()
	prompt := req.Prompt
	if prompt == "" {
		prompt = g.cfg.Prompt(g.key.Tenant)
	}
	mreq := model.Request{Prompt: prompt, History: history, Message: user.Content}
	m := g.cfg.Model
	if g.cfg.Models != nil {
		m = g.cfg.Models(g.key.Tenant)
	}
	mctx, cancel := context.WithTimeout(context.Background(), g.cfg.ReplyTimeout)
	g.stopReply, g.stopped = cancel, false
	go func() {
		defer cancel()
		var reply strings.Builder
		index := int32(0)
		usage, err := m.Stream(mctx, mreq, func(token string) error {
			root.Send(to, &Token{Index: index, Text: token})
			reply.WriteString(token)
			index++
			return nil
		})
		root.Send(self, &replyFinished{to: to, content: reply.String(), usage: usage, err: err})
	}()
}

// replyDone stores a finished reply and tells the requester. A reply that
// failed after its first token is stored as far as it got, with finish
// reason "error", so that the history shows what the client saw; one that
// failed before has nothing to store.
func (g *grain) replyDone(ctx actor.Context, done *replyFinished) {
	g.replying = false
	g.stopReply = nil
	if g.cfg.OnUsage != nil {
		g.cfg.OnUsage(g.key.Tenant, done.usage)
	}
	if g.stopped && done.err != nil {
		// Stop cancelled it: what was written is the reply.
		done.err, done.usage.FinishReason = nil, model.FinishStopped
	}
	if done.err != nil {
		g.cfg.Logger.Warn("model reply failed", "tenant", g.key.Tenant, "session", g.key.Session, "model", done.usage.Model, "err", done.err)
	}
	if done.err != nil && done.content == "" {
		ctx.Send(done.to, &ReplyFailed{Code: CodeUpstreamFailed, Message: "the model failed before its first token; your message is stored, the reply is not",
			Model: done.usage.Model})
		return
	}
	finish := done.usage.FinishReason
	if done.err != nil {
		finish = model.FinishError
	} else if finish == "" {
		finish = model.FinishStop
	}
	msg, _, err := g.store(persistence.Message{Role: persistence.RoleAssistant, Content: done.content, TokenCount: done.usage.CompletionTokens,
		FinishReason: finish}, "")
	if err != nil {
		g.cfg.Logger.Error("storing reply", "tenant", g.key.Tenant, "session", g.key.Session, "err", err)
		ctx.Send(done.to, &ReplyFailed{Code: grains.CodeUnavailable, Message: "the reply could not be stored"})
		return
	}
	if done.err != nil {
		ctx.Send(done.to, &ReplyFailed{
			Code: CodeUpstreamFailed, Message: "the model failed mid-reply; the partial reply is stored with finishReason \"error\"",
			Partial: toProto(msg), Model: done.usage.Model,
			PromptTokens: int32(done.usage.PromptTokens), CompletionTokens: int32(done.usage.CompletionTokens),
		})
		return
	}
	ctx.Send(done.to, &ReplyDone{
		Message:          toProto(msg),
		PromptTokens:     int32(done.usage.PromptTokens),
		CompletionTokens: int32(done.usage.CompletionTokens),
		Model:            done.usage.Model,
	})
}

// turns is the history a reply is given: msgs (part of the in-memory tail,
// oldest first) without what retention already hides.
func (g *grain) turns(msgs []persistence.Message) []model.Turn {
	nb := g.notBefore()
	var out []model.Turn
	for _, m := range msgs {
		if !m.CreatedAt.Before(nb) {
			out = append(out, model.Turn{Role: string(m.Role), Content: m.Content})
		}
	}
	return out
}
