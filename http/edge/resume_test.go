package edge_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	sse "github.com/tmaxmax/go-sse"
)

// GET /chat/{id}/stream resumes the reply in progress after the token the
// client names, with the ids of the stream that started it, and refuses a
// resume point that is malformed or past what the reply has written.
func TestResumeSendsTheReplyPastTheLastEventID(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	sid := uuid.NewString()
	resume := func(header http.Header, query string) *http.Response {
		return a.doWith("GET", "/chat/"+sid+"/stream"+query, acmeKey, "", header, nil)
	}
	lastID := func(v string) http.Header { return http.Header{"Last-Event-Id": {v}} }
	if resp := resume(nil, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("nothing in progress: %d", resp.StatusCode)
	}

	a.gate.next = make(chan struct{})
	started := a.chat(acmeKey, sid, "tell me a long story", true)
	defer started.Body.Close()
	// The mock takes a gate per token: once it has taken the third, tokens
	// 0 and 1 are written and the fourth is held, so the reply has written
	// 2 or 3 tokens while the cases below run.
	for range 3 {
		a.gate.next <- struct{}{}
	}
	for _, c := range []struct {
		name   string
		header http.Header
		query  string
		status int
	}{
		{"not a number", lastID("two"), "", http.StatusBadRequest},
		{"negative", lastID("-1"), "", http.StatusBadRequest},
		{"repeated", http.Header{"Last-Event-Id": {"1", "1"}}, "", http.StatusBadRequest},
		{"bad after", nil, "?after=1.5", http.StatusBadRequest},
		{"past the reply", lastID("3"), "", http.StatusRequestedRangeNotSatisfiable},
		{"after past the reply", nil, "?after=40", http.StatusRequestedRangeNotSatisfiable},
	} {
		resp := resume(c.header, c.query)
		var body struct{ Error struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || body.Error.Code == "" {
			t.Errorf("%s: %d %+v, want %d", c.name, resp.StatusCode, body, c.status)
		}
	}

	// The header wins over the query; two clients follow at once.
	fromHeader := resume(lastID("1"), "?after=0")
	fromQuery := resume(nil, "?after=0")
	close(a.gate.next)
	whole, _ := events(t, started.Body)
	for _, c := range []struct {
		resp  *http.Response
		first int
	}{{fromHeader, 2}, {fromQuery, 1}} {
		if c.resp.StatusCode != http.StatusOK || c.resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("resume: %d %s", c.resp.StatusCode, c.resp.Header.Get("Content-Type"))
		}
		var text strings.Builder
		next := c.first
		var last sse.Event
		for ev, err := range sse.Read(c.resp.Body, nil) {
			if err != nil {
				t.Fatal(err)
			}
			last = ev
			if ev.Type != "token" {
				continue
			}
			if ev.LastEventID != strconv.Itoa(next) {
				t.Fatalf("token %d has id %q", next, ev.LastEventID)
			}
			next++
			var tok struct{ Text string }
			_ = json.Unmarshal([]byte(ev.Data), &tok)
			text.WriteString(tok.Text)
		}
		c.resp.Body.Close()
		var done struct {
			MessageID, TraceID, FinishReason string
		}
		if err := json.Unmarshal([]byte(last.Data), &done); err != nil || last.Type != "done" || done.FinishReason != "stop" || done.TraceID == "" {
			t.Fatalf("last event %s %s", last.Type, last.Data)
		}
		msgs := history(t, a, acmeKey, sid)
		if done.MessageID != msgs[0].ID || next != len(whole) || text.String() != strings.Join(whole[c.first:], "") ||
			strings.Join(whole, "") != msgs[0].Content {
			t.Fatalf("resumed from %d: %q (ids up to %d), done %+v; the started stream had %q, stored %q", c.first, text.String(), next-1, done, whole, msgs[0].Content)
		}
	}
	// The reply's spend and time to first token are counted once, by the
	// stream that started it, however many follow it.
	metrics, _ := io.ReadAll(a.do("GET", "/metrics", "", "", nil).Body)
	var completion []string
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, `parley_model_tokens_total{kind="completion"`) && strings.Contains(line, `tenant="acme"`) {
			completion = append(completion, line)
		}
	}
	if len(completion) != 1 || !strings.HasSuffix(completion[0], " "+strconv.Itoa(len(whole))) ||
		!strings.Contains(string(metrics), "parley_chat_time_to_first_token_seconds_count 1\n") {
		t.Errorf("after one reply of %d tokens and two resumes: %q, and ttft count %v", len(whole), completion,
			strings.Contains(string(metrics), "parley_chat_time_to_first_token_seconds_count 1\n"))
	}
	if resp := resume(lastID("1"), ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after the reply: %d", resp.StatusCode)
	}
	if resp := resume(nil, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after the reply: %d", resp.StatusCode)
	}
}
