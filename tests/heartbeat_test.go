package tests

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestSSEHeartbeatFlagReachesTheStream: with --sse-heartbeat 200ms and a
// mock that waits 700 ms per token, a stream shows ": ping" comments while
// it waits for its first token (without the flag, the first ping would
// come after 15 s).
func TestSSEHeartbeatFlagReachesTheStream(t *testing.T) {
	t.Parallel()
	node := replicatedClusterOf(t, 1, "--sse-heartbeat", "200ms", "--mock-token-delay", "700ms")[0]
	body := fmt.Sprintf(`{"sessionId": %q, "message": "hello", "stream": true}`, uuid.NewString())
	req, _ := http.NewRequest("POST", node.URL("/chat"), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+durableKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: clientTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /chat: %d", resp.StatusCode)
	}
	pings := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		switch sc.Text() {
		case ": ping":
			pings++
		case "event: token":
			if pings == 0 {
				t.Fatal("the first token came before any ping")
			}
			return
		case "event: done", "event: error":
			t.Fatalf("the stream ended (%s) before any token", sc.Text())
		}
	}
	t.Fatalf("the stream ended without a token (%d pings): %v", pings, sc.Err())
}
