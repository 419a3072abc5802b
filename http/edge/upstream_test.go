package edge_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	sse "github.com/tmaxmax/go-sse"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/model/openaitest"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
)

// newUpstreamAPI is an edge whose tenant acme talks to up through the
// openai provider (no retries, fallbacks as given) and globex to the mock.
func newUpstreamAPI(t *testing.T, up *openaitest.Server, fallbacks string) *api {
	t.Helper()
	reg, err := tenants.Parse(strings.NewReader(`{"tenants": [
		{"id": "acme", "apiKeys": [{"id": "web", "hash": "` + tenants.HashKey(acmeKey) + `"}],
		 "model": {"provider": "openai", "baseURL": "` + up.BaseURL() + `", "name": "gpt-test", "timeoutSeconds": 5,
		           "promptTemplate": "Be terse.", "fallbacks": [` + fallbacks + `]}},
		{"id": "globex", "apiKeys": [{"id": "app", "hash": "` + tenants.HashKey(globexKey) + `"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	metrics := edge.NewMetrics()
	models, err := reg.Models(model.Mock{}, model.ChainConfig{Observer: metrics, Retries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := testkit.OpenStore(t, "")
	c := testkit.NewCluster(t, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
		kind, err := session.NewKind(session.Config{Store: store, Models: models, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind)
	}))
	a := &api{t: t, node: c.Node(0), gate: &gatedModel{}}
	a.grains = &countingGrains{node: a.node}
	h, err := edge.New(edge.Config{NodeName: "n", Health: readyHealth{}, Tenants: reg, Sessions: session.NewClient(a.grains, a.node.System()),
		Metrics: metrics, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

// events reads a whole SSE reply: the token texts, and the last event.
func events(t *testing.T, body io.Reader) (tokens []string, last sse.Event) {
	t.Helper()
	for ev, err := range sse.Read(body, nil) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "token" {
			var tok struct{ Text string }
			_ = json.Unmarshal([]byte(ev.Data), &tok)
			tokens = append(tokens, tok.Text)
		}
		last = ev
	}
	return tokens, last
}

type historyMessage struct {
	ID, Role, Content, FinishReason string
	TokenCount                      int
}

func history(t *testing.T, a *api, key, sessionID string) []historyMessage {
	t.Helper()
	var body struct{ Messages []historyMessage }
	resp := a.do("GET", "/chat/"+sessionID+"/history", key, "", nil)
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Messages
}

// The provider's deltas are the token events; done carries the provider's
// usage, the model and the finish reason; the history stores them; the
// metrics count them.
func TestChatThroughTheOpenAIProvider(t *testing.T) {
	t.Parallel()
	up := openaitest.New(t, openaitest.Step{PromptTokens: 40, CompletionTokens: 12, FinishReason: "length"})
	a := newUpstreamAPI(t, up, "")
	sid := uuid.NewString()
	tokens, last := events(t, a.chat(acmeKey, sid, "hello there", true).Body)
	if strings.Join(tokens, "") != strings.Join(openaitest.DefaultTokens, "") || last.Type != "done" {
		t.Fatalf("tokens %q, last %s %s", tokens, last.Type, last.Data)
	}
	var done struct {
		Usage        edge.Usage
		Model        string
		FinishReason string
	}
	if err := json.Unmarshal([]byte(last.Data), &done); err != nil {
		t.Fatal(err)
	}
	if done.Usage != (edge.Usage{PromptTokens: 40, CompletionTokens: 12, TotalTokens: 52}) || done.Model != "gpt-test" || done.FinishReason != "length" {
		t.Fatalf("done %s", last.Data)
	}
	msgs := history(t, a, acmeKey, sid)
	if len(msgs) != 2 || msgs[0].Role != "assistant" || msgs[0].TokenCount != 12 || msgs[0].FinishReason != "length" || msgs[1].FinishReason != "" {
		t.Fatalf("history %+v", msgs)
	}
	if sys := up.Requests()[0].Body.Messages[0]; sys.Role != "system" || sys.Content != "Be terse." {
		t.Fatalf("first message %+v", sys)
	}
	metrics, _ := io.ReadAll(a.do("GET", "/metrics", "", "", nil).Body)
	for _, want := range []string{
		`parley_model_tokens_total{kind="completion",model="gpt-test",tenant="acme"} 12`,
		`parley_model_tokens_total{kind="prompt",model="gpt-test",tenant="acme"} 40`,
		`parley_upstream_time_to_first_token_seconds_count{model="gpt-test"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A failure after the first token ends the stream with upstream_failed
// and stores the partial reply with finishReason "error"; one before it
// falls back, and done names the fallback.
func TestUpstreamFailuresAtTheEdge(t *testing.T) {
	t.Parallel()
	up := openaitest.New(t, openaitest.Step{CutAfter: 3}, openaitest.Step{Status: 500})
	fallback := openaitest.New(t)
	a := newUpstreamAPI(t, up, `{"name": "backup", "baseURL": "`+fallback.BaseURL()+`"}`)

	sid := uuid.NewString()
	tokens, last := events(t, a.chat(acmeKey, sid, "hi", true).Body)
	var body edge.ErrorBody
	if err := json.Unmarshal([]byte(last.Data), &body); err != nil || last.Type != "error" || body.Error.Code != edge.CodeUpstreamFailed {
		t.Fatalf("last event %s %s", last.Type, last.Data)
	}
	msgs := history(t, a, acmeKey, sid)
	if len(msgs) != 2 || msgs[0].Content != strings.Join(tokens, "") || msgs[0].Content != "Hello from the" || msgs[0].FinishReason != "error" {
		t.Fatalf("tokens %q, history %+v", tokens, msgs)
	}

	_, last = events(t, a.chat(acmeKey, uuid.NewString(), "hi", true).Body)
	if last.Type != "done" || !strings.Contains(last.Data, `"model":"backup"`) {
		t.Fatalf("after a 500: %s %s", last.Type, last.Data)
	}
	metrics, _ := io.ReadAll(a.do("GET", "/metrics", "", "", nil).Body)
	for _, want := range []string{
		`parley_upstream_errors_total{code="connection",model="gpt-test"} 1`,
		`parley_upstream_errors_total{code="server_error",model="gpt-test"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// Whatever an upstream answers, the chat ends with a clear error (502 for
// stream:false), nothing but the user message is stored, the node goes on
// serving, and another tenant's chats are untouched.
func TestNothingAnUpstreamSendsBreaksTheNode(t *testing.T) {
	t.Parallel()
	bad := []openaitest.Step{
		{Raw: "data: {not json\n\n"},
		{Raw: `data: {"error": {"message": "overloaded", "type": "server_error"}}` + "\n\n"},
		{Raw: "<html>502 Bad Gateway</html>", RawType: "text/html"},
		{Raw: "data: " + strings.Repeat("x", 9<<20) + "\n\n"},
		{Raw: "data: " + strings.Repeat(`{"choices":[{"index":0,"delta":{"content":"`, 3000) + "\n\n"},
		{Raw: "\x00\xff\xfe garbage \r\n\r\n"},
		{Raw: `data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}` + "\n\ndata: [DONE]\n\n"},
		{Status: 401},
		{Status: 404},
	}
	up := openaitest.New(t, bad...)
	a := newUpstreamAPI(t, up, "")
	for i := range bad {
		sid := uuid.NewString()
		resp := a.chat(acmeKey, sid, "hi", false)
		raw, _ := io.ReadAll(resp.Body)
		var body edge.ErrorBody
		if resp.StatusCode != 502 || json.Unmarshal(raw, &body) != nil || body.Error.Code != edge.CodeUpstreamFailed {
			t.Errorf("answer %d: %d %s", i, resp.StatusCode, raw)
		}
		msgs := history(t, a, acmeKey, sid)
		if i == 6 { // one token, then [DONE] without a finish reason: a partial reply
			if len(msgs) != 2 || msgs[0].FinishReason != "error" || msgs[0].Content != "ok" {
				t.Errorf("answer %d: history %+v", i, msgs)
			}
		} else if len(msgs) != 1 || msgs[0].Role != "user" {
			t.Errorf("answer %d: history %+v", i, msgs)
		}
	}
	_, last := events(t, a.chat(acmeKey, uuid.NewString(), "hi", true).Body)
	if last.Type != "done" {
		t.Fatalf("after the bad answers: %s %s", last.Type, last.Data)
	}
	_, last = events(t, a.chat(globexKey, uuid.NewString(), "hi", true).Body)
	if last.Type != "done" || !strings.Contains(last.Data, fmt.Sprintf(`"model":%q`, model.MockName)) {
		t.Fatalf("globex: %s %s", last.Type, last.Data)
	}
	for _, r := range up.Requests() {
		if r.Body.Model != "gpt-test" {
			t.Fatalf("the upstream saw a request of another tenant: %+v", r.Body)
		}
	}
}
