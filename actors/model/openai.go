package model

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"go.opentelemetry.io/otel/propagation"

	"github.com/parley-chat/parley/internal/tracing"
)

// MaxResponseBytes bounds what one upstream call may send, so that no
// upstream can make a node buffer without bound (the SDK's event decoder
// keeps a data line until its end): a response past it fails as too_large.
const MaxResponseBytes = 8 << 20

// MaxReplyBytes bounds a reply's text (a stored message is at most 1 MiB):
// the reply is cut there and ends with FinishLength.
const MaxReplyBytes = 1000 << 10

// upstreamTransport is every provider's connection pool: Go's default
// transport, but keeping up to maxIdlePerUpstream idle connections to one
// upstream rather than 2, so that a node with more replies than that in
// flight to one upstream reuses connections instead of dialling one for
// most calls (and leaving the old one in TIME_WAIT).
var upstreamTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * maxIdlePerUpstream
	t.MaxIdleConnsPerHost = maxIdlePerUpstream
	return t
}()

// maxIdlePerUpstream bounds the idle connections kept to one upstream.
const maxIdlePerUpstream = 256

// OpenAI streams replies from one OpenAI-compatible Chat Completions
// endpoint through the official SDK. It makes one call per Stream, never
// retrying (Chain does that). Safe for concurrent use.
type OpenAI struct {
	cfg Config
	svc openai.ChatCompletionService
}

var _ Model = (*OpenAI)(nil)

// NewOpenAI validates cfg (Provider openai) and builds the client. Nothing
// is read from the environment: the key is cfg.APIKey.
func NewOpenAI(cfg Config) (*OpenAI, error) {
	cfg.Provider = ProviderOpenAI
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithMaxRetries(0),
		option.WithHTTPClient(&http.Client{Transport: upstreamTransport}),
		option.WithMiddleware(limitResponse, withTraceparent),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	// NewChatCompletionService, unlike openai.NewClient, reads no
	// OPENAI_* variable: a node's environment must not decide where a
	// tenant's requests go or which organisation they bill.
	return &OpenAI{cfg: cfg, svc: openai.NewChatCompletionService(opts...)}, nil
}

// Stream implements Model: one streamed Chat Completions call. Failures are
// *UpstreamError.
//
// The SDK builds, authenticates and sends the request and frames the SSE
// (ssestream's Decoder); each event's data is decoded here into chunk,
// which holds only what a reply needs, rather than into the SDK's
// ChatCompletionChunk, whose reflective decoder cost more than the rest
// of the call together.
func (o *OpenAI) Stream(ctx context.Context, req Request, emit func(string) error) (Usage, error) {
	usage := Usage{Model: o.cfg.Name}
	var raw *http.Response
	// New with the raw response as its destination sends what
	// NewStreaming does (stream: true, the same auth and middleware) and
	// leaves the body unread.
	_, err := o.svc.New(ctx, o.params(req), option.WithJSONSet("stream", true), option.WithResponseBodyInto(&raw))
	if err != nil {
		if raw != nil && raw.Body != nil {
			_ = raw.Body.Close()
		}
		return o.finish(usage, nil, req), o.upstreamError(ctx, err)
	}
	events := ssestream.NewDecoder(raw)
	if events == nil {
		return o.finish(usage, nil, req), &UpstreamError{Model: o.cfg.Name, Code: CodeInvalidResponse,
			Err: errors.New("a response without a body")}
	}
	defer events.Close()
	var (
		c             chunk
		upstreamUsage *chunkUsage
		size          int
	)
	for events.Next() {
		ev := events.Event()
		if bytes.HasPrefix(ev.Data, doneData) {
			break
		}
		if err := c.decode(ev); err != nil {
			return o.finish(usage, upstreamUsage, req), o.upstreamError(ctx, err)
		}
		if c.Usage != nil && c.Usage.TotalTokens > 0 {
			upstreamUsage = c.Usage
		}
		for _, choice := range c.Choices {
			if choice.Index != 0 {
				continue // n is 1; another choice is not ours to show
			}
			if text := choice.Delta.Content; text != "" {
				if size+len(text) > MaxReplyBytes {
					usage.FinishReason = FinishLength
					return o.finish(usage, upstreamUsage, req), nil
				}
				size += len(text)
				if err := emit(text); err != nil {
					return o.finish(usage, upstreamUsage, req), err
				}
				usage.CompletionTokens++
			}
			if choice.FinishReason != "" {
				usage.FinishReason = FinishStop
				if choice.FinishReason == "length" {
					usage.FinishReason = FinishLength
				}
			}
		}
	}
	if err := events.Err(); err != nil {
		return o.finish(usage, upstreamUsage, req), o.upstreamError(ctx, err)
	}
	if usage.FinishReason == "" {
		// The body ended (EOF, or [DONE]) without a finish_reason: the
		// connection was cut, not the reply finished.
		return o.finish(usage, upstreamUsage, req), &UpstreamError{Model: o.cfg.Name, Code: CodeConnection,
			Err: errors.New("the stream ended before the reply finished")}
	}
	return o.finish(usage, upstreamUsage, req), nil
}

// doneData is the data of the event that ends a stream.
var doneData = []byte("[DONE]")

// chunk is what a reply needs of one chat.completion.chunk; every other
// field is skipped unread. One chunk is reused for every event of a
// stream.
type chunk struct {
	Choices []chunkChoice `json:"choices"`
	Usage   *chunkUsage   `json:"usage"`
	// Error is an error object sent in the stream, in place of a chunk
	// ("null" when a chunk says it has none).
	Error json.RawMessage `json:"error"`
}

