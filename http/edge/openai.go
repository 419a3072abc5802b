package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
)

// This file is the OpenAI-compatible API: POST /v1/chat/completions and
// GET /v1/models, in OpenAI's wire format (docs/streaming.md), so that the
// openai SDKs and the tools built on them talk to Parley unchanged.

// HeaderSessionID makes a /v1/chat/completions call a Parley session.
const HeaderSessionID = "X-Session-Id"

// CodeModelNotFound is OpenAI's code for a model the caller does not have.
const CodeModelNotFound = "model_not_found"

// openAIRequest is the part of a Chat Completions request Parley reads.
// Other parameters (temperature, max_tokens…) are accepted and ignored,
// as other OpenAI-compatible servers do.
type openAIRequest struct {
	Model         string          `json:"model" validate:"required,max=256"`
	Messages      []openAIMessage `json:"messages" validate:"required,min=1,max=1000,dive"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N *int `json:"n"`
}

// openAIMessage is one message of the request.
type openAIMessage struct {
	Role    string        `json:"role" validate:"required,oneof=system developer user assistant"`
	Content openAIContent `json:"content"`
}

// openAIContent is a message's text: OpenAI sends a string, or an array of
// parts of which Parley takes the text ones.
type openAIContent string

// UnmarshalJSON implements json.Unmarshaler.
func (c *openAIContent) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*c = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = openAIContent(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("content must be a string or an array of text parts")
	}
	var text strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return fmt.Errorf("content parts of type %q are not supported; only text", p.Type)
		}
		text.WriteString(p.Text)
	}
	*c = openAIContent(text.String())
	return nil
}

// openAIErrorBody is OpenAI's error body.
type openAIErrorBody struct {
	Error openAIError `json:"error"`
}

type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// openAIErrors is the /v1 dialect: the edge's answer in OpenAI's shape.
// type follows OpenAI's names by status, code is the edge's code (OpenAI's
// own name where one exists), param the first field at fault. The trace id
// is in the X-Trace-Id header.
func openAIErrors(status int, info ErrorInfo, _ string) any {
	return openAIErrorBody{Error: toOpenAIError(status, info)}
}

func toOpenAIError(status int, info ErrorInfo) openAIError {
	e := openAIError{Message: info.Message, Code: info.Code}
	if len(info.Details) > 0 {
		field := info.Details[0].Field
		e.Param = &field
		parts := make([]string, 0, len(info.Details))
		for _, d := range info.Details {
			parts = append(parts, d.Field+" "+d.Message)
		}
		e.Message += ": " + strings.Join(parts, "; ")
	}
	switch {
	case status == http.StatusUnauthorized:
		e.Type, e.Code = "authentication_error", "invalid_api_key"
	case status == http.StatusTooManyRequests:
		e.Type = "rate_limit_error"
		if info.Code == CodeRateLimited {
			e.Code = "rate_limit_exceeded"
		}
	case status == http.StatusNotFound:
		e.Type = "invalid_request_error"
	case status >= 500:
		e.Type = "server_error"
	default:
		e.Type = "invalid_request_error"
	}
	return e
}

// modelNames are the models a tenant has, as /v1/models lists them and
// /v1/chat/completions accepts them.
// A model config that names none is the default model's.
func modelNames(m tenants.Model) []string {
	if m.Name == "" {
		return []string{tenants.DefaultModel}
	}
	return []string{m.Name}
}

type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func toOpenAIModel(name string) openAIModel {
	return openAIModel{ID: name, Object: "model", Created: 0, OwnedBy: "parley"}
}

func (s *server) openAIModels(w http.ResponseWriter, r *http.Request) {
	names := modelNames(s.modelConfig(r.Context(), tenantOf(r.Context())))
	list := struct {
		Object string        `json:"object"`
		Data   []openAIModel `json:"data"`
	}{Object: "list", Data: []openAIModel{}}
	for _, name := range names {
		list.Data = append(list.Data, toOpenAIModel(name))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *server) openAIModel(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "model")
	if err := s.checkModel(r, name); err != nil {
		err.write(w)
		return
	}
	writeJSON(w, http.StatusOK, toOpenAIModel(name))
}

// checkModel is the 404 for a model the tenant does not have.
func (s *server) checkModel(r *http.Request, name string) *requestError {
	for _, have := range modelNames(s.modelConfig(r.Context(), tenantOf(r.Context()))) {
		if name == have {
			return nil
		}
	}
	return &requestError{status: http.StatusNotFound, code: CodeModelNotFound,
		message: fmt.Sprintf("the model %q does not exist or you do not have access to it; GET /v1/models lists yours", name)}
}

// withFreeDiskForSessions is withFreeDisk for the calls that store (those
// naming a session): a one-shot completion writes nothing, so it goes on
// below the watermark.
func (s *server) withFreeDiskForSessions(next http.Handler) http.Handler {
	guarded := s.withFreeDisk(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header[HeaderSessionID]; ok {
			guarded.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sessionHeader reads X-Session-Id: "" when absent, a 400 when it is not
// one UUID.
func sessionHeader(r *http.Request) (string, *requestError) {
	values, ok := r.Header[HeaderSessionID]
	if !ok {
		return "", nil
	}
	if len(values) == 1 {
		if id, err := uuid.Parse(values[0]); err == nil && len(values[0]) == 36 {
			return id.String(), nil
		}
	}
	return "", &requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request has invalid headers",
		details: []ErrorDetail{{Field: HeaderSessionID, Message: "must be given once, as a UUID such as 5f0c6e3a-8d7b-4b1e-9a53-2f3b1c9d7e10"}}}
}

// lastUserTurn splits messages into the history and the user message that
// ends them: the last message must be the user's, with text.
func lastUserTurn(messages []openAIMessage) ([]model.Turn, string, *requestError) {
	bad := func(msg string) *requestError {
		return &requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request has invalid fields",
			details: []ErrorDetail{{Field: "messages", Message: msg}}}
	}
	last := messages[len(messages)-1]
	switch {
	case last.Role != "user":
		return nil, "", bad("must end with a user message")
	case strings.TrimSpace(string(last.Content)) == "":
		return nil, "", bad("the last user message has no text")
	}
	history := make([]model.Turn, 0, len(messages)-1)
	for _, m := range messages[:len(messages)-1] {
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		history = append(history, model.Turn{Role: role, Content: string(m.Content)})
	}
	return history, string(last.Content), nil
}

// start begins the reply to a compatible route's request: in the session
// sessionID when it is set (the user message is stored, the session's
// history is the context, history is ignored), else one-shot on history.
func (s *server) start(r *http.Request, sessionID string, history []model.Turn, message string, tokens bool) (*replySource, error) {
	tenant := tenantOf(r.Context())
	prompt := s.modelConfig(r.Context(), tenant).PromptTemplate
	if sessionID == "" {
		req := model.Request{Prompt: prompt, History: history, Message: message}
		return oneShot(r.Context(), s.cfg.Models(tenant.ID), req, s.cfg.StreamBuffer, s.cfg.OneShotTimeout), nil
	}
	reply, err := s.cfg.Sessions.Chat(r.Context(), tenant.ID, sessionID, session.ChatRequest{
		Content: message, Prompt: prompt, Tokens: tokens, Buffer: s.cfg.StreamBuffer, Grace: s.cfg.SlowReaderGrace,
	})
	if err != nil {
		return nil, err
	}
	return fromSession(reply), nil
}

// chatCompletions is POST /v1/chat/completions.
func (s *server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.refuseWhileDraining(w, r) {
		return
	}
	var req openAIRequest
	if rerr := decodeJSONLenient(r, &req); rerr != nil {
		rerr.write(w)
		return
	}
	if req.N != nil && *req.N != 1 {
		(&requestError{status: http.StatusBadRequest, code: CodeValidation, message: "request has invalid fields",
			details: []ErrorDetail{{Field: "n", Message: "must be 1: Parley writes one choice"}}}).write(w)
		return
	}
	if rerr := s.checkModel(r, req.Model); rerr != nil {
		rerr.write(w)
		return
	}
	history, message, rerr := lastUserTurn(req.Messages)
	if rerr != nil {
		rerr.write(w)
		return
	}
	sessionID, rerr := sessionHeader(r)
	if rerr != nil {
		rerr.write(w)
		return
	}
	src, err := s.start(r, sessionID, history, message, req.Stream)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	defer src.close()
	c := completion{id: "chatcmpl-" + strings.ReplaceAll(uuid.NewString(), "-", ""), created: start.Unix(), model: req.Model}
	if req.Stream {
		s.streamCompletion(w, r, src, c, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	s.wholeCompletion(w, r, src, c)
}

// completion is what every chunk of one answer repeats.
type completion struct {
	id      string
	created int64
	model   string
}

type openAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func toOpenAIUsage(d *session.Done) *openAIUsage {
	return &openAIUsage{PromptTokens: d.PromptTokens, CompletionTokens: d.CompletionTokens, TotalTokens: d.PromptTokens + d.CompletionTokens}
}

type chunkDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

// completionChunk is one `data:` of a streamed answer. Usage is null on
// every chunk but the last when include_usage is set, and absent without
// it, as OpenAI sends it.
type completionChunk struct {
	ID       string        `json:"id"`
	Object   string        `json:"object"`
	Created  int64         `json:"created"`
	Model    string        `json:"model"`
	Choices  []chunkChoice `json:"choices"`
	Usage    *openAIUsage  `json:"usage,omitempty"`
	hasUsage bool
}

// MarshalJSON writes "usage": null when the stream includes usage.
func (c completionChunk) MarshalJSON() ([]byte, error) {
	type plain completionChunk
	if !c.hasUsage || c.Usage != nil {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		plain
		Usage *openAIUsage `json:"usage"`
	}{plain: plain(c)})
}

// streamCompletion writes the answer as OpenAI's chunks: the role first,
// a chunk per token, a chunk with finish_reason, the usage chunk (empty
// choices) when asked for, then `data: [DONE]`. A failure mid-stream is a
// `data: {"error": …}` chunk, and the stream ends there, without [DONE].
func (s *server) streamCompletion(w http.ResponseWriter, r *http.Request, src *replySource, c completion, includeUsage bool) {
	sw := startSSE(w)
	s.cfg.Metrics.streams.Inc()
	defer s.cfg.Metrics.streams.Dec()
	chunk := func(delta chunkDelta, finish *string) completionChunk {
		return completionChunk{ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model, hasUsage: includeUsage,
			Choices: []chunkChoice{{Index: 0, Delta: delta, FinishReason: finish}}}
	}
	empty := ""
	if !sw.data(chunk(chunkDelta{Role: "assistant", Content: &empty}, nil)) {
		return
	}
	fail := func(err error) {
		if answer := s.answerFor(w, r, err); answer != nil {
			sw.data(openAIErrorBody{Error: toOpenAIError(answer.status, ErrorInfo{Code: answer.code, Message: answer.message, Details: answer.details})})
		}
	}
	err := s.relay(r.Context(), src, sw.ping, func(ev session.Event) bool {
		switch {
		case ev.Err != nil:
			fail(ev.Err)
			return false
		case ev.Done != nil:
			stop := openAIFinish(ev.Done.Message.FinishReason)
			if !sw.data(chunk(chunkDelta{}, &stop)) {
				return false
			}
			if includeUsage {
				last := completionChunk{ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model,
					Choices: []chunkChoice{}, Usage: toOpenAIUsage(ev.Done), hasUsage: true}
				if !sw.data(last) {
					return false
				}
			}
			sw.raw("data: [DONE]\n\n")
			return false
		}
		text := ev.Text
		return sw.data(chunk(chunkDelta{Content: &text}, nil))
	})
	if err != nil {
		fail(err)
	}
}

type completionMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type completionChoice struct {
	Index        int               `json:"index"`
	Message      completionMessage `json:"message"`
	Logprobs     *struct{}         `json:"logprobs"`
	FinishReason string            `json:"finish_reason"`
}

type completionBody struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *openAIUsage       `json:"usage"`
}

// wholeCompletion waits for the whole reply and answers a chat.completion.
func (s *server) wholeCompletion(w http.ResponseWriter, r *http.Request, src *replySource, c completion) {
	err := s.relay(r.Context(), src, nil, func(ev session.Event) bool {
		switch {
		case ev.Err != nil:
			s.writeErr(w, r, ev.Err)
			return false
		case ev.Done != nil:
			writeJSON(w, http.StatusOK, completionBody{
				ID: c.id, Object: "chat.completion", Created: c.created, Model: c.model, Usage: toOpenAIUsage(ev.Done),
				Choices: []completionChoice{{Message: completionMessage{Role: "assistant", Content: ev.Done.Message.Content}, FinishReason: openAIFinish(ev.Done.Message.FinishReason)}},
			})
			return false
		}
		return true
	})
	if err != nil {
		s.writeErr(w, r, err)
	}
}

// openAIFinish is OpenAI's finish_reason for a reply's finishReason:
// "length" when the model hit its token limit, else "stop" (a reply
// stopped by POST …/stop included; one that failed ends with an error
// chunk instead).
func openAIFinish(reason string) string {
	if reason == "length" {
		return "length"
	}
	return "stop"
}
