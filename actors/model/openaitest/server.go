// Package openaitest is a fake OpenAI-compatible Chat Completions server
// for tests: it speaks the wire format chunk for chunk (a role delta, one
// content delta per token, a finish chunk, a usage chunk, data: [DONE]) on
// 127.0.0.1, and misbehaves on request — statuses with Retry-After, a
// connection cut mid-stream, a chunk that is not JSON, a request that never
// answers.
package openaitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Step is what the server does with one request.
type Step struct {
	// Status, when not 0 or 200, answers with this status and an OpenAI
	// error body instead of a stream, with RetryAfter as the header of
	// that name when set.
	Status     int
	RetryAfter string
	// Tokens are the content deltas of the stream; DefaultTokens when nil.
	Tokens []string
	// FinishReason is the finish chunk's; "stop" when empty.
	FinishReason string
	// Usage is the usage chunk's prompt and completion tokens; without it
	// the completion count is len(Tokens) and the prompt count 7.
	PromptTokens, CompletionTokens int
	// NoUsage leaves out the usage chunk (servers that ignore
	// include_usage).
	NoUsage bool
	// CutAfter, when > 0, closes the connection after that many content
	// deltas, without a finish chunk or [DONE].
	CutAfter int
	// InvalidAfter, when > 0, sends a chunk that is not JSON after that
	// many content deltas.
	InvalidAfter int
	// Hang waits, before any byte of the answer, until the client goes
	// away (its request context is cancelled).
	Hang bool
	// HangAfter, when > 0, waits the same way after that many deltas.
	HangAfter int
	// Raw, when set, is the whole body of a 200 answer with content type
	// RawType (text/event-stream when empty), for answers no real server
	// gives.
	Raw, RawType string
}

// DefaultTokens is the reply of a Step that names none.
var DefaultTokens = []string{"Hello", " from", " the", " fake", " upstream", "."}

// Request is what the server was sent.
type Request struct {
	Authorization string
	// Traceparent is the W3C trace context the request carried.
	Traceparent string
	Body        ChatRequest
	// Cancelled is closed when the request's context ends (the client
	// went away or the stream was answered), so a test can see a client
	// hang up on a hanging step.
	Cancelled <-chan struct{}
}

