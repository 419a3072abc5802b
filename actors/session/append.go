package session

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/persistence"
)

// maxContentBytes bounds one message. The HTTP edge admits user messages
// of up to 10,000 characters; the grain refuses anything absurd from any
// caller.
const maxContentBytes = 1 << 20

// appendAttempts bounds how often an append reloads and retries after
// another activation of the same session wrote first.
const appendAttempts = 5

func (g *grain) append(ctx actor.Context, req *Append) {
	if !g.ready(ctx) {
		return
	}
	if err := checkAppend(req); err != nil {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: err.Error()})
		return
	}
	msg, _, err := g.store(persistence.Message{
		Role: persistence.Role(req.Role), Content: req.Content, TokenCount: int(req.TokenCount), IdempotencyKey: req.IdempotencyKey,
	}, "")
	if err != nil {
		g.fail(ctx, "append", err)
		return
	}
	ctx.Respond(&Appended{Message: toProto(msg)})
}

// store appends msg as the session's newest, with a new id, the clock's
// time and the next sequence. When another activation of this session (a
// membership change in progress) appended first, it reloads the sequence
// and goes after that message.
//
// When msg carries an idempotency key that a message of keyRole (any role
// when empty) in the tail already holds, store writes nothing and returns
// that message with stored false. It looks before the first attempt and
// again after each reload, since the other activation may have served the
// same request.
func (g *grain) store(msg persistence.Message, keyRole persistence.Role) (_ persistence.Message, stored bool, _ error) {
	id, err := uuid.NewV7()
	if err != nil {
		return persistence.Message{}, false, err
	}
	msg.ID, msg.CreatedAt = id.String(), g.cfg.Clock.Now()
	// The quota is read at every append, so a reloaded tenants file
	// applies at once.
	opts := persistence.AppendOptions{MaxMessages: g.retention.MaxMessages, Quota: g.cfg.Retention(g.key.Tenant).Quota}
	for attempt := 1; ; attempt++ {
		if i := g.findKey(msg.IdempotencyKey, keyRole); i >= 0 {
			return g.tail[i], false, nil
		}
		msg.Seq = g.lastSeq + 1
		sctx, cancel := g.storeContext()
		meta, err := g.cfg.Store.Append(sctx, g.key, g.lastSeq, []persistence.Message{msg}, opts)
		cancel()
		if err == nil {
			g.lastSeq = meta.LastSeq
			g.remember(msg)
			return msg, true, nil
		}
		if !errors.Is(err, persistence.ErrSequenceConflict) || attempt == appendAttempts {
			return persistence.Message{}, false, err
		}
		g.cfg.Logger.Info("session written elsewhere; reloading", "tenant", g.key.Tenant, "session", g.key.Session, "lastSeq", g.lastSeq)
		if err := g.load(); err != nil {
			return persistence.Message{}, false, err
		}
	}
}

func checkAppend(req *Append) error {
	switch persistence.Role(req.Role) {
	case persistence.RoleUser, persistence.RoleAssistant, persistence.RoleSystem:
	default:
		return fmt.Errorf("role %q is not user, assistant or system", req.Role)
	}
	switch {
	case req.Content == "":
		return errors.New("content is empty")
	case len(req.Content) > maxContentBytes:
		return fmt.Errorf("content is %d bytes, over the %d limit", len(req.Content), maxContentBytes)
	case !utf8.ValidString(req.Content):
		return errors.New("content is not valid UTF-8")
	case req.TokenCount < 0:
		return fmt.Errorf("tokenCount %d is negative", req.TokenCount)
	}
	return checkIdempotencyKey(req.IdempotencyKey)
}

func toProto(m persistence.Message) *Message {
	return &Message{
		Id:                m.ID,
		Seq:               m.Seq,
		Role:              string(m.Role),
		Content:           m.Content,
		TokenCount:        int32(m.TokenCount),
		CreatedAtUnixNano: m.CreatedAt.UnixNano(),
		FinishReason:      m.FinishReason,
	}
}
