package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/actors/session"
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

// tokenData is the data of the SSE `token` event.
type tokenData struct {
	Text string `json:"text"`
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

// refuseWhileDraining answers 503 with Retry-After, before the body is
// read, when the node is shutting down (Config.Draining): it starts no new
// reply. It says whether it answered.
func (s *server) refuseWhileDraining(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Draining == nil || !s.cfg.Draining() {
		return false
	}
	refuseBeforeBody(w, r)
	s.writeErr(w, r, errDraining)
	return true
}

func (s *server) chat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.refuseWhileDraining(w, r) {
		return
	}
	var req chatRequest
	if rerr := decodeJSON(r, &req); rerr != nil {
		rerr.write(w)
		return
	}
	tenant := tenantOf(r.Context())
	sessionID := strings.ToLower(req.SessionID)
	if _, err := session.Identity(tenant.ID, sessionID); err != nil {
		s.writeErr(w, r, err)
		return
	}
	idempotencyKey, rerr := idempotencyKeyOf(r)
	if rerr != nil {
		rerr.write(w)
		return
	}

	prompt := s.modelConfig(r.Context(), tenant).PromptTemplate
	streaming := req.Stream == nil || *req.Stream
	reply, err := s.cfg.Sessions.Chat(r.Context(), tenant.ID, sessionID, session.ChatRequest{
		Content: req.Message, Prompt: prompt, IdempotencyKey: idempotencyKey, Tokens: streaming, Buffer: s.cfg.StreamBuffer, Grace: s.cfg.SlowReaderGrace,
	})
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	defer reply.Close()
	if streaming {
		s.streamReply(w, r, reply, start, tenant.ID, streamFrom{after: -1})
		return
	}
	s.wholeReply(w, r, reply, start, tenant.ID)
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

// streamFrom says where a stream of streamReply starts.
type streamFrom struct {
	// after is the index of the last token not sent: -1 sends every one.
	after int
	// resumed is true for a stream that follows a reply another stream
	// started (resume.go): that one counts the reply's tokens and time to
	// first token in the metrics, so this one does not count them again.
	resumed bool
}

// streamReply relays the reply as Server-Sent Events, flushing each token
// as it arrives, with heartbeat comments while idle, from the token after
// from.after.
func (s *server) streamReply(w http.ResponseWriter, r *http.Request, reply *session.Reply, start time.Time, tenant string, from streamFrom) {
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
	// One buffer and one encoder for the whole stream: events are framed
	// in it and written with a single Write and Flush, with no garbage
	// per token beyond what encoding/json makes.
	var frame bytes.Buffer
	enc := json.NewEncoder(&frame)
	queue := func(event, id string, data any) bool {
		if id != "" {
			frame.WriteString("id: ")
			frame.WriteString(id)
			frame.WriteString("\n")
		}
		frame.WriteString("event: ")
		frame.WriteString(event)
		frame.WriteString("\ndata: ")
		if err := enc.Encode(data); err != nil { // ends with "\n"
			return false
		}
		frame.WriteString("\n")
		return true
	}
	flush := func() bool {
		if frame.Len() == 0 {
			return true
		}
		_, err := w.Write(frame.Bytes())
		frame.Reset()
		return err == nil && rc.Flush() == nil
	}
	send := func(event, id string, data any) bool { return queue(event, id, data) && flush() }
	fail := func(err error) {
		if body, ok := s.errorEvent(w, r, err); ok {
			send("error", "", body)
		}
	}
	// on queues what ev says, and reports whether the stream goes on; the
	// end (done or error) is written and flushed with the tokens queued
	// before it.
	on := func(ev *session.Event) bool {
		switch {
		case ev.Done != nil:
			if !from.resumed {
				s.cfg.Metrics.replyTokens(tenant, ev.Done.Model, ev.Done.PromptTokens, ev.Done.CompletionTokens)
			}
			send("done", "", doneEvent{
				MessageID:    ev.Done.Message.ID,
				Usage:        usage(ev.Done),
				LatencyMs:    time.Since(start).Milliseconds(),
				TTFTMs:       ttft.Milliseconds(),
				TraceID:      traceID,
				Model:        ev.Done.Model,
				FinishReason: ev.Done.Message.FinishReason,
			})
			return false
		case ev.Err != nil:
			if !from.resumed {
				s.cfg.Metrics.failedReplyTokens(tenant, ev.Err)
			}
			fail(ev.Err)
			return false
		case ev.Index <= from.after:
			// Seen by the client before it resumed.
			return true
		default:
			if ttft == 0 {
				ttft = time.Since(start)
				if !from.resumed {
					s.cfg.Metrics.ttft.Observe(ttft.Seconds())
				}
			}
			return queue("token", strconv.Itoa(ev.Index), tokenData{Text: ev.Text})
		}
	}
	for {
		select {
		case <-r.Context().Done():
			// The client went away: stop writing and free the PID now
			// (deferred); the grain finishes and stores the reply anyway.
			return
		case <-reply.Abandoned():
			fail(errSlowConsumer)
			return
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-stall.C:
			fail(errStalled)
			return
		case <-reply.HostLost():
			fail(errHostLost)
			return
		case ev := <-reply.Events():
			stall.Reset(s.cfg.StallTimeout)
			heartbeat.Reset(s.cfg.Heartbeat) // pings only while idle
			// The tokens already waiting behind this one go out with
			// it, in one write and one flush: a burst costs the client
			// and the node one wake-up, not one per token. Each event
			// is still flushed as soon as it has been read.
			for {
				if !on(ev) {
					return
				}
				if frame.Len() >= maxBatchBytes {
					break
				}
				next, ok := receiveNow(reply.Events())
				if !ok {
					break
				}
				ev = next
			}
			if !flush() {
				return
			}
		}
	}
}

// maxBatchBytes bounds the events streamReply writes at once.
const maxBatchBytes = 16 << 10

// receiveNow is the event waiting in events, if one is.
func receiveNow(events <-chan *session.Event) (*session.Event, bool) {
	select {
	case ev := <-events:
		return ev, true
	default:
		return nil, false
	}
}

// wholeReply waits for the whole reply and answers it as one JSON body. Its
// reply holds at most the first token and the end (ChatRequest.Tokens is
// false), so it cannot be abandoned.
func (s *server) wholeReply(w http.ResponseWriter, r *http.Request, reply *session.Reply, start time.Time, tenant string) {
	var ttft time.Duration
	stall := time.NewTimer(s.cfg.StallTimeout)
	defer stall.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-stall.C:
			s.writeErr(w, r, errStalled)
			return
		case <-reply.HostLost():
			s.writeErr(w, r, errHostLost)
			return
		case ev := <-reply.Events():
			stall.Reset(s.cfg.StallTimeout)
			switch {
			case ev.Done != nil:
				s.cfg.Metrics.replyTokens(tenant, ev.Done.Model, ev.Done.PromptTokens, ev.Done.CompletionTokens)
				writeJSON(w, http.StatusOK, chatResponse{
					Message:   toJSON(ev.Done.Message),
					Usage:     usage(ev.Done),
					LatencyMs: time.Since(start).Milliseconds(),
					TTFTMs:    ttft.Milliseconds(),
					TraceID:   w.Header().Get(HeaderTraceID),
					Model:     ev.Done.Model,
				})
				return
			case ev.Err != nil:
				s.cfg.Metrics.failedReplyTokens(tenant, ev.Err)
				s.writeErr(w, r, ev.Err)
				return
			case ttft == 0:
				ttft = time.Since(start)
				s.cfg.Metrics.ttft.Observe(ttft.Seconds())
			}
		}
	}
}

func usage(d *session.Done) Usage {
	return Usage{
		PromptTokens:     int(d.PromptTokens),
		CompletionTokens: int(d.CompletionTokens),
		TotalTokens:      int(d.PromptTokens + d.CompletionTokens),
	}
}
