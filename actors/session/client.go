package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
)

// Client is how Parley's own code (the HTTP edge) talks to ChatSession
// grains: it builds the identity, sends the grain's messages and turns
// its answers into the types below and its failures into grains'
// sentinel errors, so no caller handles a session message. It is safe for
// concurrent use.
type Client struct {
	node   grains.Requester
	hosts  grains.HostWatcher // nil when node cannot tell: a host is never lost
	system *actor.ActorSystem // where reply streams live
}

// NewClient returns a Client that reaches the sessions through node (a
// *cluster.Node in production) and receives reply streams on system, the
// node's actor system. When node is also a grains.HostWatcher, a reply
// whose session's node fails says so (Reply.HostLost).
func NewClient(node grains.Requester, system *actor.ActorSystem) *Client {
	c := &Client{node: node, system: system}
	if hw, ok := node.(grains.HostWatcher); ok {
		c.hosts = hw
	}
	return c
}

// Entry is one stored message of a session.
type Entry struct {
	// ID is unique across all sessions (a UUIDv7).
	ID string
	// Seq numbers the session's messages 1, 2, 3… in append order.
	Seq uint64
	// Role is "user", "assistant" or "system".
	Role       string
	Content    string
	TokenCount int
	// CreatedAt is when the session stored the message, by its node's
	// clock.
	CreatedAt time.Time
	// FinishReason is why an assistant reply ended: "stop", "length",
	// "stopped" or "error" (a partial reply); "" for other messages and
	// for replies stored before it was kept.
	FinishReason string
}

// HistoryPage is one page of a session's history, newest first.
type HistoryPage struct {
	Messages []Entry
	// NextBefore is the cursor of the next (older) page; 0 when this page
	// holds the oldest message.
	NextBefore uint64
}

// History returns up to limit messages older than the cursor before (0:
// from the newest), newest first. limit is 1..MaxHistoryLimit; 0 means
// DefaultHistoryLimit. Errors are ErrBadIdentity, grains.ErrInvalidArgument
// or grains.ErrUnavailable.
func (c *Client) History(ctx context.Context, tenant, sessionID string, limit int, before uint64) (HistoryPage, error) {
	res, err := c.request(ctx, "history", tenant, sessionID, &History{Limit: int32(limit), Before: before})
	if err != nil {
		return HistoryPage{}, err
	}
	page, ok := res.(*Page)
	if !ok {
		return HistoryPage{}, unexpected("history", res)
	}
	out := HistoryPage{Messages: make([]Entry, 0, len(page.Messages)), NextBefore: page.NextBefore}
	for _, m := range page.Messages {
		out.Messages = append(out.Messages, entry(m))
	}
	return out, nil
}

// Clear deletes the session's history. Errors are ErrBadIdentity or
// grains.ErrUnavailable.
func (c *Client) Clear(ctx context.Context, tenant, sessionID string) error {
	res, err := c.request(ctx, "clear", tenant, sessionID, &Clear{})
	if err != nil {
		return err
	}
	if _, ok := res.(*Cleared); !ok {
		return unexpected("clear", res)
	}
	return nil
}

// Stop cancels the session's reply in progress, if any: its model call
// is cancelled, the reply is stored as far as it got with finish reason
// "stopped", and its Reply ends with a Done saying so. It reports whether
// a reply was in progress; nothing running is not an error. Errors are
// ErrBadIdentity, grains.ErrInvalidArgument or grains.ErrUnavailable.
func (c *Client) Stop(ctx context.Context, tenant, sessionID string) (bool, error) {
	res, err := c.request(ctx, "stop", tenant, sessionID, &Stop{})
	if err != nil {
		return false, err
	}
	stopped, ok := res.(*Stopped)
	if !ok {
		return false, unexpected("stop", res)
	}
	return stopped.Replying, nil
}

// ChatRequest is one user message for Chat.
type ChatRequest struct {
	// Content is the user's message.
	Content string
	// Prompt is the tenant's prompt template; empty means the session's
	// configured default.
	Prompt string
	// IdempotencyKey, when set, makes sending the request again safe
	// (ValidIdempotencyKey; docs/sessions.md).
	IdempotencyKey string
	// Tokens is true when the caller wants every token. When false only
	// the first token is delivered (for a time-to-first-token figure): the
	// reply's text comes whole in Done.
	Tokens bool
	// Buffer bounds the events waiting for a slow reader (Reply).
	// Default 256.
	Buffer int
	// Grace is how long a full buffer waits for its reader before the
	// stream is abandoned (Reply.Abandoned): long enough for a reader that
	// reads to take a burst (a replayed reply arrives all at once), short
	// enough that one that stopped reading is let go. 0: one second.
	Grace time.Duration
}

