package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/testkit"
)

// sseEvent is one event of a POST /chat stream; id is the event's own
// `id:` line ("" without one).
type sseEvent struct{ id, name, data string }

// openChat starts a streamed chat through p and returns its events as they
// arrive; the channel closes when the stream ends.
func openChat(t *testing.T, p *process, sessionID, message string) <-chan sseEvent {
	t.Helper()
	_, events := openStream(t, chatRequest(context.Background(), p, sessionID, message))
	return events
}

// chatRequest is a streamed POST /chat of message to the session through
// p, sent with ctx: cancelling it drops the connection.
func chatRequest(ctx context.Context, p *process, sessionID, message string) *http.Request {
	body := fmt.Sprintf(`{"sessionId": %q, "message": %q}`, sessionID, message)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL("/chat"), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// openStream sends req (with durableKey unless it has an Authorization),
// fails the test unless the answer is a 200 event stream, and returns the
// answer's header and its events as they arrive; the channel closes when
// the stream ends or the request's context is cancelled.
func openStream(t *testing.T, req *http.Request) (http.Header, <-chan sseEvent) {
	t.Helper()
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+durableKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("%s %s: %d %s %s", req.Method, req.URL.Path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	events := make(chan sseEvent, 1024)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		var ev sseEvent
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			switch line := sc.Text(); {
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.name != "":
				events <- ev
				ev = sseEvent{}
			}
		}
	}()
	return resp.Header, events
}

// TestSIGTERMLetsTheReplyInProgressFinish: a node told to stop in the
// middle of a slow reply says it is not ready, refuses new chats with 503
// and Retry-After, finishes the reply (the client sees every token and
// done), stores it, and only then exits 0; the restarted node serves the
// whole exchange from its disk.
func TestSIGTERMLetsTheReplyInProgressFinish(t *testing.T) {
	t.Parallel()
	node := replicatedClusterOf(t, 1, "--mock-token-delay", "100ms")[0]
	sid := uuid.NewString()
	events := openChat(t, node, sid, "tell me a long story while the node shuts down")
	var reply strings.Builder
	first := <-events
	if first.name != "token" {
		t.Fatalf("first event %q %s, want a token", first.name, first.data)
	}
	reply.WriteString(tokenText(t, first.data))
	if err := node.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// While the reply runs on: not ready, and a new chat is refused.
	waitNotReady(t, node)
	body := fmt.Sprintf(`{"sessionId": %q, "message": "a new chat", "stream": false}`, uuid.NewString())
	req, _ := http.NewRequest(http.MethodPost, node.URL("/chat"), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+durableKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a new chat while draining: %v (the node must still answer)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a new chat while draining: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	done := readReply(t, events, &reply)
	if done.name != "done" {
		t.Fatalf("the stream ended with %q %s, want done", done.name, done.data)
	}
	if code := waitExit(t, node, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after the drain", code)
	}

	node = restart(t, node, "")
	testkit.Eventually(t, 30*time.Second, func() error {
		msgs, err := fullHistory(node, sid)
		if err != nil {
			return err
		}
		if len(msgs) != 2 || msgs[1].Role != "assistant" || msgs[1].Content != reply.String() {
			return fmt.Errorf("history after the restart: %+v; want the user message and the whole reply %q", msgs, reply.String())
		}
		return nil
	})
}

// tokenText is the text of a token event's data.
func tokenText(t *testing.T, data string) string {
	t.Helper()
	var tok struct{ Text string }
	if err := json.Unmarshal([]byte(data), &tok); err != nil {
		t.Fatalf("token data %q: %v", data, err)
	}
	return tok.Text
}

// TestADrainThatRunsOutStoresTheReplyAsFarAsItGot: when --drain-timeout
// runs out, or a second SIGTERM comes, the reply still running is cut
// short: its stream ends with a retryable error event, the node exits 0,
// and the history holds the reply as far as it got, marked
// finishReason "error".
func TestADrainThatRunsOutStoresTheReplyAsFarAsItGot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		flags         []string
		secondSigterm bool
	}{
		{"drain timeout", []string{"--drain-timeout", "1s"}, false},
		{"second SIGTERM", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node := replicatedClusterOf(t, 1, append([]string{"--mock-token-delay", "1s"}, tc.flags...)...)[0]
			sid := uuid.NewString()
			events := openChat(t, node, sid, "a reply far slower than the drain")
			var got strings.Builder
			first := <-events
			if first.name != "token" {
				t.Fatalf("first event %q %s, want a token", first.name, first.data)
			}
			got.WriteString(tokenText(t, first.data))
			if err := node.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if tc.secondSigterm {
				waitNotReady(t, node)
				if err := node.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			end := readReply(t, events, &got)
			var body struct{ Error struct{ Code string } }
			if end.name != "error" || json.Unmarshal([]byte(end.data), &body) != nil || body.Error.Code != "unavailable" {
				t.Fatalf("the stream ended with %q %s, want an error event with code unavailable", end.name, end.data)
			}
			if code := waitExit(t, node, 60*time.Second); code != 0 {
				t.Fatalf("exit code %d after the drain", code)
			}
			node = restart(t, node, "")
			testkit.Eventually(t, 30*time.Second, func() error {
				msgs, err := fullHistory(node, sid)
				if err != nil {
					return err
				}
				if len(msgs) != 2 || msgs[1].Content != got.String() || msgs[1].FinishReason != "error" {
					return fmt.Errorf("history after the restart: %+v; want the reply as far as it got, %q, with finishReason error", msgs, got.String())
				}
				return nil
			})
		})
	}
}

// waitNotReady waits until node's /readyz answers 503, as it does from
// the moment the node is told to stop.
func waitNotReady(t *testing.T, node *process) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get(node.URL("/readyz"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz after SIGTERM: %d, want 503", resp.StatusCode)
		}
		return nil
	})
}

// readReply reads events to the stream's end, adding every token's text
// to reply, and returns the event that ended it (done or error; zero when
// the stream just closed).
func readReply(t *testing.T, events <-chan sseEvent, reply *strings.Builder) (end sseEvent) {
	t.Helper()
	for ev := range events {
		switch ev.name {
		case "token":
			reply.WriteString(tokenText(t, ev.data))
		case "done", "error":
			end = ev
		}
	}
	return end
}