// ChatRequest is the part of a Chat Completions body the tests look at.
type ChatRequest struct {
	Model         string    `json:"model"`
	Messages      []Message `json:"messages"`
	Stream        bool      `json:"stream"`
	MaxTokens     int       `json:"max_tokens"`
	Temperature   *float64  `json:"temperature"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// LastUser is the content of the request's last user message: the new
// message of a chat, after the system prompt and the history.
func (r ChatRequest) LastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Message is one message of a ChatRequest.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Hooks shape a server that carries load (a benchmark) rather than a
// script. Each is called on the goroutine of the request it concerns,
// concurrently for concurrent requests, so it must be safe for concurrent
// use; it must not keep req's slices past the call.
type Hooks struct {
	// Reply, when set, gives the content deltas of a request that has no
	// step left, instead of DefaultTokens.
	Reply func(req ChatRequest) []string
	// Written, when set, is called after each content delta has been
	// flushed to the connection, with the delta's index in the reply and
	// the time its write began, so that a client in the same process can
	// tell how long the delta took to reach it.
	Written func(req ChatRequest, index int, at time.Time)
	// Forget keeps no Request for Requests, so a long run does not grow.
	Forget bool
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	hooks    Hooks
	mu       sync.Mutex
	steps    []Step
	requests []Request
}

// New starts a server on 127.0.0.1, closed when the test ends. Requests
// take steps in order; once they run out, each gets a plain stream of
// DefaultTokens.
func New(t testing.TB, steps ...Step) *Server {
	s := Start(Hooks{}, steps...)
	t.Cleanup(s.Close)
	return s
}

// Start starts a server on 127.0.0.1 with hooks, outside a test: the
// caller closes it. Requests take steps in order, then get the hooks'
// Reply (DefaultTokens without one).
func Start(hooks Hooks, steps ...Step) *Server {
	s := &Server{hooks: hooks, steps: steps}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// BaseURL is the root to configure as a provider's baseURL.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Then queues more steps.
func (s *Server) Then(steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, steps...)
}

// Requests returns what the server was sent so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeError(w, http.StatusNotFound, "not_found", "no route "+r.Method+" "+r.URL.Path)
		return
	}
	var body ChatRequest
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(raw, &body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	s.mu.Lock()
	if !s.hooks.Forget {
		s.requests = append(s.requests, Request{Authorization: r.Header.Get("Authorization"), Traceparent: r.Header.Get("Traceparent"), Body: body, Cancelled: r.Context().Done()})
	}
	step, scripted := Step{}, len(s.steps) > 0
	if scripted {
		step, s.steps = s.steps[0], s.steps[1:]
	}
	s.mu.Unlock()
	if !scripted && s.hooks.Reply != nil {
		step.Tokens = s.hooks.Reply(body)
	}

	if step.Hang {
		<-r.Context().Done()
		return
	}
	if step.Status != 0 && step.Status != http.StatusOK {
		if step.RetryAfter != "" {
			w.Header().Set("Retry-After", step.RetryAfter)
		}
		writeError(w, step.Status, "upstream_error", fmt.Sprintf("scripted status %d", step.Status))
		return
	}
	if step.Raw != "" {
		if step.RawType == "" {
			step.RawType = "text/event-stream"
		}
		w.Header().Set("Content-Type", step.RawType)
		_, _ = io.WriteString(w, step.Raw)
		return
	}
	s.stream(w, r, body, step)
}

// stream answers the way api.openai.com does with stream: true and
// stream_options.include_usage.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req ChatRequest, step Step) {
	tokens := step.Tokens
	if tokens == nil {
		tokens = DefaultTokens
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	send := func(data string) {
		_, _ = io.WriteString(w, "data: "+data+"\n\n")
		flusher.Flush()
	}
	chunk := func(choices string, usage string) string {
		return fmt.Sprintf(`{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":%q,"system_fingerprint":"fp_fake","choices":[%s],"usage":%s}`,
			req.Model, choices, usage)
	}
	send(chunk(`{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}`, "null"))
	for i, tok := range tokens {
		switch {
		case step.CutAfter > 0 && i == step.CutAfter:
			cut(w)
			return
		case step.InvalidAfter > 0 && i == step.InvalidAfter:
			send(`{"id":"chatcmpl-fake","choices":[{"index":0,"delta":{"content":`) // cut JSON
			return
		case step.HangAfter > 0 && i == step.HangAfter:
			<-r.Context().Done()
			return
		}
		content, _ := json.Marshal(tok)
		at := time.Now()
		send(chunk(fmt.Sprintf(`{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":null}`, content), "null"))
		if s.hooks.Written != nil {
			s.hooks.Written(req, i, at)
		}
	}
	finish := step.FinishReason
	if finish == "" {
		finish = "stop"
	}
	send(chunk(fmt.Sprintf(`{"index":0,"delta":{},"logprobs":null,"finish_reason":%q}`, finish), "null"))
	if !step.NoUsage && req.StreamOptions.IncludeUsage {
		prompt, completion := step.PromptTokens, step.CompletionTokens
		if prompt == 0 && completion == 0 {
			prompt, completion = 7, len(tokens)
		}
		send(chunk("", fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, prompt, completion, prompt+completion)))
	}
	send("[DONE]")
}

// cut closes the connection without ending the chunked body, as a crashed
// upstream or a dropped network does.
func cut(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func writeError(w http.ResponseWriter, status int, typ, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": message, "type": typ, "param": nil, "code": strings.ToLower(http.StatusText(status)),
	}})
}
