package session

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/persistence"
)

// # Idempotency keys
//
// A Chat or Append may carry a key the client chose for the request. The
// key is stored with the message the request stored (the user message of a
// Chat), and a request with a key the session's in-memory tail already
// holds stores nothing again: an Append answers with the stored message, a
// Chat with the stored user message and then the stored reply, or a new
// reply when none was stored after it (the node writing it died). The tail
// is loaded from the store on activation, so the activation that takes
// over from a failed node knows the keys its predecessor stored.
//
// A key is recognised only while its message is among the TailSize newest
// messages of the session: a retry comes seconds after the request, and
// keeping keys any longer would mean an index beside the history.

// MaxIdempotencyKeyLen is the longest idempotency key, in bytes.
const MaxIdempotencyKeyLen = 128

// ValidIdempotencyKey reports whether key is 1 to MaxIdempotencyKeyLen
// printable ASCII characters other than space (0x21–0x7E), the rule the
// HTTP edge and the grain both apply.
func ValidIdempotencyKey(key string) bool {
	if len(key) == 0 || len(key) > MaxIdempotencyKeyLen {
		return false
	}
	for i := range len(key) {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkIdempotencyKey accepts no key, or a valid one.
func checkIdempotencyKey(key string) error {
	if key != "" && !ValidIdempotencyKey(key) {
		return fmt.Errorf("idempotency key must be 1 to %d printable ASCII characters without spaces", MaxIdempotencyKeyLen)
	}
	return nil
}

// findKey returns the tail index of the newest message holding the
// idempotency key key and, unless role is empty, of that role; -1 when
// there is none or key is empty.
func (g *grain) findKey(key string, role persistence.Role) int {
	if key == "" {
		return -1
	}
	for i := len(g.tail) - 1; i >= g.recentFrom(); i-- {
		if m := g.tail[i]; m.IdempotencyKey == key && (role == "" || m.Role == role) {
			return i
		}
	}
	return -1
}

// chatAgain answers a Chat whose idempotency key names a user message
// already stored, by an earlier try of the same request on this or
// another activation. When the next message is an assistant's, it is that
// message's reply: replay it. Otherwise the node writing the reply failed
// before storing it: write it now, for the stored user message.
func (g *grain) chatAgain(ctx actor.Context, req *Chat) {
	i := g.findKey(req.IdempotencyKey, persistence.RoleUser)
	user := g.tail[i]
	if i+1 < len(g.tail) {
		if next := g.tail[i+1]; next.Seq == user.Seq+1 && next.Role == persistence.RoleAssistant {
			g.replay(ctx, req, user, next)
			return
		}
	}
	g.startReply(ctx, req, user, g.turns(g.tail[g.recentFrom():i]))
}

// replay sends a stored reply the way a live one arrives: ChatStarted to
// the requester, then the reply's tokens and ReplyDone to its reply PID.
// Nothing is stored and no model runs. Usage is the stored messages' token
// counts (the prompt a reply was given is not stored).
func (g *grain) replay(ctx actor.Context, req *Chat, user, reply persistence.Message) {
	ctx.Respond(&ChatStarted{UserMessage: toProto(user), Host: ctx.ActorSystem().Address()})
	to := actor.NewPID(req.ReplyAddress, req.ReplyId)
	for i, token := range model.Tokens(reply.Content) {
		ctx.Send(to, &Token{Index: int32(i), Text: token})
	}
	ctx.Send(to, &ReplyDone{
		Message:          toProto(reply),
		PromptTokens:     int32(user.TokenCount),
		CompletionTokens: int32(reply.TokenCount),
	})
}
