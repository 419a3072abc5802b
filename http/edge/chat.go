package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/cluster"
)

// HeaderIdempotencyKey is the optional request header of POST /chat that
// makes sending the request again safe (docs/http.md).
const HeaderIdempotencyKey = "Idempotency-Key"

// chatRequest is the body of POST /chat.
type chatRequest struct {
	SessionID string `json:"sessionId" validate:"required,uuid"`
	Message   string `json:"message" validate:"required,min=1,max=10000"`
	Stream    *bool  `json:"stream"`
}

// Usage is a reply's token usage.
type Usage struct {
	PromptTokens     int `json:"promptTokens"`
	CompletionTokens int `json:"completionTokens"`
	TotalTokens      int `json:"totalTokens"`
}

// doneEvent is the data of the SSE `done` event.
type doneEvent struct {
	MessageID string `json:"messageId"`
	Usage     Usage  `json:"usage"`
	LatencyMs int64  `json:"latencyMs"`
	TTFTMs    int64  `json:"ttftMs"`
	TraceID   string `json:"traceId"`
	// Model names the model that wrote the reply (a fallback's when the
	// first failed); FinishReason is why it ended (docs/models.md).
	Model        string `json:"model,omitempty"`
	FinishReason string `json:"finishReason"`
}

// chatResponse is the body of POST /chat with "stream": false.
type chatResponse struct {
	Message   messageJSON `json:"message"`
	Usage     Usage       `json:"usage"`
	LatencyMs int64       `json:"latencyMs"`
	TTFTMs    int64       `json:"ttftMs"`
	TraceID   string      `json:"traceId"`
	Model     string      `json:"model,omitempty"`
}

// replyStream is the edge end of one reply: an actor on this node that
// the session grain sends tokens to, feeding a bounded channel the
// handler drains. When the channel stays full for slowReaderGrace (the
// client reads slower than the model writes) the stream is abandoned,
// never buffered without bound.
type replyStream struct {
	pid      *actor.PID
	events   chan any
	overflow chan struct{}
}

// slowReaderGrace is how long a full stream buffer waits for its client
// before the stream is abandoned: long enough for a client that reads to
// take a burst (a replayed reply arrives all at once), short enough that
// one that stopped reading is let go.
const slowReaderGrace = time.Second

// openStream starts the actor a reply is sent to. With tokens false (a
// stream:false request) only the first token is kept, for the
// time-to-first-token figure: the reply's text comes whole in ReplyDone.
func (s *server) openStream(tokens bool) *replyStream {
	rs := &replyStream{events: make(chan any, s.cfg.StreamBuffer), overflow: make(chan struct{})}
	sawToken := false
	props := actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *session.Token:
			if !tokens && sawToken {
				return
			}
			sawToken = true
			rs.put(m)
		case *session.ReplyDone, *session.ReplyFailed:
			rs.put(m)
		}
	})
	rs.pid = s.cfg.System.Root.SpawnPrefix(props, "reply")
	return rs
}

// put queues ev for the handler, waiting up to slowReaderGrace for room;
// after that the stream is abandoned and later events are dropped. It
// runs on the stream's own actor, so waiting delays nothing else.
func (rs *replyStream) put(ev any) {
	select {
	case <-rs.overflow:
		return
	case rs.events <- ev:
		return
	default:
	}
	timer := time.NewTimer(slowReaderGrace)
	defer timer.Stop()
	select {
	case rs.events <- ev:
	case <-timer.C:
		close(rs.overflow)
	}
}

func (s *server) closeStream(rs *replyStream) { s.cfg.System.Root.Stop(rs.pid) }