type chunkChoice struct {
	Index int64 `json:"index"`
	Delta struct {
		Content string `json:"content"`
	} `json:"delta"`
	FinishReason string `json:"finish_reason"`
}

type chunkUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// decode reads ev's data into c, as the SDK's stream would: an error
// object ends the stream with a *ssestream.StreamError, data that is not
// JSON or not an object with the decoder's error. A field of another type
// than expected is left zero, as the SDK's decoder leaves it, rather than
// failing the reply.
func (c *chunk) decode(ev ssestream.Event) error {
	clear(c.Choices)
	*c = chunk{Choices: c.Choices[:0]}
	err := json.Unmarshal(ev.Data, c)
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		err = nil // a field's, not the whole data's
	}
	if err != nil {
		return err
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		return &ssestream.StreamError{Message: "received error while streaming: " + string(c.Error), Event: ev}
	}
	return nil
}

// params is the request body: the prompt template as the system message,
// the last ContextMessages turns, the new message.
func (o *OpenAI) params(req Request) openai.ChatCompletionNewParams {
	history := req.History
	if len(history) > o.cfg.ContextMessages {
		history = history[len(history)-o.cfg.ContextMessages:]
	}
	msgs := make([]openai.ChatCompletionMessageParamUnion, 0, len(history)+2)
	if req.Prompt != "" {
		msgs = append(msgs, openai.SystemMessage(req.Prompt))
	}
	for _, t := range history {
		switch t.Role {
		case "assistant":
			msgs = append(msgs, openai.AssistantMessage(t.Content))
		case "system":
			msgs = append(msgs, openai.SystemMessage(t.Content))
		default:
			msgs = append(msgs, openai.UserMessage(t.Content))
		}
	}
	msgs = append(msgs, openai.UserMessage(req.Message))
	p := openai.ChatCompletionNewParams{
		Model:         o.cfg.Name,
		Messages:      msgs,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	if o.cfg.MaxTokens > 0 {
		// max_tokens rather than max_completion_tokens: every
		// OpenAI-compatible server (vLLM, Ollama, llama.cpp) reads it.
		p.MaxTokens = openai.Int(int64(o.cfg.MaxTokens))
	}
	if o.cfg.Temperature != nil {
		p.Temperature = openai.Float(*o.cfg.Temperature)
	}
	return p
}

// finish sets the usage the upstream reported, or, from a server that
// sent none (some ignore include_usage, and a cut stream has none), the
// deltas counted and the mock's estimate of the prompt.
func (o *OpenAI) finish(u Usage, upstream *chunkUsage, req Request) Usage {
	if upstream != nil {
		u.PromptTokens = int(upstream.PromptTokens)
		u.CompletionTokens = int(upstream.CompletionTokens)
		return u
	}
	u.PromptTokens = CountTokens(req.Prompt) + CountTokens(req.Message)
	for _, t := range req.History {
		u.PromptTokens += CountTokens(t.Content)
	}
	return u
}

// upstreamError classifies a failed call.
func (o *OpenAI) upstreamError(ctx context.Context, err error) *UpstreamError {
	e := &UpstreamError{Model: o.cfg.Name, Err: err}
	var apiErr *openai.Error
	switch {
	case errors.As(err, &apiErr):
		e.Status = apiErr.StatusCode
		switch {
		case e.Status == http.StatusTooManyRequests:
			e.Code = CodeRateLimited
		case e.Status >= 500:
			e.Code = CodeServerError
		default:
			e.Code = CodeClientError
		}
		if apiErr.Response != nil {
			e.RetryAfter = retryAfter(apiErr.Response.Header, time.Now())
		}
		// The SDK's message quotes the request and the whole body;
		// the status says enough.
		e.Err = fmt.Errorf("HTTP %d", e.Status)
	case errors.Is(err, errTooLarge):
		e.Code = CodeTooLarge
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.Code = CodeTimeout
	case errors.Is(err, context.Canceled):
		e.Code = CodeConnection
	case isConnectionError(err):
		e.Code = CodeConnection
	default:
		// An error chunk, a chunk that is not JSON, an event line past
		// the decoder's bound: the upstream spoke, but not the protocol.
		e.Code = CodeInvalidResponse
	}
	return e
}

// retryAfter reads the delay an upstream asks for: retry-after-ms (which
// OpenAI sends), else Retry-After in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// isConnectionError reports a failure of the transport rather than of what
// the upstream said: refused, reset, cut mid-body.
func isConnectionError(err error) bool {
	var netErr net.Error
	var streamErr *ssestream.StreamError
	if errors.As(err, &streamErr) {
		return false
	}
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

var errTooLarge = fmt.Errorf("response over %d bytes", MaxResponseBytes)

// limitResponse is the client's middleware bounding every response body.
func limitResponse(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	resp, err := next(req)
	if resp != nil && resp.Body != nil {
		resp.Body = &limitedBody{rc: resp.Body, left: MaxResponseBytes}
	}
	return resp, err
}

// withTraceparent sends the reply's span (the session's "model stream",
// when tracing is on) as the request's W3C traceparent, so an upstream
// that traces continues the trace.
func withTraceparent(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	if tracing.Enabled() {
		tracing.TraceContext.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
	}
	return next(req)
}

// limitedBody fails with errTooLarge once more than left bytes are read.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
