package session

import (
	"context"
	"errors"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/internal/tracing"
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
	cut     bool            // a draining node cut the reply short (Replies.Cut)
	end     func()          // frees the reply's slot in Config.Replies once stored
	trace   context.Context // the chat's span: storing the reply continues its trace
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
	// Take the node's reply slot before storing anything: a draining node
	// refuses the chat with nothing stored, and the client retries on the
	// session's next owner.
	if !g.reserveReply(ctx) {
		return
	}
	defer g.releaseReply() // when no reply started: a replay, or a failure
	history := g.turns(g.tail[g.recentFrom():])
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

// replyRun is a reply's slot in Config.Replies: the context the model
// runs under (cut when a draining node gives up waiting) and the function
// that frees the slot.
type replyRun struct {
	ctx context.Context
	end func()
}

// reserveReply takes the node's reply slot (Config.Replies) for a reply
// about to start; when the node is draining it answers unavailable and
// returns false.
func (g *grain) reserveReply(ctx actor.Context) bool {
	rctx, end, ok := g.cfg.Replies.start(context.Background())
	if !ok {
		ctx.Respond(&grains.Failure{Code: grains.CodeUnavailable, Message: "this node is shutting down; send the message again to reach the session's next node"})
		return false
	}
	g.run = &replyRun{ctx: rctx, end: end}
	return true
}

// releaseReply frees a slot reserveReply took that no reply started with.
func (g *grain) releaseReply() {
	if g.run != nil {
		g.run.end()
		g.run = nil
	}
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
	m := g.cfg.Model
	if g.cfg.Models != nil {
		m = g.cfg.Models(g.key.Tenant)
	}
	run := g.run
	g.run = nil
	mctx, cancel := context.WithTimeout(run.ctx, g.cfg.ReplyTimeout)
	g.stopReply, g.stopped = cancel, false
	chat := g.storeParent() // the chat's span, when tracing is on
	go func() {
		defer cancel()
		var reply strings.Builder
		index := int32(0)
		sctx, span := mctx, trace.SpanFromContext(mctx)
		if tracing.Enabled() {
			sctx, span = tracing.Start(trace.ContextWithSpan(mctx, trace.SpanFromContext(chat)), "model stream", trace.WithSpanKind(trace.SpanKindClient))
		}
		usage, err := m.Stream(sctx, mreq, func(token string) error {
			live.token(&Token{Index: index, Text: token})
			reply.WriteString(token)
			index++
			return nil
		})
		if span.IsRecording() {
			span.SetAttributes(attribute.String("gen_ai.response.model", usage.Model),
				attribute.Int("gen_ai.usage.input_tokens", usage.PromptTokens), attribute.Int("gen_ai.usage.output_tokens", usage.CompletionTokens))
		}
		tracing.End(span, err)
		cut := errors.Is(context.Cause(run.ctx), errReplyCut)
		root.Send(self, &replyFinished{to: to, content: reply.String(), usage: usage, err: err, cut: cut, end: run.end, trace: chat})
	}()
}

// replyDone stores a finished reply and tells the requester. A reply that
// failed after its first token is stored as far as it got, with finish
// reason "error", so that the history shows what the client saw; one that
// failed before has nothing to store.
func (g *grain) replyDone(ctx actor.Context, done *replyFinished) {
	g.replying = false
	defer done.end()
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
	failure := CodeUpstreamFailed
	if done.cut {
		failure = grains.CodeUnavailable
	}
	if done.err != nil && done.content == "" {
		message := "the model failed before its first token; your message is stored, the reply is not"
		if done.cut {
			message = "the node shut down before the reply began; your message is stored, the reply is not: send it again"
		}
		g.endLive(&ReplyFailed{Code: failure, Message: message,
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
		f := grains.StoreFailure("the reply could not be stored", err)
		g.endLive(&ReplyFailed{Code: f.Code, Message: f.Message, Quota: f.Quota,
			Model: done.usage.Model, PromptTokens: int32(done.usage.PromptTokens), CompletionTokens: int32(done.usage.CompletionTokens)})
		return
	}
	if done.err != nil {
		g.endLive(&ReplyFailed{
			Code: failure, Message: replyCutShort(done.cut),
			Partial: toProto(msg), Model: done.usage.Model,
			PromptTokens: int32(done.usage.PromptTokens), CompletionTokens: int32(done.usage.CompletionTokens),
		})
		return
	}
	g.endLive(&ReplyDone{
		Message:          toProto(msg),
		PromptTokens:     int32(done.usage.PromptTokens),
		CompletionTokens: int32(done.usage.CompletionTokens),
		Model:            done.usage.Model,
	})
}

// replyCutShort is the message of a reply that ended early and was stored
// as far as it got.
func replyCutShort(cut bool) string {
	if cut {
		return "the node shut down mid-reply; the partial reply is stored with finishReason \"error\": send the message again for a whole one"
	}
	return "the model failed mid-reply; the partial reply is stored with finishReason \"error\""
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