func (s *server) chat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req chatRequest
	if rerr := decodeJSON(r, &req); rerr != nil {
		rerr.write(w)
		return
	}
	tenant := tenantOf(r.Context())
	identity, err := session.Identity(tenant.ID, strings.ToLower(req.SessionID))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeValidation, "request has invalid fields", ErrorDetail{Field: "sessionId", Message: "must be a UUID"})
		return
	}
	idempotencyKey, rerr := idempotencyKeyOf(r)
	if rerr != nil {
		rerr.write(w)
		return
	}

	prompt := s.modelConfig(r.Context(), tenant).PromptTemplate
	streaming := req.Stream == nil || *req.Stream
	rs := s.openStream(streaming)
	defer s.closeStream(rs)
	res, err := s.cfg.Grains.Request(r.Context(), identity, session.Kind, &session.Chat{
		Content: req.Message, ReplyAddress: rs.pid.Address, ReplyId: rs.pid.Id, Prompt: prompt, IdempotencyKey: idempotencyKey,
	})
	if err != nil {
		s.grainError(w, r, err)
		return
	}
	started, ok := res.(*session.ChatStarted)
	if !ok {
		s.grainReply(w, res)
		return
	}
	hostLost := s.cfg.Grains.HostLost(started.Host)
	if streaming {
		s.streamReply(w, r, rs, hostLost, start, tenant.ID)
		return
	}
	s.wholeReply(w, r, rs, hostLost, start, tenant.ID)
}

// idempotencyKeyOf reads the optional Idempotency-Key header: "" when it is
// absent, a 400 when it is present but empty, repeated, or not 1 to 128
// printable ASCII characters.
func idempotencyKeyOf(r *http.Request) (string, *requestError) {
	values, ok := r.Header[HeaderIdempotencyKey]
	switch {
	case !ok:
		return "", nil
	case len(values) == 1 && session.ValidIdempotencyKey(values[0]):
		return values[0], nil
	}
	return "", &requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request has invalid headers",
		details: []ErrorDetail{{Field: HeaderIdempotencyKey, Message: fmt.Sprintf(
			"must be given once, as 1 to %d printable ASCII characters without spaces", session.MaxIdempotencyKeyLen)}}}
}

// streamReply relays the reply as Server-Sent Events, flushing each token
// as it arrives, with heartbeat comments while idle.
func (s *server) streamReply(w http.ResponseWriter, r *http.Request, rs *replyStream, hostLost <-chan struct{}, start time.Time, tenant string) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	s.cfg.Metrics.streams.Inc()
	defer s.cfg.Metrics.streams.Dec()

	traceID := w.Header().Get(HeaderTraceID)
	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	stall := time.NewTimer(s.cfg.StallTimeout)
	defer stall.Stop()
	var ttft time.Duration
	// One buffer for the whole stream: each event is framed in it and
	// written with a single Write, no copy per token.
	var frame bytes.Buffer
	send := func(event, id string, data any) bool {
		frame.Reset()
		if id != "" {
			frame.WriteString("id: " + id + "\n")
		}
		frame.WriteString("event: " + event + "\ndata: ")
		if err := json.NewEncoder(&frame).Encode(data); err != nil { // ends with "\n"
			return false
		}
		frame.WriteString("\n")
		if _, err := w.Write(frame.Bytes()); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	fail := func(code, message string) {
		send("error", "", ErrorBody{Error: ErrorInfo{Code: code, Message: message}, TraceID: traceID})
	}
	for {
		select {
		case <-r.Context().Done():
			// The client went away: stop writing and free the PID now
			// (deferred); the grain finishes and stores the reply anyway.
			return
		case <-rs.overflow:
			fail("slow_consumer", "the client read too slowly; the reply is stored in the session's history")
			return
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-stall.C:
			fail(CodeUnavailable, "the session stopped answering; the reply may still be stored in the session's history")
			return
		case <-hostLost:
			fail(CodeUnavailable, hostLostMessage)
			return
		case ev := <-rs.events:
			stall.Reset(s.cfg.StallTimeout)
			heartbeat.Reset(s.cfg.Heartbeat) // pings only while idle
			switch m := ev.(type) {
			case *session.Token:
				if ttft == 0 {
					ttft = time.Since(start)
					s.cfg.Metrics.ttft.Observe(ttft.Seconds())
				}
				if !send("token", fmt.Sprint(m.Index), map[string]string{"text": m.Text}) {
					return
				}
			case *session.ReplyDone:
				s.cfg.Metrics.replyTokens(tenant, m.Model, int(m.PromptTokens), int(m.CompletionTokens))
				send("done", "", doneEvent{
					MessageID:    m.Message.Id,
					Usage:        usage(m),
					LatencyMs:    time.Since(start).Milliseconds(),
					TTFTMs:       ttft.Milliseconds(),
					TraceID:      traceID,
					Model:        m.Model,
					FinishReason: m.Message.FinishReason,
				})
				return
			case *session.ReplyFailed:
				s.cfg.Metrics.replyTokens(tenant, m.Model, int(m.PromptTokens), int(m.CompletionTokens))
				fail(replyFailedCode(m), m.Message)
				return
			}
		}
	}
}

