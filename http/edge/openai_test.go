package edge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/http/edge"
)

// openAIClient is the official openai-go client pointed at the edge.
func (a *api) openAIClient(key string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(a.url + "/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0),
	}, opts...)...)
}

func userMessages(texts ...string) openai.ChatCompletionNewParams {
	var msgs []openai.ChatCompletionMessageParamUnion
	for _, t := range texts {
		msgs = append(msgs, openai.UserMessage(t))
	}
	return openai.ChatCompletionNewParams{Model: "mock", Messages: msgs}
}

func TestOpenAIStreamIsChunkForChunkWithUsageAndStoresNothingOneShot(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	client := a.openAIClient(acmeKey)
	params := openai.ChatCompletionNewParams{Model: "mock", Messages: []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("Be brief."), openai.UserMessage("earlier"), openai.AssistantMessage("noted"), openai.UserMessage("hello there"),
	}, StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var chunks []openai.ChatCompletionChunk
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		chunks = append(chunks, stream.Current())
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := model.MockReply(model.Request{Message: "hello there"})
	tokens := len(model.Tokens(want))
	// role, one per token, finish_reason, usage.
	if len(chunks) != tokens+3 {
		t.Fatalf("%d chunks for %d tokens", len(chunks), tokens)
	}
	for i, c := range chunks {
		if c.Object != "chat.completion.chunk" || c.ID != chunks[0].ID || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Model != "mock" || c.Created == 0 {
			t.Fatalf("chunk %d: %s", i, c.RawJSON())
		}
	}
	if d := chunks[0].Choices[0].Delta; d.Role != "assistant" || d.Content != "" || chunks[0].Choices[0].FinishReason != "" {
		t.Fatalf("first chunk %s", chunks[0].RawJSON())
	}
	finish := chunks[len(chunks)-2]
	if finish.Choices[0].FinishReason != "stop" || finish.Choices[0].Delta.Content != "" || finish.JSON.Usage.Raw() != "null" {
		t.Fatalf("finish chunk %s", finish.RawJSON())
	}
	usage := chunks[len(chunks)-1]
	prompt := model.CountTokens("You are Acme's terse assistant. Be brief. earlier noted hello there")
	if len(usage.Choices) != 0 || usage.Usage.CompletionTokens != int64(tokens) || usage.Usage.PromptTokens != int64(prompt) ||
		usage.Usage.TotalTokens != int64(tokens+prompt) {
		t.Fatalf("usage chunk %s (prompt tokens %d)", usage.RawJSON(), prompt)
	}
	if got := acc.Choices[0].Message.Content; got != want {
		t.Fatalf("content %q, want %q", got, want)
	}
	if calls := a.grains.calls.Load(); calls != 0 {
		t.Fatalf("a one-shot completion made %d session calls", calls)
	}
}

func TestOpenAIStreamOnTheWireEndsWithDone(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	resp := a.do("POST", "/v1/chat/completions", acmeKey, "application/json",
		strings.NewReader(`{"model":"mock","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"temperature":0.2}`))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var data []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, ":") {
			continue
		}
		if !strings.HasPrefix(line, "data: ") {
			t.Fatalf("line %q is not a data line", line)
		}
		data = append(data, strings.TrimPrefix(line, "data: "))
	}
	if len(data) < 3 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("data lines %q", data)
	}
	// Without include_usage no chunk has a usage field at all.
	for _, d := range data[:len(data)-1] {
		var chunk map[string]json.RawMessage
		if err := json.Unmarshal([]byte(d), &chunk); err != nil {
			t.Fatal(err)
		}
		if _, ok := chunk["usage"]; ok {
			t.Fatalf("chunk %s has usage", d)
		}
	}
}

