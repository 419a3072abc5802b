package model_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/model/openaitest"
)

// waits records the Chain's backoffs instead of taking them.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// errorCodes records the Chain's upstream errors.
type errorCodes struct {
	mu     sync.Mutex
	codes  []string
	firsts int
}

func (o *errorCodes) UpstreamFirstToken(string, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.firsts++
}

func (o *errorCodes) UpstreamError(m, code string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.codes = append(o.codes, m+":"+code)
}

func (o *errorCodes) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.codes...)
}

type run struct {
	tokens []string
	usage  model.Usage
	err    error
}

func stream(t *testing.T, m model.Model, req model.Request) run {
	t.Helper()
	var r run
	r.usage, r.err = m.Stream(context.Background(), req, func(tok string) error {
		r.tokens = append(r.tokens, tok)
		return nil
	})
	return r
}

func entry(s *openaitest.Server, name string) model.Config {
	return model.Config{Provider: model.ProviderOpenAI, BaseURL: s.BaseURL(), Name: name}
}

func newChain(t *testing.T, w *waits, obs model.Observer, entries ...model.Config) model.Model {
	t.Helper()
	m, err := model.New(entries, model.Mock{}, model.ChainConfig{Sleep: w.sleep, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The request is the prompt template as the system message, the last
// ContextMessages turns, and the new message, with include_usage; the
// reply is the deltas, and the usage is the upstream's own count.
func TestOpenAIStreamsDeltasAndTheUpstreamsUsage(t *testing.T) {
	up := openaitest.New(t, openaitest.Step{PromptTokens: 31, CompletionTokens: 9})
	temp := 0.25
	e := entry(up, "gpt-test")
	e.APIKey, e.MaxTokens, e.Temperature, e.ContextMessages = "sk-test", 64, &temp, 2
	m, err := model.NewOpenAI(e)
	if err != nil {
		t.Fatal(err)
	}
	r := stream(t, m, model.Request{Prompt: "Be terse.", Message: "now", History: []model.Turn{
		{Role: "user", Content: "one"}, {Role: "assistant", Content: "two"}, {Role: "user", Content: "three"},
	}})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := strings.Join(r.tokens, "|"); got != strings.Join(openaitest.DefaultTokens, "|") {
		t.Fatalf("tokens %q", got)
	}
	want := model.Usage{PromptTokens: 31, CompletionTokens: 9, Model: "gpt-test", FinishReason: model.FinishStop}
	if r.usage != want {
		t.Fatalf("usage %+v, want %+v", r.usage, want)
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	body := reqs[0].Body
	var roles []string
	for _, msg := range body.Messages {
		roles = append(roles, msg.Role+":"+msg.Content)
	}
	if got := strings.Join(roles, ","); got != "system:Be terse.,assistant:two,user:three,user:now" {
		t.Fatalf("messages %s", got)
	}
	if !body.Stream || !body.StreamOptions.IncludeUsage || body.Model != "gpt-test" || body.MaxTokens != 64 ||
		body.Temperature == nil || *body.Temperature != 0.25 || reqs[0].Authorization != "Bearer sk-test" {
		t.Fatalf("request %+v, authorization %q", body, reqs[0].Authorization)
	}
}

func TestOpenAIWithoutUsageChunkCountsDeltasAndSendsNoKey(t *testing.T) {
	up := openaitest.New(t, openaitest.Step{NoUsage: true, FinishReason: "length", Tokens: []string{"a", "b"}})
	m, err := model.NewOpenAI(entry(up, "local"))
	if err != nil {
		t.Fatal(err)
	}
	r := stream(t, m, model.Request{Message: "x y"})
	if r.err != nil || r.usage.CompletionTokens != 2 || r.usage.PromptTokens != 2 || r.usage.FinishReason != model.FinishLength {
		t.Fatalf("usage %+v, err %v", r.usage, r.err)
	}
	if a := up.Requests()[0].Authorization; a != "" {
		t.Fatalf("authorization %q sent without a key", a)
	}
}

// A 429 with Retry-After is retried after the delay it names, and the
// retry answers.
func TestChainRetriesA429AfterItsRetryAfter(t *testing.T) {
	up := openaitest.New(t, openaitest.Step{Status: 429, RetryAfter: "3"})
	w, obs := &waits{}, &errorCodes{}
	r := stream(t, newChain(t, w, obs, entry(up, "primary")), model.Request{Message: "hi"})
	if r.err != nil || r.usage.Model != "primary" || len(r.tokens) != len(openaitest.DefaultTokens) {
		t.Fatalf("run %+v", r)
	}
	if got := w.all(); len(got) != 1 || got[0] != 3*time.Second {
		t.Fatalf("waits %v, want [3s]", got)
	}
	if got := obs.all(); len(got) != 1 || got[0] != "primary:"+model.CodeRateLimited {
		t.Fatalf("errors %v", got)
	}
	if len(up.Requests()) != 2 {
		t.Fatalf("%d requests, want 2", len(up.Requests()))
	}
}

// 500s are retried with doubling backoff up to Retries, then the fallback
// answers, and the usage says so.
func TestChainFallsBackAfterRetriedServerErrors(t *testing.T) {
	primary := openaitest.New(t, openaitest.Step{Status: 500}, openaitest.Step{Status: 502}, openaitest.Step{Status: 503})
	fallback := openaitest.New(t)
	w := &waits{}
	r := stream(t, newChain(t, w, nil, entry(primary, "primary"), entry(fallback, "fallback")), model.Request{Message: "hi"})
	if r.err != nil || r.usage.Model != "fallback" || r.usage.FinishReason != model.FinishStop {
		t.Fatalf("run %+v", r)
	}
	if got := w.all(); len(got) != 2 || got[0] != 500*time.Millisecond || got[1] != time.Second {
		t.Fatalf("waits %v, want [500ms 1s]", got)
	}
	if len(primary.Requests()) != 3 || len(fallback.Requests()) != 1 {
		t.Fatalf("requests: primary %d, fallback %d", len(primary.Requests()), len(fallback.Requests()))
	}
}

// A Retry-After beyond MaxBackoff is not waited for: the next entry is
// tried at once. A 4xx other than 429 is not retried.
func TestChainSkipsLongRetryAfterAndClientErrors(t *testing.T) {
	a := openaitest.New(t, openaitest.Step{Status: 429, RetryAfter: "3600"})
	b := openaitest.New(t, openaitest.Step{Status: 401})
	c := openaitest.New(t)
	w := &waits{}
	r := stream(t, newChain(t, w, nil, entry(a, "a"), entry(b, "b"), entry(c, "c")), model.Request{Message: "hi"})
	if r.err != nil || r.usage.Model != "c" || len(w.all()) != 0 || len(a.Requests()) != 1 || len(b.Requests()) != 1 {
		t.Fatalf("run %+v, waits %v", r, w.all())
	}
}

// Every entry failing is ErrUpstreamFailed carrying the last error.
func TestChainFailsWhenEveryEntryFails(t *testing.T) {
	a := openaitest.New(t, openaitest.Step{Status: 400})
	r := stream(t, newChain(t, &waits{}, nil, entry(a, "a"), model.Config{Provider: model.ProviderOpenAI, BaseURL: "http://127.0.0.1:1/v1", Name: "b"}),
		model.Request{Message: "hi"})
	var up *model.UpstreamError
	if !errors.Is(r.err, model.ErrUpstreamFailed) || !errors.As(r.err, &up) || up.Model != "b" || up.Code != model.CodeConnection {
		t.Fatalf("err %v", r.err)
	}
	if len(r.tokens) != 0 {
		t.Fatalf("tokens %q", r.tokens)
	}
}

// After the first token the reply is the entry's: a failure ends it with
// FinishError and the tokens so far, no fallback.
func TestChainFailureAfterTheFirstTokenEndsTheReply(t *testing.T) {
	cases := []struct {
		name string
		step openaitest.Step
		code string
	}{
		{"connection cut", openaitest.Step{CutAfter: 2}, model.CodeConnection},
		{"invalid chunk", openaitest.Step{InvalidAfter: 2}, model.CodeInvalidResponse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			primary := openaitest.New(t, tc.step)
			fallback := openaitest.New(t)
			obs := &errorCodes{}
			r := stream(t, newChain(t, &waits{}, obs, entry(primary, "primary"), entry(fallback, "fallback")), model.Request{Message: "hi"})
			var up *model.UpstreamError
			if !errors.Is(r.err, model.ErrUpstreamFailed) || !errors.As(r.err, &up) || up.Code != tc.code {
				t.Fatalf("err %v, want code %s", r.err, tc.code)
			}
			if strings.Join(r.tokens, "") != "Hello from" || r.usage.FinishReason != model.FinishError || r.usage.Model != "primary" {
				t.Fatalf("tokens %q, usage %+v", r.tokens, r.usage)
			}
			if len(fallback.Requests()) != 0 {
				t.Fatal("the fallback was called after the first token")
			}
			if got := obs.all(); len(got) != 1 || got[0] != "primary:"+tc.code {
				t.Fatalf("errors %v", got)
			}
		})
	}
}

// An upstream that never answers times out at the entry's timeout (its
// connection closed), then the fallback answers.
func TestChainTimesOutAHangingUpstream(t *testing.T) {
	hang := openaitest.New(t, openaitest.Step{Hang: true})
	fallback := openaitest.New(t)
	e := entry(hang, "hang")
	e.Timeout = 50 * time.Millisecond
	obs := &errorCodes{}
	r := stream(t, newChain(t, &waits{}, obs, e, entry(fallback, "fallback")), model.Request{Message: "hi"})
	if r.err != nil || r.usage.Model != "fallback" {
		t.Fatalf("run %+v", r)
	}
	if got := obs.all(); len(got) != 1 || got[0] != "hang:"+model.CodeTimeout {
		t.Fatalf("errors %v", got)
	}
	select {
	case <-hang.Requests()[0].Cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the hanging request was never closed")
	}
}

// A stream that hangs after its first token times out as a failed reply.
func TestChainTimesOutAStreamThatStalls(t *testing.T) {
	up := openaitest.New(t, openaitest.Step{HangAfter: 1})
	e := entry(up, "stall")
	e.Timeout = 50 * time.Millisecond
	r := stream(t, newChain(t, &waits{}, nil, e), model.Request{Message: "hi"})
	var uerr *model.UpstreamError
	if !errors.As(r.err, &uerr) || uerr.Code != model.CodeTimeout || r.usage.FinishReason != model.FinishError || len(r.tokens) != 1 {
		t.Fatalf("run %+v", r)
	}
}

// Cancelling the caller's context ends the reply with ctx's error and no
// fallback.
func TestChainStopsWithItsContext(t *testing.T) {
	up := openaitest.New(t, openaitest.Step{HangAfter: 2})
	fallback := openaitest.New(t)
	m := newChain(t, &waits{}, nil, entry(up, "a"), entry(fallback, "b"))
	ctx, cancel := context.WithCancel(context.Background())
	var n int
	_, err := m.Stream(ctx, model.Request{Message: "hi"}, func(string) error {
		n++
		if n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(fallback.Requests()) != 0 {
		t.Fatalf("err %v, fallback requests %d", err, len(fallback.Requests()))
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	bad := 3.0
	cases := []struct {
		cfg   model.Config
		field string
	}{
		{model.Config{Provider: "llama"}, "provider"},
		{model.Config{Provider: "openai", BaseURL: "://nope", Name: "x"}, "baseURL"},
		{model.Config{Provider: "openai", BaseURL: "ftp://host/v1", Name: "x"}, "baseURL"},
		{model.Config{Provider: "openai"}, "name"},
		{model.Config{Provider: "openai", Name: "x", Temperature: &bad}, "temperature"},
	}
	for _, tc := range cases {
		if err := tc.cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%+v: %v, want the field %s", tc.cfg, err, tc.field)
		}
	}
	if err := (model.Config{}).Validate(); err != nil {
		t.Errorf("the zero config (mock): %v", err)
	}
}

// The provider reads only the fields of a chunk it needs: unknown fields
// and fields of another type than expected are skipped, a chunk of usage
// alone (no choices) gives the usage, a second choice is not shown, and a
// chunk that is no object, or an error object in the stream, ends the
// reply as an invalid response after the tokens before it.
func TestOpenAIReadsWhatAChunkNeedsOfIt(t *testing.T) {
	const (
		role   = `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n"
		first  = `data: {"id":"c","choices":[{"index":0,"delta":{"content":"one","refusal":null,"tool_calls":[{"index":0}]},"logprobs":{"content":[]},"finish_reason":null}],"service_tier":"default","obfuscation":"xyz","usage":null}` + "\n\n"
		second = `data: {"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":" two"}}],"error":null}` + "\n\n"
		odd    = `data: {"choices":[{"index":0,"delta":{"content":" three"},"finish_reason":7}],"created":"not a number"}` + "\n\n"
		finish = `data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}` + "\n\n"
		usage  = `data: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":0}}}` + "\n\n"
		done   = "data: [DONE]\n\n"
	)
	cases := []struct {
		name   string
		raw    string
		tokens string
		usage  model.Usage
		code   string // the *UpstreamError's, "" for none
	}{
		{"every field", role + first + second + odd + finish + usage + done, "one| two| three",
			model.Usage{PromptTokens: 11, CompletionTokens: 3, FinishReason: model.FinishLength, Model: "m"}, ""},
		{"usage before the finish, no [DONE]", role + first + usage + finish, "one",
			model.Usage{PromptTokens: 11, CompletionTokens: 3, FinishReason: model.FinishLength, Model: "m"}, ""},
		{"an error object", role + first + `data: {"error":{"message":"overloaded","type":"server_error"}}` + "\n\n" + finish, "one",
			model.Usage{PromptTokens: 1, CompletionTokens: 1, Model: "m"}, model.CodeInvalidResponse},
		{"a chunk that is no object", role + first + "data: [1, 2]\n\n" + finish, "one",
			model.Usage{PromptTokens: 1, CompletionTokens: 1, Model: "m"}, model.CodeInvalidResponse},
		{"[DONE] before the finish", role + first + done + finish, "one",
			model.Usage{PromptTokens: 1, CompletionTokens: 1, Model: "m"}, model.CodeConnection},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := model.NewOpenAI(entry(openaitest.New(t, openaitest.Step{Raw: tc.raw}), "m"))
			if err != nil {
				t.Fatal(err)
			}
			r := stream(t, m, model.Request{Message: "hi"})
			var up *model.UpstreamError
			switch {
			case tc.code == "" && r.err != nil:
				t.Fatalf("err %v", r.err)
			case tc.code != "" && (!errors.As(r.err, &up) || up.Code != tc.code):
				t.Fatalf("err %v, want code %s", r.err, tc.code)
			}
			if got := strings.Join(r.tokens, "|"); got != tc.tokens {
				t.Fatalf("tokens %q, want %q", got, tc.tokens)
			}
			if r.usage != tc.usage {
				t.Fatalf("usage %+v, want %+v", r.usage, tc.usage)
			}
		})
	}
}
