package edge

import (
	"context"
	"strings"
	"time"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
)

// replySource is where the compatible routes (openai.go, uichat.go) read a
// reply from: a session's Reply, or a one-shot call of the tenant's model
// that stores nothing. Either way it delivers session.Events: tokens in
// order, then exactly one Done or Err.
type replySource struct {
	// userMessage is the stored message a session's reply answers (zero
	// for a one-shot call).
	userMessage session.Entry
	events      <-chan *session.Event
	abandoned   <-chan struct{} // nil: never
	hostLost    <-chan struct{} // nil: never
	close       func()
}

// fromSession reads a session's reply.
func fromSession(r *session.Reply) *replySource {
	return &replySource{userMessage: r.UserMessage, events: r.Events(), abandoned: r.Abandoned(), hostLost: r.HostLost(), close: r.Close}
}

// oneShot runs m on req from the edge, for a call that names no session:
// nothing is stored and no grain is involved, so the only state is the
// request's own messages and the tenant's model, and no other tenant's
// data can be reached. The model writes into a channel of buffer events:
// a reader that falls behind holds the model back (the channel is full)
// instead of growing a buffer. The call ends with ctx or after timeout;
// close cancels it and waits for its goroutine.
func oneShot(ctx context.Context, m model.Model, req model.Request, buffer int, timeout time.Duration) *replySource {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	events := make(chan *session.Event, buffer)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var reply strings.Builder
		index := 0
		usage, err := m.Stream(ctx, req, func(token string) error {
			reply.WriteString(token)
			select {
			case events <- &session.Event{Index: index, Text: token}:
				index++
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		end := &session.Event{Done: &session.Done{
			Message:      session.Entry{Role: "assistant", Content: reply.String(), TokenCount: usage.CompletionTokens, CreatedAt: time.Now()},
			PromptTokens: usage.PromptTokens, CompletionTokens: usage.CompletionTokens,
		}}
		if err != nil {
			end = &session.Event{Err: grains.Failed(&grains.Failure{Code: grains.CodeUnavailable, Message: "the model failed to complete the reply"})}
		}
		select {
		case events <- end:
		case <-ctx.Done():
		}
	}()
	return &replySource{events: events, close: func() { cancel(); <-finished }}
}

// relay hands each event of src to on until on returns false (the end was
// handled, or the client is gone), calling ping (when not nil) after each
// Heartbeat without an event. It returns the error that ended the reply
// early in the edge's own words (errStalled, errHostLost,
// errSlowConsumer), for the caller to answer in its route's format; nil
// otherwise, and when ctx ends (the client went away).
func (s *server) relay(ctx context.Context, src *replySource, ping func() bool, on func(session.Event) bool) error {
	stall := time.NewTimer(s.cfg.StallTimeout)
	defer stall.Stop()
	ticker := time.NewTicker(s.cfg.Heartbeat)
	defer ticker.Stop()
	var heartbeat <-chan time.Time // nil, never ready, without ping
	if ping != nil {
		heartbeat = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-src.abandoned:
			return errSlowConsumer
		case <-src.hostLost:
			return errHostLost
		case <-stall.C:
			return errStalled
		case <-heartbeat:
			if !ping() {
				return nil
			}
		case ev := <-src.events:
			stall.Reset(s.cfg.StallTimeout)
			ticker.Reset(s.cfg.Heartbeat) // pings only while idle
			if !on(*ev) {
				return nil
			}
		}
	}
}
