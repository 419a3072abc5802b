package openaitest_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/model/openaitest"
)

// post sends a streamed chat whose last user message is msg and returns
// the content deltas it read, in order.
func post(t *testing.T, s *openaitest.Server, msg string) []string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": "fake", "stream": true,
		"messages": []any{
			map[string]any{"role": "system", "content": "be brief"},
			map[string]any{"role": "user", "content": msg},
		},
	})
	resp, err := http.Post(s.BaseURL()+"/chat/completions", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var deltas []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content *string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		if len(c.Choices) == 1 && c.Choices[0].Delta.Content != nil && *c.Choices[0].Delta.Content != "" {
			deltas = append(deltas, *c.Choices[0].Delta.Content)
		}
	}
	return deltas
}

func TestHooksReplyAfterTheStepsAndSeeEveryDeltaWritten(t *testing.T) {
	type write struct {
		msg   string
		index int
		at    time.Time
	}
	var (
		mu     sync.Mutex
		writes []write
	)
	s := openaitest.Start(openaitest.Hooks{
		Reply: func(req openaitest.ChatRequest) []string { return strings.SplitAfter(req.LastUser(), " ") },
		Written: func(req openaitest.ChatRequest, index int, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			writes = append(writes, write{req.LastUser(), index, at})
		},
		Forget: true,
	}, openaitest.Step{Tokens: []string{"scripted"}})
	defer s.Close()

	if got := post(t, s, "first call"); strings.Join(got, "|") != "scripted" {
		t.Errorf("first request got %q, want the step's tokens", got)
	}
	before := time.Now()
	if got := post(t, s, "echo these words"); strings.Join(got, "|") != "echo |these |words" {
		t.Errorf("second request got %q, want the Reply hook's tokens", got)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("Forget kept %d requests", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(writes) != 4 {
		t.Fatalf("Written called %d times, want 4 (one per delta): %+v", len(writes), writes)
	}
	for i, w := range writes[1:] {
		if w.msg != "echo these words" || w.index != i || w.at.Before(before) {
			t.Errorf("write %d = %+v, want index %d of the second request, after it was sent", i+1, w, i)
		}
	}
}