func TestOpenAIWithASessionStoresTheTurnAndUsesItsHistory(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	sid := uuid.NewString()
	client := a.openAIClient(acmeKey, option.WithHeader("X-Session-Id", sid))
	first, err := client.Chat.Completions.New(context.Background(), userMessages("ignored by the session", "first question"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Object != "chat.completion" || first.Choices[0].FinishReason != "stop" || first.Choices[0].Message.Role != "assistant" ||
		first.Choices[0].Message.Content != model.MockReply(model.Request{Message: "first question"}) {
		t.Fatalf("answer %s", first.RawJSON())
	}
	second, err := client.Chat.Completions.New(context.Background(), userMessages("second question"))
	if err != nil {
		t.Fatal(err)
	}
	// The session's history is the context: the second prompt counts the
	// first turn, which this request did not send.
	if second.Usage.PromptTokens <= first.Usage.PromptTokens+int64(model.CountTokens(first.Choices[0].Message.Content)) {
		t.Fatalf("second prompt %d tokens, first %d", second.Usage.PromptTokens, first.Usage.PromptTokens)
	}
	h := a.history(acmeKey, sid, "")
	if len(h.Messages) != 4 || h.Messages[3].Content != "first question" || h.Messages[1].Content != "second question" ||
		h.Messages[0].Content != second.Choices[0].Message.Content {
		t.Fatalf("history %+v", h.Messages)
	}
}

func TestOpenAIStreamWithASessionStoresTheReply(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	sid := uuid.NewString()
	client := a.openAIClient(acmeKey, option.WithHeader("X-Session-Id", sid))
	stream := client.Chat.Completions.NewStreaming(context.Background(), userMessages("stream me"))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	h := a.history(acmeKey, sid, "")
	if len(h.Messages) != 2 || h.Messages[0].Content != acc.Choices[0].Message.Content || h.Messages[1].Content != "stream me" {
		t.Fatalf("history %+v", h.Messages)
	}
}

func TestOpenAIErrorsAreOpenAIShapedAndStoreNothing(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	cases := []struct {
		name   string
		client openai.Client
		params openai.ChatCompletionNewParams
		status int
		code   string
		param  string
	}{
		{"unknown model", a.openAIClient(acmeKey, option.WithHeader("X-Session-Id", uuid.NewString())),
			openai.ChatCompletionNewParams{Model: "gpt-9", Messages: userMessages("hi").Messages}, 404, "model_not_found", ""},
		{"no user message", a.openAIClient(acmeKey, option.WithHeader("X-Session-Id", uuid.NewString())),
			openai.ChatCompletionNewParams{Model: "mock", Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("only")}}, 400, "validation_failed", "messages"},
		{"non-UUID session", a.openAIClient(acmeKey, option.WithHeader("X-Session-Id", "not-a-uuid")), userMessages("hi"), 400, "validation_failed", "X-Session-Id"},
		{"unknown key", a.openAIClient("wrong-key"), userMessages("hi"), 401, "invalid_api_key", ""},
	}
	for _, tc := range cases {
		for _, streaming := range []bool{false, true} {
			var err error
			if streaming {
				stream := tc.client.Chat.Completions.NewStreaming(context.Background(), tc.params)
				for stream.Next() {
					t.Errorf("%s: a chunk %s", tc.name, stream.Current().RawJSON())
				}
				err = stream.Err()
			} else {
				_, err = tc.client.Chat.Completions.New(context.Background(), tc.params)
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("%s (stream %v): %v", tc.name, streaming, err)
			}
			if apiErr.StatusCode != tc.status || apiErr.Code != tc.code || apiErr.Param != tc.param || apiErr.Message == "" || apiErr.Type == "" ||
				apiErr.Response.Header.Get("X-Trace-Id") == "" {
				t.Fatalf("%s (stream %v): %d %s", tc.name, streaming, apiErr.StatusCode, apiErr.RawJSON())
			}
		}
	}
	if calls := a.grains.calls.Load(); calls != 0 {
		t.Fatalf("bad requests made %d session calls", calls)
	}
}

func TestOpenAIFailureMidStreamIsAnErrorChunk(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	a.gate.fail = true
	client := a.openAIClient(acmeKey, option.WithHeader("X-Session-Id", uuid.NewString()))
	stream := client.Chat.Completions.NewStreaming(context.Background(), userMessages("hi"))
	var content strings.Builder
	for stream.Next() {
		if len(stream.Current().Choices) > 0 {
			content.WriteString(stream.Current().Choices[0].Delta.Content)
		}
	}
	var streamErr *ssestream.StreamError
	if !errors.As(stream.Err(), &streamErr) || content.String() != "half a" {
		t.Fatalf("content %q, err %v", content.String(), stream.Err())
	}
	var body struct {
		Error struct{ Message, Type, Code string }
	}
	if err := json.Unmarshal(streamErr.Event.Data, &body); err != nil || body.Error.Type != "server_error" || body.Error.Code != "upstream_failed" {
		t.Fatalf("error chunk %s (%v)", streamErr.Event.Data, err)
	}
}

func TestOpenAIModelsListsTheTenantsModels(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	client := a.openAIClient(acmeKey)
	page, err := client.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != "mock" || page.Data[0].Object != "model" {
		t.Fatalf("models %s", page.RawJSON())
	}
	if m, err := client.Models.Get(context.Background(), "mock"); err != nil || m.ID != "mock" {
		t.Fatalf("get mock: %v %v", m, err)
	}
	var apiErr *openai.Error
	if _, err := client.Models.Get(context.Background(), "gpt-9"); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Fatalf("get gpt-9: %v", err)
	}
}