// wholeReply waits for the whole reply and answers it as one JSON body. Its
// stream holds at most the first token and the end (openStream), so it
// cannot overflow.
func (s *server) wholeReply(w http.ResponseWriter, r *http.Request, rs *replyStream, hostLost <-chan struct{}, start time.Time, tenant string) {
	var ttft time.Duration
	stall := time.NewTimer(s.cfg.StallTimeout)
	defer stall.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-stall.C:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the session stopped answering; the reply may still be stored in its history")
			return
		case <-hostLost:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, CodeUnavailable, hostLostMessage)
			return
		case ev := <-rs.events:
			stall.Reset(s.cfg.StallTimeout)
			switch m := ev.(type) {
			case *session.Token:
				if ttft == 0 {
					ttft = time.Since(start)
					s.cfg.Metrics.ttft.Observe(ttft.Seconds())
				}
			case *session.ReplyDone:
				s.cfg.Metrics.replyTokens(tenant, m.Model, int(m.PromptTokens), int(m.CompletionTokens))
				writeJSON(w, http.StatusOK, chatResponse{
					Message:   toJSON(m.Message),
					Usage:     usage(m),
					LatencyMs: time.Since(start).Milliseconds(),
					TTFTMs:    ttft.Milliseconds(),
					TraceID:   w.Header().Get(HeaderTraceID),
					Model:     m.Model,
				})
				return
			case *session.ReplyFailed:
				s.cfg.Metrics.replyTokens(tenant, m.Model, int(m.PromptTokens), int(m.CompletionTokens))
				if code := replyFailedCode(m); code == CodeUpstreamFailed {
					writeError(w, http.StatusBadGateway, code, m.Message)
					return
				}
				writeError(w, http.StatusServiceUnavailable, CodeUnavailable, m.Message)
				return
			}
		}
	}
}

// replyFailedCode is the contract's code for a failed reply.
func replyFailedCode(f *session.ReplyFailed) string {
	if f.Code == session.CodeUpstreamFailed {
		return CodeUpstreamFailed
	}
	return CodeUnavailable
}

func usage(d *session.ReplyDone) Usage {
	return Usage{
		PromptTokens:     int(d.PromptTokens),
		CompletionTokens: int(d.CompletionTokens),
		TotalTokens:      int(d.PromptTokens + d.CompletionTokens),
	}
}

// hostLostMessage ends a reply whose session's node failed mid-reply: the
// user message is stored, the reply is not.
const hostLostMessage = "the session's node failed before the reply was finished; your message is stored, the reply is not: send it again, with the same Idempotency-Key to get a reply without storing it twice"

// grainError maps a failed grain call to 503 (the cluster is re-forming or
// the node is leaving: retry) or the caller's own cancellation.
func (s *server) grainError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client is gone; nobody reads the answer
	}
	s.cfg.Logger.Warn("grain call failed", "err", err, "traceId", w.Header().Get(HeaderTraceID))
	w.Header().Set("Retry-After", "1")
	msg := "the session is unavailable; retry shortly"
	switch {
	case errors.Is(err, cluster.ErrShuttingDown):
		msg = "this node is shutting down; retry on another"
	case errors.Is(err, cluster.ErrHostLost):
		msg = "the session's node failed while handling the request; it may or may not have been stored: retry, with the same Idempotency-Key to store it once"
	}
	writeError(w, http.StatusServiceUnavailable, CodeUnavailable, msg)
}

// grainReply answers a grain's Failure (or an unexpected reply).
func (s *server) grainReply(w http.ResponseWriter, res any) {
	f, ok := res.(*session.Failure)
	switch {
	case !ok:
		writeError(w, http.StatusInternalServerError, CodeInternal, fmt.Sprintf("unexpected reply %T", res))
	case f.Code == session.CodeConflict:
		writeError(w, http.StatusConflict, CodeConflict, "a reply is already in progress in this session; wait for it to finish")
	case f.Code == session.CodeInvalidArgument:
		writeError(w, http.StatusBadRequest, CodeValidation, f.Message)
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, f.Message)
	}
}
