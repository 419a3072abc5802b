package session

import (
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
)

// Event is one thing a Reply delivers: tokens in order, then exactly one
// end, Done or Err.
type Event struct {
	// Index (0, 1, 2…) and Text are a token's, when Done and Err are nil.
	Index int
	Text  string
	// Done ends a reply that was written and stored.
	Done *Done
	// Err ends a reply that could not be completed or stored: an
	// *UpstreamError when the model failed, otherwise
	// grains.ErrUnavailable, in the session's words.
	Err error
}

// Done is the end of a stored reply.
type Done struct {
	// Message is the stored assistant message.
	Message          Entry
	PromptTokens     int
	CompletionTokens int
	// Model names the model that wrote the reply (a fallback's when the
	// first failed); "" for a replayed reply.
	Model string
}

// ErrUpstreamFailed: the tenant's model failed (HTTP 502). The user
// message is stored; so is the partial reply when the failure followed the
// first token. Reply's Err is then an *UpstreamError.
var ErrUpstreamFailed = errors.New("upstream failed")

// UpstreamError is a Reply's Err when the model failed: errors.Is sees
// ErrUpstreamFailed.
type UpstreamError struct {
	// Message says what failed, in the session's words.
	Message string
	// Model names the model that failed last; "" when none was reached.
	Model string
	// Partial is the stored partial reply (finish reason "error") when
	// the model failed after its first token; nil when nothing of the
	// reply was stored.
	Partial *Entry
	// PromptTokens and CompletionTokens are what the model spent.
	PromptTokens     int
	CompletionTokens int
}

func (e *UpstreamError) Error() string { return e.Message }

// Unwrap returns ErrUpstreamFailed.
func (e *UpstreamError) Unwrap() error { return ErrUpstreamFailed }

func replyFailed(m *ReplyFailed) error {
	if m.Code != CodeUpstreamFailed {
		return grains.Failed(&grains.Failure{Code: m.Code, Message: m.Message, Quota: m.Quota})
	}
	e := &UpstreamError{Message: m.Message, Model: m.Model, PromptTokens: int(m.PromptTokens), CompletionTokens: int(m.CompletionTokens)}
	if m.Partial != nil {
		p := entry(m.Partial)
		e.Partial = &p
	}
	return e
}

// Reply is the caller's end of one chat reply: an actor on this node that
// the session grain sends tokens to, feeding a bounded channel the caller
// drains. When the channel stays full for its grace (the caller
// reads slower than the model writes) the stream is abandoned, never
// buffered without bound. Events, Abandoned and HostLost may be read from
// any goroutine; Close must be called once, when the caller is done.
type Reply struct {
	// UserMessage is the stored user message the reply answers.
	UserMessage Entry
	// Written is, for a Reply from Follow, how many tokens the reply had
	// written when it was joined: they come first, indexes 0 to
	// Written-1. A follower can have seen no token past them. 0 from Chat.
	Written int

	system   *actor.ActorSystem
	pid      *actor.PID
	events   chan *Event
	overflow chan struct{}
	lost     <-chan struct{}
	grace    time.Duration
}

// defaultSlowReaderGrace is ChatRequest.Grace's default.
const defaultSlowReaderGrace = time.Second

// defaultReplyBuffer is ChatRequest.Buffer's default.
const defaultReplyBuffer = 256

// Events delivers the reply's tokens and then its end. It carries
// pointers: the buffer of a stream that is open but idle, as most are,
// is then 8 bytes an event rather than an Event's 48 (2 KiB, not 12, at
// the default 256).
func (r *Reply) Events() <-chan *Event { return r.events }

// Abandoned is closed when the reader fell behind by a whole buffer for
// its grace: later events are dropped. The reply is still stored.
func (r *Reply) Abandoned() <-chan struct{} { return r.overflow }

// HostLost is closed when the node running the session is declared
// failed: no more events can come. Nil (never) when the Client's
// Requester cannot tell.
func (r *Reply) HostLost() <-chan struct{} { return r.lost }

// Close stops the reply's actor. The session finishes and stores the
// reply anyway.
func (r *Reply) Close() { r.system.Root.Stop(r.pid) }

// openReply starts the actor a reply is sent to. With tokens false only
// the first token is kept: the reply's text comes whole in ReplyDone.
func (c *Client) openReply(tokens bool, buffer int, grace time.Duration) *Reply {
	if buffer <= 0 {
		buffer = defaultReplyBuffer
	}
	if grace <= 0 {
		grace = defaultSlowReaderGrace
	}
	r := &Reply{system: c.system, events: make(chan *Event, buffer), overflow: make(chan struct{}), grace: grace}
	sawToken := false
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *Token:
			if !tokens && sawToken {
				return
			}
			sawToken = true
			r.put(&Event{Index: int(m.Index), Text: m.Text})
		case *ReplyDone:
			r.put(&Event{Done: &Done{Message: entry(m.Message), PromptTokens: int(m.PromptTokens), CompletionTokens: int(m.CompletionTokens), Model: m.Model}})
		case *ReplyFailed:
			r.put(&Event{Err: replyFailed(m)})
		}
	})
	r.pid = c.system.Root.SpawnPrefix(props, "reply")
	return r
}

// put queues ev for the reader, waiting up to r.grace for room;
// after that the stream is abandoned and later events are dropped. It
// runs on the reply's own actor, so waiting delays nothing else.
func (r *Reply) put(ev *Event) {
	select {
	case <-r.overflow:
		return
	case r.events <- ev:
		return
	default:
	}
	timer := time.NewTimer(r.grace)
	defer timer.Stop()
	select {
	case r.events <- ev:
	case <-timer.C:
		close(r.overflow)
	}
}
