package edge_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/http/edge"
)

// aiSDKVersion is the AI SDK release the UI chat tests check against.
const aiSDKVersion = "6.0.326"

// aiSDKClient runs testdata/aisdk-client.mjs, a client made of the AI
// SDK's own transport and schema, in a directory where npm installed the
// SDK. Without npm the tests skip, unless CI is set.
type aiSDKClient struct {
	t   *testing.T
	dir string
}

func newAISDKClient(t *testing.T) *aiSDKClient {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("npm is not installed (set CI to make this a failure)")
		}
		t.Fatal("npm is needed for the AI SDK tests:", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private": true, "type": "module"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	install := exec.Command(npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "ai@"+aiSDKVersion, "zod@4")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "aisdk-client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.mjs"), script, 0o600); err != nil {
		t.Fatal(err)
	}
	return &aiSDKClient{t: t, dir: dir}
}

// aiSDKResult is what the client prints.
type aiSDKResult struct {
	Chunks  []map[string]any `json:"chunks"`
	Message *struct {
		ID    string `json:"id"`
		Role  string `json:"role"`
		Parts []struct {
			Type, Text, State string
		} `json:"parts"`
		Metadata map[string]any `json:"metadata"`
	} `json:"message"`
	Idle bool `json:"idle"` // the resume was answered 204
}

// run runs the client and fails the test when it fails (a chunk the
// SDK's schema refuses, an HTTP error).
func (c *aiSDKClient) run(args ...string) aiSDKResult {
	c.t.Helper()
	cmd := exec.Command("node", append([]string{"client.mjs"}, args...)...)
	cmd.Dir = c.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("AI SDK client %v: %v\n%s", args, err, stderr.String())
	}
	var res aiSDKResult
	if err := json.Unmarshal(out, &res); err != nil {
		c.t.Fatalf("AI SDK client output %q: %v", out, err)
	}
	return res
}

// writeFile writes b to a new file and returns its path.
func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func chunkTypes(chunks []map[string]any) string {
	var types []string
	for _, c := range chunks {
		types = append(types, c["type"].(string))
	}
	return strings.Join(types, ",")
}

func TestUIChatSpeaksTheAISDKsOwnProtocol(t *testing.T) {
	t.Parallel()
	client := newAISDKClient(t)
	a := newAPI(t, nil)

	t.Run("a reply streams as chunks the SDK accepts and assembles", func(t *testing.T) {
		chatID := "nanoid-Chat_01" // not a UUID: names a session by UUIDv5
		res := client.run(a.url, acmeKey, chatID, "message", "hello sdk")
		want := model.MockReply(model.Request{Message: "hello sdk"})
		tokens := len(model.Tokens(want))
		if got := chunkTypes(res.Chunks); got != "start,text-start"+strings.Repeat(",text-delta", tokens)+",text-end,finish" {
			t.Fatalf("chunks %s", got)
		}
		m := res.Message
		if m == nil || m.Role != "assistant" || m.ID != res.Chunks[0]["messageId"] || len(m.Parts) != 1 || m.Parts[0].Text != want || m.Parts[0].State != "done" {
			t.Fatalf("message %+v", m)
		}
		usage, _ := m.Metadata["usage"].(map[string]any)
		if m.Metadata["messageId"] == "" || m.Metadata["traceId"] == "" || usage["completionTokens"] != float64(tokens) {
			t.Fatalf("metadata %v", m.Metadata)
		}
		// The session is the chat's: its history holds the turn.
		sid := uuid.NewSHA1(uuid.MustParse("8c3b5a2e-4f7d-5e1a-9b6c-0d2e4f6a8b1c"), []byte("acme:"+chatID)).String()
		h := a.history(acmeKey, sid, "")
		if len(h.Messages) != 2 || h.Messages[1].Content != "hello sdk" || h.Messages[0].Content != want || h.Messages[0].ID != m.Metadata["messageId"] {
			t.Fatalf("history %+v", h.Messages)
		}
	})

	t.Run("regenerate-message replaces the reply without storing the question twice", func(t *testing.T) {
		chatID := uuid.NewString()
		first := client.run(a.url, acmeKey, chatID, "message", "again please")
		again := client.run(a.url, acmeKey, chatID, "message", "again please", "regenerate-message", first.Message.ID)
		if again.Message == nil || again.Message.Parts[0].Text != first.Message.Parts[0].Text || again.Message.ID != first.Message.ID {
			t.Fatalf("regenerated %+v, first %+v", again.Message, first.Message)
		}
		h := a.history(acmeKey, chatID, "")
		if len(h.Messages) != 3 || h.Messages[2].Role != "user" || h.Messages[1].Role != "assistant" || h.Messages[0].Role != "assistant" ||
			h.Messages[0].ID != again.Message.Metadata["messageId"] {
			t.Fatalf("history %+v", h.Messages)
		}
	})

	t.Run("a resumed stream replays the reply in progress from its start", func(t *testing.T) {
		b := newAPI(t, nil)
		b.gate.next = make(chan struct{})
		chatID := "resumable-chat"
		body := `{"id":"` + chatID + `","messages":[{"id":"u","role":"user","parts":[{"type":"text","text":"resume me"}]}],"trigger":"submit-message"}`
		post := b.do("POST", "/v1/ui/chat", acmeKey, "application/json", strings.NewReader(body))
		defer post.Body.Close()
		postBody := bufio.NewReader(post.Body)
		// Two tokens are written and read before anyone resumes.
		b.gate.next <- struct{}{}
		b.gate.next <- struct{}{}
		var seen bytes.Buffer
		for deltas := 0; deltas < 2; {
			line, err := postBody.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			seen.WriteString(line)
			if strings.Contains(line, `"type":"text-delta"`) {
				deltas++
			}
		}
		// Two tabs resume at once; the responses start once each follows.
		var tabs []*http.Response
		for range 2 {
			resp := b.do("GET", "/v1/ui/chat/"+chatID+"/stream", acmeKey, "", nil)
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("x-vercel-ai-ui-message-stream") != "v1" {
				t.Fatalf("resume: %d", resp.StatusCode)
			}
			tabs = append(tabs, resp)
		}
		close(b.gate.next)
		rest, err := io.ReadAll(postBody)
		if err != nil {
			t.Fatal(err)
		}
		want := model.MockReply(model.Request{Message: "resume me"})
		started := client.run("", acmeKey, chatID, "replay", writeFile(t, append(seen.Bytes(), rest...)))
		for i, tab := range tabs {
			captured, err := io.ReadAll(tab.Body)
			if err != nil {
				t.Fatal(err)
			}
			resumed := client.run("", acmeKey, chatID, "replay", writeFile(t, captured))
			if resumed.Message == nil || resumed.Message.Parts[0].Text != want || resumed.Message.ID != started.Message.ID ||
				resumed.Message.Metadata["messageId"] != started.Message.Metadata["messageId"] {
				t.Fatalf("tab %d resumed %+v, started %+v", i, resumed.Message, started.Message)
			}
		}
		if started.Message.Parts[0].Text != want {
			t.Fatalf("started %+v", started.Message)
		}
		// Once the reply is stored nothing is in progress.
		if res := client.run(b.url, acmeKey, chatID, "resume"); !res.Idle {
			t.Fatalf("resume after the reply %+v", res)
		}
	})

	t.Run("resuming a chat with no reply in progress is 204", func(t *testing.T) {
		if res := client.run(a.url, acmeKey, uuid.NewString(), "resume"); !res.Idle {
			t.Fatalf("resume %+v", res)
		}
	})

	t.Run("a failure mid-reply is an error chunk the SDK accepts", func(t *testing.T) {
		b := newAPI(t, nil)
		b.gate.fail = true
		// The race detector orders writes before reads through this
		// process's sockets only: one request of its own publishes the
		// write to the grain that the node client's request reaches.
		b.do("GET", "/healthz", "", "", nil).Body.Close()
		res := client.run(b.url, acmeKey, uuid.NewString(), "chunks", "fail please")
		if got := chunkTypes(res.Chunks); got != "start,text-start,text-delta,text-delta,text-end,error" {
			t.Fatalf("chunks %s", got)
		}
		if text, _ := res.Chunks[len(res.Chunks)-1]["errorText"].(string); !strings.Contains(text, edge.CodeUpstreamFailed) {
			t.Fatalf("error chunk %v", res.Chunks[len(res.Chunks)-1])
		}
	})
}

