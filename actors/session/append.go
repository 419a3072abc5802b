package session

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

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
		ctx.Respond(&Failure{Code: CodeInvalidArgument, Message: err.Error()})
		return
	}
	msg, err := g.store(persistence.Role(req.Role), req.Content, int(req.TokenCount))
	if err != nil {
		g.fail(ctx, "append", err)
		return
	}
	ctx.Respond(&Appended{Message: toProto(msg)})
}

// store appends one message as the session's newest. When another
// activation of this session (a membership change in progress) appended
// first, it reloads the sequence and goes after that message.
func (g *grain) store(role persistence.Role, content string, tokens int) (persistence.Message, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return persistence.Message{}, err
	}
	msg := persistence.Message{ID: id.String(), Role: role, Content: content, TokenCount: tokens, CreatedAt: g.cfg.Clock.Now()}
	opts := persistence.AppendOptions{MaxMessages: g.retention.MaxMessages}
	for attempt := 1; ; attempt++ {
		msg.Seq = g.lastSeq + 1
		sctx, cancel := g.storeContext()
		meta, err := g.cfg.Store.Append(sctx, g.key, g.lastSeq, []persistence.Message{msg}, opts)
		cancel()
		if err == nil {
			g.lastSeq = meta.LastSeq
			g.remember(msg)
			return msg, nil
		}
		if !errors.Is(err, persistence.ErrSequenceConflict) || attempt == appendAttempts {
			return persistence.Message{}, err
		}
		g.cfg.Logger.Info("session written elsewhere; reloading", "tenant", g.key.Tenant, "session", g.key.Session, "lastSeq", g.lastSeq)
		if err := g.load(); err != nil {
			return persistence.Message{}, err
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
	return nil
}

// remember adds msg to the in-memory tail, keeping at most TailSize.
func (g *grain) remember(msg persistence.Message) {
	if g.cfg.TailSize == 0 {
		return
	}
	g.tail = append(g.tail, msg)
	if extra := len(g.tail) - g.cfg.TailSize; extra > 0 {
		g.tail = append(g.tail[:0:0], g.tail[extra:]...)
	}
}

func toProto(m persistence.Message) *Message {
	return &Message{
		Id:                m.ID,
		Seq:               m.Seq,
		Role:              string(m.Role),
		Content:           m.Content,
		TokenCount:        int32(m.TokenCount),
		CreatedAtUnixNano: m.CreatedAt.UnixNano(),
	}
}
