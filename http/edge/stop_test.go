package edge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/model/openaitest"
	"github.com/parley-chat/parley/actors/testkit"
)

// Stop ends the reply in progress: its stream ends with done saying
// "stopped", the partial reply is stored so, the session takes the next
// chat, and a stop with nothing running is a 204 too.
func TestStopEndsTheReplyAndStoresWhatWasWritten(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	sid := uuid.NewString()
	if resp := a.do("POST", "/chat/"+sid+"/stop", acmeKey, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("stop with nothing running: %d", resp.StatusCode)
	}
	a.gate.next = make(chan struct{})
	resp := a.chat(acmeKey, sid, "tell me a long story", true)
	a.gate.next <- struct{}{}
	a.gate.next <- struct{}{}
	a.gate.next <- struct{}{} // the third token may or may not be emitted before the stop lands
	if stop := a.do("POST", "/chat/"+sid+"/stop", acmeKey, "", nil); stop.StatusCode != http.StatusNoContent {
		t.Fatalf("stop: %d", stop.StatusCode)
	}
	tokens, last := events(t, resp.Body)
	var done struct{ MessageID, FinishReason string }
	if err := json.Unmarshal([]byte(last.Data), &done); err != nil || last.Type != "done" || done.FinishReason != "stopped" {
		t.Fatalf("last event %s %s", last.Type, last.Data)
	}
	if len(tokens) < 2 || len(tokens) > 3 {
		t.Fatalf("%d tokens before the stop", len(tokens))
	}
	msgs := history(t, a, acmeKey, sid)
	if len(msgs) != 2 || msgs[0].FinishReason != "stopped" || msgs[0].Content != tokens[0]+tokens[1]+tail(tokens) {
		t.Fatalf("tokens %q, history %+v", tokens, msgs)
	}
	close(a.gate.next)
	if next := a.chat(acmeKey, sid, "again", false); next.StatusCode != http.StatusOK {
		t.Fatalf("the next chat: %d", next.StatusCode)
	}
	if resp := a.do("POST", "/chat/not-a-uuid/stop", acmeKey, "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad session id: %d", resp.StatusCode)
	}
}

func tail(tokens []string) string {
	if len(tokens) == 3 {
		return tokens[2]
	}
	return ""
}

// Stopping a reply from an upstream closes the upstream's connection.
func TestStopCancelsTheUpstreamCall(t *testing.T) {
	t.Parallel()
	up := openaitest.New(t, openaitest.Step{HangAfter: 2})
	a := newUpstreamAPI(t, up, "")
	sid := uuid.NewString()
	resp := a.chat(acmeKey, sid, "hi", true)
	var reqs []openaitest.Request
	testkit.Eventually(t, 10*time.Second, func() error {
		if reqs = up.Requests(); len(reqs) != 1 {
			return fmt.Errorf("%d upstream requests", len(reqs))
		}
		return nil
	})
	// Stop only once both deltas reached the session: read them first.
	buf := make([]byte, 1)
	seen := ""
	for !containsTwoTokens(seen) {
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatal(err)
		}
		seen += string(buf)
	}
	if stop := a.do("POST", "/chat/"+sid+"/stop", acmeKey, "", nil); stop.StatusCode != http.StatusNoContent {
		t.Fatalf("stop: %d", stop.StatusCode)
	}
	select {
	case <-reqs[0].Cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	_, last := events(t, resp.Body)
	if last.Type != "done" {
		t.Fatalf("last event %s %s", last.Type, last.Data)
	}
	msgs := history(t, a, acmeKey, sid)
	if len(msgs) != 2 || msgs[0].FinishReason != "stopped" || msgs[0].Content != "Hello from" {
		t.Fatalf("history %+v", msgs)
	}
}

func containsTwoTokens(s string) bool {
	n := 0
	for i := 0; i+len("event: token") <= len(s); i++ {
		if s[i:i+len("event: token")] == "event: token" {
			n++
		}
	}
	return n == 2 && len(s) > 0 && s[len(s)-2:] == "\n\n"
}
