package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/model/openaitest"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/actors/testkit"
)

// relayKey is the key of tenant relay, whose model is a fake upstream.
const relayKey = "relay-key"

// doneData is the data of a done event.
type doneData struct {
	MessageID string
	Usage     struct{ PromptTokens, CompletionTokens, TotalTokens int }
	LatencyMs int64
	TTFTMs    int64
	TraceID   string
	Model     string
	// FinishReason is "stop", "length", "stopped" or "error".
	FinishReason string
}

// replyStream is what a client read of a stream of POST /chat or GET
// /chat/{id}/stream: its token texts and ids, in order, and its last
// event.
type replyStream struct {
	texts []string
	ids   []string
	last  sseEvent
}

func (r replyStream) text() string { return strings.Join(r.texts, "") }

// read reads events until the channel closes (the stream ended).
func read(t *testing.T, events <-chan sseEvent) replyStream {
	t.Helper()
	var r replyStream
	for ev := range events {
		if ev.name == "token" {
			r.texts = append(r.texts, tokenText(t, ev.data))
			r.ids = append(r.ids, ev.id)
		}
		r.last = ev
	}
	return r
}

// done is the stream's done event, failing the test when it ended
// otherwise.
func (r replyStream) done(t *testing.T) doneData {
	t.Helper()
	var d doneData
	if r.last.name != "done" {
		t.Fatalf("the stream ended with %q %s, want done", r.last.name, r.last.data)
	}
	if err := json.Unmarshal([]byte(r.last.data), &d); err != nil {
		t.Fatalf("done %s: %v", r.last.data, err)
	}
	return d
}

// idsFrom fails the test unless the stream's token ids are first, first+1…
func (r replyStream) idsFrom(t *testing.T, first int) {
	t.Helper()
	for i, id := range r.ids {
		if id != strconv.Itoa(first+i) {
			t.Fatalf("token %d of the stream has id %q, want %d (ids %v)", i, id, first+i, r.ids)
		}
	}
}

// longMessage makes the mock's reply to it take a while: a token per word,
// each after --mock-token-delay.
func longMessage(words int) string {
	return strings.Repeat("word ", words-1) + "end"
}

// storedReply waits until the session's history through p holds its user
// message and a reply, and returns the reply.
func storedReply(t *testing.T, p *process, key, sessionID string) storedMessage {
	t.Helper()
	var reply storedMessage
	testkit.Eventually(t, 30*time.Second, func() error {
		msgs, err := fullHistoryAs(p, key, sessionID)
		if err != nil {
			return err
		}
		if len(msgs) != 2 || msgs[0].Role != "user" || msgs[1].Role != "assistant" {
			return fmt.Errorf("history %+v, want the user message and a reply", msgs)
		}
		reply = msgs[1]
		return nil
	})
	return reply
}

