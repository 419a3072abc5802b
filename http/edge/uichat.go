package edge

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/session"
)

// This file is the Vercel AI SDK's chat protocol: POST /v1/ui/chat takes
// the body useChat's default transport (DefaultChatTransport) sends and
// answers the UI message stream protocol v1 (docs/streaming.md).

// HeaderUIMessageStream names the protocol of a UI message stream.
const HeaderUIMessageStream = "X-Vercel-Ai-Ui-Message-Stream"

// uiChatNamespace is the UUIDv5 namespace of the session ids derived from
// chat ids that are not UUIDs (uiSessionID). Fixed forever: changing it
// would orphan every such session.
var uiChatNamespace = uuid.MustParse("8c3b5a2e-4f7d-5e1a-9b6c-0d2e4f6a8b1c")

// uiChatRequest is the body DefaultChatTransport sends. Fields a caller
// adds through the transport's `body` option are accepted and ignored.
type uiChatRequest struct {
	ID        string      `json:"id" validate:"required,max=256"`
	Messages  []uiMessage `json:"messages" validate:"required,min=1,max=1000,dive"`
	Trigger   string      `json:"trigger" validate:"omitempty,oneof=submit-message regenerate-message"`
	MessageID string      `json:"messageId" validate:"max=256"`
}

// uiMessage is one UIMessage; only its text parts are read.
type uiMessage struct {
	ID    string   `json:"id" validate:"max=256"`
	Role  string   `json:"role" validate:"required,oneof=system user assistant"`
	Parts []uiPart `json:"parts" validate:"max=1000"`
}

type uiPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// text joins the message's text parts.
func (m uiMessage) text() string {
	var b strings.Builder
	for _, p := range m.Parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// uiSessionID is the session a chat id names for tenant: the id itself
// when it is a UUID, else the UUIDv5 of the tenant and the id, so that any
// id useChat makes up (nanoid-style by default) names one session, and
// the same id of two tenants names two.
func uiSessionID(tenant, chatID string) string {
	if id, err := uuid.Parse(chatID); err == nil && len(chatID) == 36 {
		return id.String()
	}
	return uuid.NewSHA1(uiChatNamespace, []byte(tenant+":"+chatID)).String()
}

// uiChunk is one chunk of the UI message stream; which fields are set
// depends on Type, as the AI SDK's uiMessageChunkSchema has them.
type uiChunk struct {
	Type            string     `json:"type"`
	MessageID       string     `json:"messageId,omitempty"`
	ID              string     `json:"id,omitempty"`
	Delta           *string    `json:"delta,omitempty"`
	FinishReason    string     `json:"finishReason,omitempty"`
	MessageMetadata *doneEvent `json:"messageMetadata,omitempty"`
	ErrorText       string     `json:"errorText,omitempty"`
}

// uiChat is POST /v1/ui/chat. The chat is always a session: its id names
// one (uiSessionID), and the last message, which must be the user's, is
// what is stored; the session's history is the context.
func (s *server) uiChat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.refuseWhileDraining(w, r) {
		return
	}
	var req uiChatRequest
	if rerr := decodeJSONLenient(r, &req); rerr != nil {
		rerr.write(w)
		return
	}
	last := req.Messages[len(req.Messages)-1]
	if last.Role != "user" || strings.TrimSpace(last.text()) == "" {
		(&requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request has invalid fields",
			details: []ErrorDetail{{Field: "messages", Message: "must end with a user message with text"}}}).write(w)
		return
	}
	tenant := tenantOf(r.Context())
	sessionID := uiSessionID(tenant.ID, req.ID)
	var (
		src *replySource
		err error
	)
	if req.Trigger == "regenerate-message" {
		src, err = s.regenerate(r, sessionID)
	} else {
		src, err = s.start(r, sessionID, nil, last.text(), true)
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	defer src.close()
	w.Header().Set(HeaderUIMessageStream, "v1")
	s.streamUIMessage(w, r, src, uiMessageID(src.userMessage), start)
}