// refuseAll is a RateLimiter over every limit.
type refuseAll struct{}

func (refuseAll) Check(*http.Request, *tenants.Tenant, string) (edge.RateDecision, error) {
	return edge.RateDecision{Allowed: false, Scope: "tenant", Limit: 60, Remaining: 0, Reset: time.Now().Add(time.Minute), RetryAfter: 30 * time.Second}, nil
}

// The compatible routes sit behind the same rate limits; the OpenAI ones
// refuse in OpenAI's shape, the UI chat in Parley's.
func TestCompatibleRoutesAreRateLimitedInTheirOwnFormat(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *edge.Config) { c.RateLimiter = refuseAll{} })
	client := a.openAIClient(acmeKey)
	_, err := client.Chat.Completions.New(context.Background(), userMessages("hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "rate_limit_exceeded" ||
		apiErr.Type != "rate_limit_error" || apiErr.Response.Header.Get("Retry-After") != "30" || apiErr.Response.Header.Get("X-RateLimit-Limit") != "60" {
		t.Fatalf("chat completions over the limit: %v", err)
	}
	resp := a.do("POST", "/v1/ui/chat", acmeKey, "application/json", strings.NewReader(`{"id":"c","messages":[{"id":"u","role":"user","parts":[{"type":"text","text":"q"}]}]}`))
	if e := errorBody(t, resp); resp.StatusCode != http.StatusTooManyRequests || e.Error.Code != edge.CodeRateLimited || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("ui chat over the limit: %d %+v", resp.StatusCode, e)
	}
	if calls := a.grains.calls.Load(); calls != 0 {
		t.Fatalf("refused requests made %d session calls", calls)
	}
}

func TestIdleCompatibleStreamsSendHeartbeats(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *edge.Config) { c.Heartbeat = 20 * time.Millisecond })
	a.gate.next = make(chan struct{})
	defer close(a.gate.next)
	for path, body := range map[string]string{
		"/v1/chat/completions": `{"model":"mock","stream":true,"messages":[{"role":"user","content":"wait"}]}`,
		"/v1/ui/chat":          `{"id":"` + uuid.NewString() + `","messages":[{"id":"u","role":"user","parts":[{"type":"text","text":"wait"}]}]}`,
	} {
		header := http.Header{"X-Session-Id": {uuid.NewString()}}
		resp := a.doWith("POST", path, acmeKey, "application/json", header, strings.NewReader(body))
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v before a ping", path, err)
			}
			if line == ": ping\n" {
				break
			}
			if strings.Contains(line, "delta\":\"") || strings.Contains(line, `"content":"Y`) {
				t.Fatalf("%s: a token %q while the model is held", path, line)
			}
		}
		resp.Body.Close()
	}
}

// A one-shot call runs the authenticated tenant's model, no other, and its
// tokens are flushed as the model writes them.
func TestOpenAIOneShotStreamsTheTenantsModelProgressively(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	asked := make(chan string, 4)
	a := newAPI(t, func(c *edge.Config) {
		c.Models = func(tenant string) model.Model {
			asked <- tenant
			return model.Mock{Gate: gate}
		}
	})
	client := a.openAIClient(globexKey)
	stream := client.Chat.Completions.NewStreaming(context.Background(), userMessages("step by step"))
	defer stream.Close()
	if tenant := <-asked; tenant != "globex" {
		t.Fatalf("the model of %q ran for globex's key", tenant)
	}
	want := model.Tokens(model.MockReply(model.Request{Message: "step by step"}))
	if !stream.Next() || stream.Current().Choices[0].Delta.Role != "assistant" {
		t.Fatalf("first chunk %v (%v)", stream.Current().RawJSON(), stream.Err())
	}
	// Each token arrives before the model is let to write the next.
	for i := range 3 {
		gate <- struct{}{}
		if !stream.Next() || stream.Current().Choices[0].Delta.Content != want[i] {
			t.Fatalf("chunk for token %d: %s (%v)", i, stream.Current().RawJSON(), stream.Err())
		}
	}
	close(gate)
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAISessionWithAReplyInProgressIs409(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	a.gate.next = make(chan struct{})
	defer close(a.gate.next)
	client := a.openAIClient(acmeKey, option.WithHeader("X-Session-Id", uuid.NewString()))
	stream := client.Chat.Completions.NewStreaming(context.Background(), userMessages("first"))
	defer stream.Close()
	if !stream.Next() { // the role chunk: the reply is in progress
		t.Fatal(stream.Err())
	}
	_, err := client.Chat.Completions.New(context.Background(), userMessages("second"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict || apiErr.Code != "conflict" || apiErr.Type != "invalid_request_error" {
		t.Fatalf("second call during a reply: %v", err)
	}
}