func TestUIChatStreamHeadersAndDone(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	resp := a.do("POST", "/v1/ui/chat", acmeKey, "application/json", strings.NewReader(
		`{"id":"c1","messages":[{"id":"u","role":"user","parts":[{"type":"text","text":"hi"}]}],"trigger":"submit-message","extra":1}`))
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("x-vercel-ai-ui-message-stream") != "v1" || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(body.String(), "data: [DONE]\n\n") {
		t.Fatalf("stream does not end with [DONE]: %q", body.String())
	}
}

func TestUIChatBadInputIs400AndStoresNothing(t *testing.T) {
	t.Parallel()
	a := newAPI(t, nil)
	for name, body := range map[string]string{
		"no user message":    `{"id":"c1","messages":[{"id":"s","role":"system","parts":[{"type":"text","text":"only"}]}]}`,
		"last is assistant":  `{"id":"c1","messages":[{"id":"u","role":"user","parts":[{"type":"text","text":"q"}]},{"id":"a","role":"assistant","parts":[{"type":"text","text":"a"}]}]}`,
		"user without text":  `{"id":"c1","messages":[{"id":"u","role":"user","parts":[{"type":"file","url":"x"}]}]}`,
		"no messages":        `{"id":"c1","messages":[]}`,
		"no id":              `{"messages":[{"id":"u","role":"user","parts":[{"type":"text","text":"q"}]}]}`,
		"unknown trigger":    `{"id":"c1","trigger":"resubmit","messages":[{"id":"u","role":"user","parts":[{"type":"text","text":"q"}]}]}`,
		"unknown role":       `{"id":"c1","messages":[{"id":"u","role":"tool","parts":[{"type":"text","text":"q"}]}]}`,
		"messages not array": `{"id":"c1","messages":{}}`,
	} {
		resp := a.do("POST", "/v1/ui/chat", acmeKey, "application/json", strings.NewReader(body))
		e := errorBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || e.TraceID == "" || e.Error.Code == "" {
			t.Fatalf("%s: %d %+v", name, resp.StatusCode, e)
		}
	}
	if calls := a.grains.calls.Load(); calls != 0 {
		t.Fatalf("bad requests made %d session calls", calls)
	}
}