// regenerate starts a new reply to the session's newest user message, the
// one the AI SDK's regenerate-message asks again: the message is not
// stored a second time, and the reply replaced stays in the history
// (docs/sessions.md, "Regenerating a reply").
func (s *server) regenerate(r *http.Request, sessionID string) (*replySource, error) {
	tenant := tenantOf(r.Context())
	reply, err := s.cfg.Sessions.Regenerate(r.Context(), tenant.ID, sessionID, session.ChatRequest{
		Prompt: s.modelConfig(r.Context(), tenant).PromptTemplate, Tokens: true, Buffer: s.cfg.StreamBuffer, Grace: s.cfg.SlowReaderGrace,
	})
	if err != nil {
		return nil, err
	}
	return fromSession(reply), nil
}

// uiMessageID is the messageId of the start chunk of the reply to user: the
// same for the stream that started the reply and every resumed one, so
// the client's message keeps its id across a resume.
func uiMessageID(user session.Entry) string {
	return "reply-" + user.ID
}

// uiChatResume is GET /v1/ui/chat/{id}/stream, DefaultChatTransport's
// reconnectToStream: the reply in progress of the chat's session, replayed
// from its first token (the transport's resumeStreamIsReplay), then live;
// 204 when no reply is in progress.
func (s *server) uiChatResume(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	chatID, err := url.PathUnescape(chi.URLParam(r, "id"))
	if err != nil || chatID == "" || len(chatID) > 256 {
		(&requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request has invalid fields",
			details: []ErrorDetail{{Field: "id", Message: "must be a chat id of 1 to 256 bytes"}}}).write(w)
		return
	}
	tenant := tenantOf(r.Context())
	reply, ok := s.follow(w, r, tenant.ID, uiSessionID(tenant.ID, chatID))
	if !ok {
		return
	}
	src := fromSession(reply)
	defer src.close()
	w.Header().Set(HeaderUIMessageStream, "v1")
	s.streamUIMessage(w, r, src, uiMessageID(src.userMessage), start)
}

// streamUIMessage writes a reply as UI message stream chunks: start,
// text-start, a text-delta per token, text-end, finish (Parley's done
// figures in messageMetadata), then `data: [DONE]`; a failure is an
// error chunk, then [DONE].
func (s *server) streamUIMessage(w http.ResponseWriter, r *http.Request, src *replySource, messageID string, start time.Time) {
	sw := startSSE(w)
	s.cfg.Metrics.streams.Inc()
	defer s.cfg.Metrics.streams.Dec()
	traceID := w.Header().Get(HeaderTraceID)
	textID := "text-" + messageID
	if !sw.data(uiChunk{Type: "start", MessageID: messageID}) {
		return
	}
	opened := false
	var ttft time.Duration
	fail := func(err error) {
		if answer := s.answerFor(w, r, err); answer != nil {
			if opened {
				sw.data(uiChunk{Type: "text-end", ID: textID})
			}
			if sw.data(uiChunk{Type: "error", ErrorText: answer.message + " (" + answer.code + ", trace " + traceID + ")"}) {
				sw.raw("data: [DONE]\n\n")
			}
		}
	}
	err := s.relay(r.Context(), src, sw.ping, func(ev session.Event) bool {
		if ev.Err != nil {
			fail(ev.Err)
			return false
		}
		if !opened {
			opened = true
			ttft = time.Since(start)
			if !sw.data(uiChunk{Type: "text-start", ID: textID}) {
				return false
			}
		}
		if ev.Done != nil {
			meta := &doneEvent{MessageID: ev.Done.Message.ID, Usage: usage(ev.Done), LatencyMs: time.Since(start).Milliseconds(),
				TTFTMs: ttft.Milliseconds(), TraceID: traceID}
			if sw.data(uiChunk{Type: "text-end", ID: textID}) && sw.data(uiChunk{Type: "finish", FinishReason: openAIFinish(ev.Done.Message.FinishReason), MessageMetadata: meta}) {
				sw.raw("data: [DONE]\n\n")
			}
			return false
		}
		text := ev.Text
		return sw.data(uiChunk{Type: "text-delta", ID: textID, Delta: &text})
	})
	if err != nil {
		fail(err)
	}
}