// Chat stores the user message and starts the assistant's reply, which
// the returned Reply delivers; the caller must Close it. Errors are
// ErrBadIdentity, grains.ErrConflict (a reply of this session is already
// in progress), grains.ErrInvalidArgument or grains.ErrUnavailable.
func (c *Client) Chat(ctx context.Context, tenant, sessionID string, req ChatRequest) (*Reply, error) {
	return c.startReply(ctx, "chat", tenant, sessionID, req, func(r *Reply) any {
		return &Chat{Content: req.Content, ReplyAddress: r.pid.Address, ReplyId: r.pid.Id, Prompt: req.Prompt, IdempotencyKey: req.IdempotencyKey}
	})
}

// startReply opens the Reply a new reply is sent to, asks the grain for
// the reply with the message msg makes for it, and returns the Reply once
// the grain has started it (ChatStarted).
func (c *Client) startReply(ctx context.Context, what, tenant, sessionID string, req ChatRequest, msg func(*Reply) any) (*Reply, error) {
	r := c.openReply(req.Tokens, req.Buffer, req.Grace)
	res, err := c.request(ctx, what, tenant, sessionID, msg(r))
	if err != nil {
		r.Close()
		return nil, err
	}
	started, ok := res.(*ChatStarted)
	if !ok {
		r.Close()
		return nil, unexpected(what, res)
	}
	r.UserMessage = entry(started.UserMessage)
	if c.hosts != nil {
		r.lost = c.hosts.HostLost(started.Host)
	}
	return r, nil
}

// request validates the identity, calls the grain and turns a call that
// failed, or a Failure answer, into an error; any other answer is
// returned for the caller to read.
func (c *Client) request(ctx context.Context, op, tenant, sessionID string, msg any) (any, error) {
	identity, err := Identity(tenant, sessionID)
	if err != nil {
		return nil, err
	}
	res, err := c.node.Request(ctx, identity, Kind, msg)
	if err != nil {
		return nil, grains.CallFailed("session "+op, err)
	}
	if f, ok := res.(*grains.Failure); ok {
		return nil, fmt.Errorf("session %s: %w", op, grains.Failed(f))
	}
	return res, nil
}

// unexpected reports an answer no ChatSession grain sends: a bug, not a
// state of the cluster, so it matches no sentinel.
func unexpected(op string, res any) error {
	return fmt.Errorf("session %s: unexpected reply %T", op, res)
}

func entry(m *Message) Entry {
	return Entry{
		ID:         m.GetId(),
		Seq:        m.GetSeq(),
		Role:       m.GetRole(),
		Content:    m.GetContent(),
		TokenCount: int(m.GetTokenCount()),
		CreatedAt:  time.Unix(0, m.GetCreatedAtUnixNano()),
		// A reply stored before finish reasons were kept was a finished
		// one: M1 stored no other.
		FinishReason: finishReason(m),
	}
}

func finishReason(m *Message) string {
	if m.GetFinishReason() == "" && m.GetRole() == "assistant" {
		return "stop"
	}
	return m.GetFinishReason()
}

// ErrNoReply: Follow found no reply in progress in the session.
var ErrNoReply = errors.New("no reply in progress")

// Follow returns the session's reply in progress from its first token,
// however far it has got (Reply.Written tokens), then its later tokens as
// they are written and its end, as Chat's Reply delivers them; the caller must Close it. Any
// number of callers may follow one reply. buffer and grace are
// ChatRequest's Buffer and Grace. Errors are ErrNoReply (nothing in
// progress), ErrBadIdentity, grains.ErrUnavailable (also when the reply is
// past the session's Config.FollowBytes).
func (c *Client) Follow(ctx context.Context, tenant, sessionID string, buffer int, grace time.Duration) (*Reply, error) {
	r := c.openReply(true, buffer, grace)
	res, err := c.request(ctx, "follow", tenant, sessionID, &Follow{ReplyAddress: r.pid.Address, ReplyId: r.pid.Id})
	if err != nil {
		r.Close()
		return nil, err
	}
	switch m := res.(type) {
	case *Idle:
		r.Close()
		return nil, fmt.Errorf("session follow: %w", ErrNoReply)
	case *Following:
		r.UserMessage = entry(m.UserMessage)
		r.Written = int(m.Tokens)
		if c.hosts != nil {
			r.lost = c.hosts.HostLost(m.Host)
		}
		return r, nil
	}
	r.Close()
	return nil, unexpected("follow", res)
}

// Regenerate writes a new reply to the session's newest user message
// without storing that message again; the new reply is stored as the
// newest message, and the one it replaces stays in the history but leaves
// the context of later replies (docs/sessions.md). req.Content and
// req.IdempotencyKey are not used. Errors are Chat's;
// grains.ErrInvalidArgument also when the session has no user message.
func (c *Client) Regenerate(ctx context.Context, tenant, sessionID string, req ChatRequest) (*Reply, error) {
	return c.startReply(ctx, "regenerate", tenant, sessionID, req, func(r *Reply) any {
		return &Regenerate{ReplyAddress: r.pid.Address, ReplyId: r.pid.Id, Prompt: req.Prompt}
	})
}