// resumeStatus is the status of GET /chat/{id}/stream through p, for an
// answer that is not a stream.
func resumeStatus(t *testing.T, p *process, sessionID string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.URL("/chat/"+sessionID+"/stream"), nil)
	req.Header.Set("Authorization", "Bearer "+durableKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStreamsEndToEnd runs Parley's own stream (docs/streaming.md) through
// a three-node cluster of parley processes: tenant acme has the mock
// model, a token every 50 ms; tenant relay has an OpenAI-compatible
// upstream that breaks off mid-reply.
func TestStreamsEndToEnd(t *testing.T) {
	t.Parallel()
	up := openaitest.New(t, openaitest.Step{CutAfter: 3})
	relay := `{"id": "relay", "apiKeys": [{"id": "k", "hash": "` + tenants.HashKey(relayKey) + `"}],
		"model": {"provider": "openai", "baseURL": "` + up.BaseURL() + `", "name": "fake-upstream", "timeoutSeconds": 10}}`
	nodes := replicatedClusterWith(t, 3, durableTenants(relay), "--mock-token-delay", "50ms")

	t.Run("tokens arrive as they are written, then done with the reply's figures", func(t *testing.T) {
		sid, message := uuid.NewString(), longMessage(60)
		traceID := strings.ReplaceAll(uuid.NewString(), "-", "")
		req := chatRequest(context.Background(), nodes[0], sid, message)
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		header, events := openStream(t, req)
		if header.Get("X-Trace-Id") != traceID {
			t.Fatalf("X-Trace-Id %q, want the traceparent's %q", header.Get("X-Trace-Id"), traceID)
		}
		first := <-events
		if first.name != "token" || first.id != "0" {
			t.Fatalf("first event %+v, want token 0", first)
		}
		// A reply is stored when it ends: the first token came while the
		// rest was still being written.
		if msgs, err := fullHistory(nodes[1], sid); err != nil || len(msgs) != 1 {
			t.Fatalf("history at the first token: %+v %v; want only the user message", msgs, err)
		}
		rest := read(t, events)
		rest.idsFrom(t, 1)
		whole := tokenText(t, first.data) + rest.text()
		done := rest.done(t)
		stored := storedReply(t, nodes[2], durableKey, sid)
		tokens := 1 + len(rest.texts)
		switch {
		case whole != model.MockReply(model.Request{Message: message}) || stored.Content != whole:
			t.Fatalf("streamed %q, stored %q", whole, stored.Content)
		case done.MessageID != stored.ID || done.FinishReason != "stop" || stored.FinishReason != "stop" || done.Model == "":
			t.Fatalf("done %+v, stored %+v", done, stored)
		case done.Usage.CompletionTokens != tokens || done.Usage.PromptTokens < 1 ||
			done.Usage.TotalTokens != done.Usage.PromptTokens+done.Usage.CompletionTokens:
			t.Fatalf("usage %+v after %d tokens", done.Usage, tokens)
		case done.TTFTMs < 0 || done.LatencyMs < done.TTFTMs || done.LatencyMs == 0:
			t.Fatalf("latencyMs %d, ttftMs %d", done.LatencyMs, done.TTFTMs)
		case done.TraceID != traceID:
			t.Fatalf("done traceId %q, want %q", done.TraceID, traceID)
		}
	})

	t.Run("a model that fails mid-reply ends the stream with an error event", func(t *testing.T) {
		sid := uuid.NewString()
		req := chatRequest(context.Background(), nodes[1], sid, "hi")
		req.Header.Set("Authorization", "Bearer "+relayKey)
		header, events := openStream(t, req)
		got := read(t, events)
		var body struct {
			Error   struct{ Code string }
			TraceID string
		}
		if got.last.name != "error" || json.Unmarshal([]byte(got.last.data), &body) != nil ||
			body.Error.Code != "upstream_failed" || body.TraceID != header.Get("X-Trace-Id") {
			t.Fatalf("the stream ended with %q %s, want an upstream_failed error with trace %s", got.last.name, got.last.data, header.Get("X-Trace-Id"))
		}
		partial := strings.Join(openaitest.DefaultTokens[:3], "")
		if got.text() != partial {
			t.Fatalf("tokens %q before the error, want %q", got.text(), partial)
		}
		if stored := storedReply(t, nodes[2], relayKey, sid); stored.Content != partial || stored.FinishReason != "error" {
			t.Fatalf("stored %+v, want the partial reply %q marked error", stored, partial)
		}
	})

	t.Run("stream false answers the whole reply as one JSON body", func(t *testing.T) {
		sid, message := uuid.NewString(), "no stream please"
		body := fmt.Sprintf(`{"sessionId": %q, "message": %q, "stream": false}`, sid, message)
		req, _ := http.NewRequest(http.MethodPost, nodes[2].URL("/chat"), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+durableKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Message storedMessage
			Usage   struct{ PromptTokens, CompletionTokens, TotalTokens int }
			TraceID string
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		want := model.MockReply(model.Request{Message: message})
		stored := storedReply(t, nodes[0], durableKey, sid)
		if got.Message.Role != "assistant" || got.Message.Content != want || got.Message.ID != stored.ID ||
			got.Usage.CompletionTokens != len(model.Tokens(want)) || got.TraceID != resp.Header.Get("X-Trace-Id") {
			t.Fatalf("answer %+v, stored %+v", got, stored)
		}
	})

	t.Run("a client that does not read holds nothing back", func(t *testing.T) {
		sid, message := uuid.NewString(), "read me later"
		req := chatRequest(context.Background(), nodes[0], sid, message)
		req.Header.Set("Authorization", "Bearer "+durableKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// Nothing of the body is read until the reply is stored: the
		// session writes at the model's pace, not the reader's.
		want := model.MockReply(model.Request{Message: message})
		if stored := storedReply(t, nodes[1], durableKey, sid); stored.Content != want {
			t.Fatalf("stored %q, want %q", stored.Content, want)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "event: token\n"); n != len(model.Tokens(want)) || !strings.Contains(string(b), "event: done\n") {
			t.Fatalf("read late: %d tokens of %d, done %v", n, len(model.Tokens(want)), strings.Contains(string(b), "event: done\n"))
		}
	})

	t.Run("a dropped stream resumes on another node past its Last-Event-ID", func(t *testing.T) {
		sid, message := uuid.NewString(), longMessage(150)
		ctx, drop := context.WithCancel(context.Background())
		defer drop()
		_, events := openStream(t, chatRequest(ctx, nodes[0], sid, message))
		var had []string
		for i := range 3 {
			ev := <-events
			if ev.name != "token" || ev.id != strconv.Itoa(i) {
				t.Fatalf("event %d: %+v, want token %d", i, ev, i)
			}
			had = append(had, tokenText(t, ev.data))
		}
		drop()
		for range events { // until the reader sees the connection gone
		}

		resume, _ := http.NewRequest(http.MethodGet, nodes[1].URL("/chat/"+sid+"/stream"), nil)
		resume.Header.Set("Last-Event-ID", "2")
		_, rest := openStream(t, resume)
		// A second client, on the third node, follows the same reply from
		// its first token.
		again, _ := http.NewRequest(http.MethodGet, nodes[2].URL("/chat/"+sid+"/stream"), nil)
		_, whole := openStream(t, again)

		got, other := read(t, rest), read(t, whole)
		got.idsFrom(t, 3)
		other.idsFrom(t, 0)
		want := model.MockReply(model.Request{Message: message})
		stored := storedReply(t, nodes[2], durableKey, sid)
		if joined := strings.Join(had, "") + got.text(); joined != want || stored.Content != want || other.text() != want {
			t.Fatalf("joined %q, the other client %q, stored %q; want %q", joined, other.text(), stored.Content, want)
		}
		if d, o := got.done(t), other.done(t); d.MessageID != stored.ID || o.MessageID != stored.ID || d.FinishReason != "stop" {
			t.Fatalf("done %+v and %+v, stored %s", d, o, stored.ID)
		}
		if status := resumeStatus(t, nodes[0], sid); status != http.StatusNoContent {
			t.Fatalf("resume after the reply: %d, want 204", status)
		}
	})

	t.Run("stop ends the stream with done stopped and stores the partial reply", func(t *testing.T) {
		sid, message := uuid.NewString(), longMessage(150)
		_, events := openStream(t, chatRequest(context.Background(), nodes[0], sid, message))
		for range 2 {
			if ev := <-events; ev.name != "token" {
				t.Fatalf("event %+v, want a token", ev)
			}
		}
		stop, _ := http.NewRequest(http.MethodPost, nodes[2].URL("/chat/"+sid+"/stop"), nil)
		stop.Header.Set("Authorization", "Bearer "+durableKey)
		resp, err := http.DefaultClient.Do(stop)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("stop: %d", resp.StatusCode)
		}
		// The stream's tokens before the stop are what the two reads above
		// took, then those read here.
		rest := read(t, events)
		rest.idsFrom(t, 2)
		done := rest.done(t)
		stored := storedReply(t, nodes[1], durableKey, sid)
		want := model.Tokens(model.MockReply(model.Request{Message: message}))
		if done.FinishReason != "stopped" || stored.FinishReason != "stopped" || done.MessageID != stored.ID {
			t.Fatalf("done %+v, stored %+v", done, stored)
		}
		if n := 2 + len(rest.texts); n >= len(want) || stored.Content != strings.Join(want[:n], "") {
			t.Fatalf("stored %q after %d of %d tokens", stored.Content, n, len(want))
		}
		if status := resumeStatus(t, nodes[1], sid); status != http.StatusNoContent {
			t.Fatalf("resume after the stop: %d, want 204", status)
		}
	})
}
