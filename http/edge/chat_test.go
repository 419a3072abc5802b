package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	sse "github.com/tmaxmax/go-sse"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
)

const (
	acmeKey   = "acme-secret-key"
	globexKey = "globex-secret-key"
)

// api is an HTTP edge over a real one-node cluster hosting ChatSession
// grains on an in-memory store.
type api struct {
	t      *testing.T
	url    string
	node   *cluster.Node
	grains *countingGrains
	gate   *gatedModel
	// cacheClock is the time of the cache grains (TTLs), a fake clock.
	cacheClock *testkit.FakeClock
}

// countingGrains passes calls to the node and counts them.
type countingGrains struct {
	node  *cluster.Node
	calls atomic.Int32
	lost  chan struct{} // when set, stands for every host's failure
}

func (g *countingGrains) HostLost(address string) <-chan struct{} {
	if g.lost != nil {
		return g.lost
	}
	return g.node.HostLost(address)
}

func (g *countingGrains) Request(ctx context.Context, identity, kind string, msg any) (any, error) {
	g.calls.Add(1)
	return g.node.Request(ctx, identity, kind, msg)
}

// gatedModel is the mock model, holding each token until a value arrives
// on next (or next is closed) while next is set, or failingModel while
// fail is set: a test sets either after newAPI.
type gatedModel struct {
	next chan struct{}
	fail bool
}

func (m *gatedModel) Stream(ctx context.Context, req model.Request, emit func(string) error) (model.Usage, error) {
	if m.fail {
		return failingModel{}.Stream(ctx, req, emit)
	}
	return model.Mock{Gate: m.next}.Stream(ctx, req, emit)
}

func newAPI(t *testing.T, adjust func(*edge.Config)) *api {
	t.Helper()
	store := testkit.OpenStore(t, "")
	a := &api{t: t, gate: &gatedModel{}, cacheClock: testkit.NewFakeClock(time.Time{})}
	c := testkit.NewCluster(t, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
		kind, err := session.NewKind(session.Config{Store: store, Model: a.gate, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cacheKind, err := cache.NewKind(cache.Config{Store: store, Clock: a.cacheClock, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind, cacheKind)
	}))
	a.node = c.Node(0)
	a.grains = &countingGrains{node: a.node}
	reg, err := tenants.Parse(strings.NewReader(`{"tenants": [
		{"id": "acme", "apiKeys": [{"id": "web", "hash": "` + tenants.HashKey(acmeKey) + `"}], "model": {"promptTemplate": "You are Acme's terse assistant."}},
		{"id": "globex", "apiKeys": [{"id": "app", "hash": "` + tenants.HashKey(globexKey) + `"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	metrics := edge.NewMetrics()
	cacheClient := cache.NewClient(a.node)
	cacheClient.Observer = metrics
	cfg := edge.Config{NodeName: "n", Health: readyHealth{}, Tenants: reg, Sessions: session.NewClient(a.grains, a.node.System()),
		Cache: cacheClient, Metrics: metrics, Logger: testkit.NewLogger(t)}
	if adjust != nil {
		adjust(&cfg)
	}
	h, err := edge.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

type readyHealth struct{}

func (readyHealth) Ready() error { return nil }
func (readyHealth) Members() any { return nil }

func (a *api) do(method, path, key, contentType string, body io.Reader) *http.Response {
	a.t.Helper()
	return a.doWith(method, path, key, contentType, nil, body)
}

// doWith is do with more request headers.
func (a *api) doWith(method, path, key, contentType string, header http.Header, body io.Reader) *http.Response {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (a *api) chat(key, sessionID, message string, stream bool) *http.Response {
	a.t.Helper()
	body := fmt.Sprintf(`{"sessionId": %q, "message": %q, "stream": %v}`, sessionID, message, stream)
	return a.do("POST", "/chat", key, "application/json", strings.NewReader(body))
}

// chatKeyed is chat with an Idempotency-Key header.
func (a *api) chatKeyed(key, sessionID, message string, stream bool, idempotencyKey string) *http.Response {
	a.t.Helper()
	body := fmt.Sprintf(`{"sessionId": %q, "message": %q, "stream": %v}`, sessionID, message, stream)
	return a.doWith("POST", "/chat", key, "application/json", idempotencyKeyHeader(idempotencyKey), strings.NewReader(body))
}

type historyJSON struct {
	Messages []struct {
		ID         string `json:"id"`
		Role       string `json:"role"`
		Content    string `json:"content"`
		CreatedAt  string `json:"createdAt"`
		TokenCount int    `json:"tokenCount"`
	} `json:"messages"`
	NextCursor *string `json:"nextCursor"`
}

func (a *api) history(key, sessionID, query string) historyJSON {
	a.t.Helper()
	resp := a.do("GET", "/chat/"+sessionID+"/history"+query, key, "", nil)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("history: %d", resp.StatusCode)
	}
	var h historyJSON
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		a.t.Fatal(err)
	}
	return h
}

func TestChatStreamsTokensAsServerSentEvents(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	sid := uuid.NewString()
	sent := time.Now()
	resp := a.chat(acmeKey, sid, "hello there", true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for header, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	traceID := resp.Header.Get("X-Trace-Id")

	want := model.Tokens(model.MockReply(model.Request{Message: "hello there"}))
	var tokens []string
	var done map[string]any
	for ev, err := range sse.Read(resp.Body, nil) {
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "token":
			if ev.LastEventID != fmt.Sprint(len(tokens)) {
				t.Fatalf("token %d has id %q", len(tokens), ev.LastEventID)
			}
			var tok struct{ Text string }
			if err := json.Unmarshal([]byte(ev.Data), &tok); err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, tok.Text)
		case "done":
			if err := json.Unmarshal([]byte(ev.Data), &done); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected event %q: %s", ev.Type, ev.Data)
		}
	}
	if strings.Join(tokens, "|") != strings.Join(want, "|") {
		t.Fatalf("tokens %q, want %q", tokens, want)
	}
	usage, _ := done["usage"].(map[string]any)
	if done["traceId"] != traceID || done["messageId"] == "" || usage["completionTokens"] != float64(len(want)) ||
		usage["totalTokens"] != usage["promptTokens"].(float64)+usage["completionTokens"].(float64) {
		t.Fatalf("done %v (trace %s)", done, traceID)
	}
	// The edge's figures lie inside what the client saw: the first token
	// no later than the whole reply, the reply no longer than the request
	// took from here, both whole milliseconds (not seconds, not
	// nanoseconds). An ordering, not a timing: it holds on any machine.
	took := time.Since(sent).Milliseconds() + 1
	latency, okL := done["latencyMs"].(float64)
	ttft, okT := done["ttftMs"].(float64)
	if !okL || !okT || ttft != float64(int64(ttft)) || latency != float64(int64(latency)) ||
		ttft < 0 || ttft > latency || latency > float64(took) {
		t.Errorf("ttftMs %v, latencyMs %v: want 0 <= ttftMs <= latencyMs <= %d ms, the request as the client saw it", done["ttftMs"], done["latencyMs"], took)
	}

	h := a.history(acmeKey, sid, "")
	if len(h.Messages) != 2 || h.Messages[0].Role != "assistant" || h.Messages[0].ID != done["messageId"] ||
		h.Messages[0].Content != strings.Join(want, "") || h.Messages[0].TokenCount != len(want) || h.Messages[1].Content != "hello there" {
		t.Fatalf("history %+v", h)
	}
	if _, err := time.Parse(time.RFC3339, h.Messages[0].CreatedAt); err != nil {
		t.Errorf("createdAt %q: %v", h.Messages[0].CreatedAt, err)
	}
}

// Tokens already waiting go out in one write, but none waits for a later
// one: each reaches the client before the model is let to make the next.
func TestChatStreamSendsEachTokenBeforeTheNextIsMade(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	a.gate.next = make(chan struct{})
	resp := a.chat(acmeKey, uuid.NewString(), "one at a time", true)
	defer resp.Body.Close()
	type read struct {
		ev  sse.Event
		err error
		ok  bool
	}
	events := make(chan read)
	go func() {
		defer close(events)
		for ev, err := range sse.Read(resp.Body, nil) {
			events <- read{ev, err, true}
			if err != nil {
				return
			}
		}
	}()
	want := model.Tokens(model.MockReply(model.Request{Message: "one at a time"}))
	for i := range 3 {
		a.gate.next <- struct{}{} // the model may make token i, and no more
		var r read
		select {
		case r = <-events:
		case <-time.After(10 * time.Second): // a guard against a hang, not a timing
			t.Fatalf("token %d was made but not sent", i)
		}
		var tok struct{ Text string }
		if !r.ok || r.err != nil || r.ev.Type != "token" || r.ev.LastEventID != fmt.Sprint(i) ||
			json.Unmarshal([]byte(r.ev.Data), &tok) != nil || tok.Text != want[i] {
			t.Fatalf("event %d: %+v %v", i, r.ev, r.err)
		}
	}
	close(a.gate.next)
	var last sse.Event
	n := 3
	for r := range events {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.ev.Type == "token" {
			n++
		}
		last = r.ev
	}
	if last.Type != "done" || n != len(want) {
		t.Fatalf("%d tokens, then %q", n, last.Type)
	}
}

func TestChatWithoutStreamAnswersJSON(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	resp := a.chat(acmeKey, uuid.NewString(), "hi", false)
	var body struct {
		Message struct{ ID, Role, Content string } `json:"message"`
		Usage   struct{ CompletionTokens int }     `json:"usage"`
		TraceID string                             `json:"traceId"`
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Message.Role != "assistant" || body.Message.Content != model.MockReply(model.Request{Message: "hi"}) ||
		body.Usage.CompletionTokens == 0 || body.TraceID != resp.Header.Get("X-Trace-Id") {
		t.Fatalf("body %+v", body)
	}
}

func errorBody(t *testing.T, resp *http.Response) edge.ErrorBody {
	t.Helper()
	var body edge.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%d with a non-JSON body: %v", resp.StatusCode, err)
	}
	if body.TraceID == "" || body.TraceID != resp.Header.Get("X-Trace-Id") {
		t.Fatalf("traceId %q, header %q", body.TraceID, resp.Header.Get("X-Trace-Id"))
	}
	return body
}

func TestBadRequestsGetAClear4xxAndReachNoGrain(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	sid := uuid.NewString()
	valid := fmt.Sprintf(`{"sessionId": %q, "message": "hi"}`, sid)
	cases := []struct {
		name, key, contentType, body string
		status                       int
		code, field                  string
		header                       http.Header
	}{
		{"no key", "", "application/json", valid, 401, edge.CodeUnauthorized, "", nil},
		{"unknown key", "nope", "application/json", valid, 401, edge.CodeUnauthorized, "", nil},
		{"text body", acmeKey, "text/plain", valid, 415, edge.CodeUnsupportedType, "", nil},
		{"malformed JSON", acmeKey, "application/json", `{"sessionId": `, 400, edge.CodeBadRequest, "", nil},
		{"not an object", acmeKey, "application/json", `[1,2]`, 400, edge.CodeBadRequest, "", nil},
		{"empty body", acmeKey, "application/json", ``, 400, edge.CodeBadRequest, "", nil},
		{"unknown field", acmeKey, "application/json", fmt.Sprintf(`{"sessionId": %q, "message": "hi", "tenant": "globex"}`, sid), 400, edge.CodeBadRequest, "tenant", nil},
		{"wrong type", acmeKey, "application/json", fmt.Sprintf(`{"sessionId": %q, "message": 42}`, sid), 400, edge.CodeBadRequest, "message", nil},
		{"stream not bool", acmeKey, "application/json", fmt.Sprintf(`{"sessionId": %q, "message": "hi", "stream": "yes"}`, sid), 400, edge.CodeBadRequest, "stream", nil},
		{"trailing data", acmeKey, "application/json", valid + `{}`, 400, edge.CodeBadRequest, "", nil},
		{"session not a UUID", acmeKey, "application/json", `{"sessionId": "../../etc", "message": "hi"}`, 400, edge.CodeValidation, "sessionId", nil},
		{"empty message", acmeKey, "application/json", fmt.Sprintf(`{"sessionId": %q, "message": ""}`, sid), 400, edge.CodeValidation, "message", nil},
		{"message too long", acmeKey, "application/json", fmt.Sprintf(`{"sessionId": %q, "message": %q}`, sid, strings.Repeat("é", 10001)), 400, edge.CodeValidation, "message", nil},
		{"body over 64 KiB", acmeKey, "application/json", fmt.Sprintf(`{"sessionId": %q, "message": %q}`, sid, strings.Repeat("a", 70_000)), 413, edge.CodeTooLarge, "", nil},
		{"empty Idempotency-Key", acmeKey, "application/json", valid, 400, edge.CodeValidation, edge.HeaderIdempotencyKey, idempotencyKeyHeader("")},
		{"Idempotency-Key over 128", acmeKey, "application/json", valid, 400, edge.CodeValidation, edge.HeaderIdempotencyKey, idempotencyKeyHeader(strings.Repeat("k", 129))},
		{"Idempotency-Key with a space", acmeKey, "application/json", valid, 400, edge.CodeValidation, edge.HeaderIdempotencyKey, idempotencyKeyHeader("retry 1")},
		{"Idempotency-Key with a tab", acmeKey, "application/json", valid, 400, edge.CodeValidation, edge.HeaderIdempotencyKey, idempotencyKeyHeader("retry\t1")},
		{"Idempotency-Key not ASCII", acmeKey, "application/json", valid, 400, edge.CodeValidation, edge.HeaderIdempotencyKey, idempotencyKeyHeader("clé")},
		{"Idempotency-Key twice", acmeKey, "application/json", valid, 400, edge.CodeValidation, edge.HeaderIdempotencyKey, idempotencyKeyHeader("a", "b")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := a.doWith("POST", "/chat", tc.key, tc.contentType, tc.header, strings.NewReader(tc.body))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			body := errorBody(t, resp)
			if body.Error.Code != tc.code {
				t.Fatalf("code %q, want %q (%s)", body.Error.Code, tc.code, body.Error.Message)
			}
			if tc.field != "" && (len(body.Error.Details) == 0 || body.Error.Details[0].Field != tc.field || body.Error.Details[0].Message == "") {
				t.Fatalf("details %+v, want field %q explained", body.Error.Details, tc.field)
			}
		})
	}
	if n := a.grains.calls.Load(); n != 0 {
		t.Fatalf("%d bad requests reached a grain", n)
	}
	if h := a.history(acmeKey, sid, ""); len(h.Messages) != 0 {
		t.Fatalf("bad requests stored %d messages", len(h.Messages))
	}
}

// idempotencyKeyHeader is a request header of Idempotency-Key values.
func idempotencyKeyHeader(values ...string) http.Header {
	return http.Header{edge.HeaderIdempotencyKey: values}
}

func TestSecondChatDuringAReplyIs409(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	a.gate.next = make(chan struct{})
	sid := uuid.NewString()
	first := a.chat(acmeKey, sid, "one", true)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first: %d", first.StatusCode)
	}
	second := a.chat(acmeKey, sid, "two", true)
	if second.StatusCode != http.StatusConflict || errorBody(t, second).Error.Code != edge.CodeConflict {
		t.Fatalf("second: %d", second.StatusCode)
	}
	// Another session of the same tenant is not blocked.
	close(a.gate.next) // let every reply run to its end
	if other := a.chat(acmeKey, uuid.NewString(), "three", false); other.StatusCode != http.StatusOK {
		t.Fatalf("other session: %d", other.StatusCode)
	}
}

// chatBody is the body of a 200 to POST /chat with "stream": false.
type chatBody struct {
	Message struct{ ID, Role, Content string } `json:"message"`
	Usage   struct{ CompletionTokens int }     `json:"usage"`
}

func decodeChat(t *testing.T, resp *http.Response) chatBody {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %+v", resp.StatusCode, errorBody(t, resp))
	}
	var body chatBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body
}

// readStream reads a whole SSE reply: the concatenated tokens and the done
// event's messageId.
func readStream(t *testing.T, resp *http.Response) (text, messageID string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var b strings.Builder
	for ev, err := range sse.Read(resp.Body, nil) {
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "token":
			var tok struct{ Text string }
			if err := json.Unmarshal([]byte(ev.Data), &tok); err != nil {
				t.Fatal(err)
			}
			b.WriteString(tok.Text)
		case "done":
			var done struct{ MessageID string }
			if err := json.Unmarshal([]byte(ev.Data), &done); err != nil {
				t.Fatal(err)
			}
			return b.String(), done.MessageID
		default:
			t.Fatalf("unexpected event %q: %s", ev.Type, ev.Data)
		}
	}
	t.Fatal("the stream ended without a done event")
	return "", ""
}

// TestChatSentAgainWithItsIdempotencyKeyStoresOnce: a client that retries
// with the same Idempotency-Key (it never saw the first answer) gets the
// same reply, streamed or whole, and the session holds the exchange once.
func TestChatSentAgainWithItsIdempotencyKeyStoresOnce(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	sid := uuid.NewString()
	first := decodeChat(t, a.chatKeyed(acmeKey, sid, "hello there", false, "req-01J9Z"))
	again := decodeChat(t, a.chatKeyed(acmeKey, sid, "hello there", false, "req-01J9Z"))
	if again.Message != first.Message || again.Usage.CompletionTokens != first.Usage.CompletionTokens {
		t.Fatalf("retry answered %+v, the first request %+v", again, first)
	}
	if text, id := readStream(t, a.chatKeyed(acmeKey, sid, "hello there", true, "req-01J9Z")); text != first.Message.Content || id != first.Message.ID {
		t.Fatalf("streamed retry: %q ending in %s; the reply is %q, %s", text, id, first.Message.Content, first.Message.ID)
	}
	h := a.history(acmeKey, sid, "")
	if len(h.Messages) != 2 || h.Messages[0].ID != first.Message.ID || h.Messages[1].Content != "hello there" {
		t.Fatalf("history after three tries of one request: %+v", h.Messages)
	}

	// Another key is another request; so is the same key in another tenant's session.
	if other := decodeChat(t, a.chatKeyed(acmeKey, sid, "hello there", false, "req-01J9Y")); other.Message.ID == first.Message.ID {
		t.Fatalf("a second key replayed the first reply %s", other.Message.ID)
	}
	if h := a.history(acmeKey, sid, ""); len(h.Messages) != 4 {
		t.Fatalf("history after two keys holds %d messages, want 4", len(h.Messages))
	}
	decodeChat(t, a.chatKeyed(globexKey, sid, "hello there", false, "req-01J9Z"))
	if h := a.history(globexKey, sid, ""); len(h.Messages) != 2 {
		t.Fatalf("globex's session holds %d messages, want 2", len(h.Messages))
	}
}

func TestClientDisconnectStillStoresTheReply(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	a.gate.next = make(chan struct{})
	sid := uuid.NewString()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", a.url+"/chat", strings.NewReader(fmt.Sprintf(`{"sessionId": %q, "message": "bye"}`, sid)))
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	a.gate.next <- struct{}{}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if !strings.HasPrefix(line, "id: 0") {
		t.Fatalf("first line %q", line)
	}
	cancel() // the client goes away after one token
	resp.Body.Close()
	close(a.gate.next) // let every reply run to its end
	testkit.Eventually(t, 10*time.Second, func() error {
		h := a.history(acmeKey, sid, "")
		if len(h.Messages) != 2 || h.Messages[0].Role != "assistant" {
			return fmt.Errorf("history holds %d messages", len(h.Messages))
		}
		return nil
	})
}

func TestIdleStreamSendsHeartbeats(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *edge.Config) { c.Heartbeat = 20 * time.Millisecond })
	a.gate.next = make(chan struct{})
	resp := a.chat(acmeKey, uuid.NewString(), "wait", true)
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	if err != nil || line != ": ping\n" {
		t.Fatalf("first line of an idle stream %q (%v), want a ping comment", line, err)
	}
	close(a.gate.next)
}

func TestHistoryPagesAndDeleteOverHTTP(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	sid := uuid.NewString()
	for i := range 3 {
		if resp := a.chat(acmeKey, sid, fmt.Sprintf("m%d", i), false); resp.StatusCode != 200 {
			t.Fatalf("chat %d: %d", i, resp.StatusCode)
		}
	}
	var ids []string
	query := "?limit=4"
	for {
		h := a.history(acmeKey, sid, query)
		for _, m := range h.Messages {
			ids = append(ids, m.ID)
		}
		if h.NextCursor == nil {
			break
		}
		query = "?limit=4&before=" + *h.NextCursor
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("message %s returned twice", id)
		}
		seen[id] = true
	}
	if len(ids) != 6 {
		t.Fatalf("walked %d messages, want 6", len(ids))
	}
	for _, q := range []string{"?limit=0", "?limit=101", "?limit=x", "?before=-1", "?before=abc"} {
		resp := a.do("GET", "/chat/"+sid+"/history"+q, acmeKey, "", nil)
		if resp.StatusCode != 400 || errorBody(t, resp).Error.Code != edge.CodeValidation {
			t.Errorf("%s: %d", q, resp.StatusCode)
		}
	}
	if resp := a.do("GET", "/chat/not-a-uuid/history", acmeKey, "", nil); resp.StatusCode != 400 {
		t.Errorf("bad session id: %d", resp.StatusCode)
	}

	// globex's session of the same id is another session.
	if h := a.history(globexKey, sid, ""); len(h.Messages) != 0 {
		t.Fatalf("globex sees %d of acme's messages", len(h.Messages))
	}
	if resp := a.do("DELETE", "/chat/"+sid, globexKey, "", nil); resp.StatusCode != 204 {
		t.Fatalf("globex delete: %d", resp.StatusCode)
	}
	if h := a.history(acmeKey, sid, ""); len(h.Messages) != 6 {
		t.Fatalf("globex's delete touched acme: %d left", len(h.Messages))
	}
	if resp := a.do("DELETE", "/chat/"+sid, acmeKey, "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if h := a.history(acmeKey, sid, ""); len(h.Messages) != 0 {
		t.Fatalf("%d messages after delete", len(h.Messages))
	}
}

func TestMetricsAreServedInPrometheusFormat(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	_, _ = io.ReadAll(a.chat(acmeKey, uuid.NewString(), "count me", true).Body) // the whole stream
	resp := a.do("GET", "/metrics", "", "", nil)
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`parley_http_requests_total{method="POST",route="/chat",status="200"} 1`,
		`parley_chat_time_to_first_token_seconds_count 1`,
		`parley_sse_streams_open 0`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// failingModel writes two tokens and then fails.
type failingModel struct{}

func (failingModel) Stream(_ context.Context, _ model.Request, emit func(string) error) (model.Usage, error) {
	_ = emit("half")
	_ = emit(" a")
	return model.Usage{}, fmt.Errorf("upstream model crashed")
}

func TestModelFailureMidStreamEndsWithAnErrorEvent(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	a.gate.fail = true
	resp := a.chat(acmeKey, uuid.NewString(), "hello", true)
	var types []string
	var last sse.Event
	for ev, err := range sse.Read(resp.Body, nil) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Type)
		last = ev
	}
	if strings.Join(types, ",") != "token,token,error" {
		t.Fatalf("events %v", types)
	}
	var body edge.ErrorBody
	if err := json.Unmarshal([]byte(last.Data), &body); err != nil || body.Error.Code != edge.CodeUpstreamFailed || body.TraceID != resp.Header.Get("X-Trace-Id") {
		t.Fatalf("error event %q (%v)", last.Data, err)
	}
}

// TestReplyEndsWhenTheSessionsNodeFails: a reply whose session's node is
// declared failed mid-reply ends then (an error event, or 503 with
// Retry-After), instead of after the stall timeout; the user message stays
// stored. (cluster's TestCallsToAFailedNodeEndWhenItIsDeclaredDead covers
// the failure detection behind HostLost.)
func TestReplyEndsWhenTheSessionsNodeFails(t *testing.T) {
	t.Parallel()
	a := newAPI(t, func(c *edge.Config) { c.StallTimeout = time.Hour })
	a.gate.next = make(chan struct{})
	a.grains.lost = make(chan struct{})
	sid := uuid.NewString()
	streamed := a.chat(acmeKey, sid, "one", true)
	a.gate.next <- struct{}{}
	// The second chat runs on a goroutine of its own, which must not
	// fail the test: it hands its answer, or its error, back.
	type answer struct {
		resp *http.Response
		err  error
	}
	whole := make(chan answer, 1)
	other := uuid.NewString()
	go func() {
		req, err := http.NewRequest("POST", a.url+"/chat", strings.NewReader(fmt.Sprintf(`{"sessionId": %q, "message": "two", "stream": false}`, other)))
		if err != nil {
			whole <- answer{err: err}
			return
		}
		req.Header.Set("Authorization", "Bearer "+acmeKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		whole <- answer{resp, err}
	}()
	testkit.Eventually(t, 10*time.Second, func() error {
		if h := a.history(acmeKey, other, ""); len(h.Messages) != 1 {
			return fmt.Errorf("second chat not started")
		}
		return nil
	})
	close(a.grains.lost)

	var types []string
	var last sse.Event
	for ev, err := range sse.Read(streamed.Body, nil) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Type)
		last = ev
	}
	if strings.Join(types, ",") != "token,error" {
		t.Fatalf("events %v, want a token then an error", types)
	}
	var body edge.ErrorBody
	if err := json.Unmarshal([]byte(last.Data), &body); err != nil || body.Error.Code != edge.CodeUnavailable {
		t.Fatalf("error event %q (%v)", last.Data, err)
	}
	ans := <-whole
	if ans.err != nil {
		t.Fatalf("stream false: %v", ans.err)
	}
	resp := ans.resp
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || errorBody(t, resp).Error.Code != edge.CodeUnavailable {
		t.Fatalf("stream false: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(a.gate.next)
	if h := a.history(acmeKey, sid, ""); len(h.Messages) == 0 || h.Messages[len(h.Messages)-1].Content != "one" {
		t.Fatalf("user message not stored: %+v", h.Messages)
	}
}
