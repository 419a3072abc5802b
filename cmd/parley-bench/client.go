package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/parley-chat/parley/actors/model"
)

// client speaks docs/http.md to the nodes, and checks every answer it
// gets: a reply that is incomplete or differs from what the mock model
// writes is an error, never a latency sample.
type client struct {
	http *http.Client
	key  string // the bench tenant's API key
}

// reply is one assistant reply as the client received it.
type reply struct {
	messageID string
	content   string
}

// streamStats is what a stream:true chat saw besides its latencies.
type streamStats struct {
	tokens   int // token events
	comments int // ": ping" heartbeat comments
}

// expectedReply is what the mock model answers to message.
func expectedReply(message string) string {
	return model.MockReply(model.Request{Message: message})
}

func (c *client) post(ctx context.Context, edge, path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, edge+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	return c.http.Do(req)
}

// chatStream POSTs /chat with stream:true and reads the whole SSE stream.
// It returns the time to the first token and to the done event. The reply
// is complete when tokens arrived with ids 0, 1, 2… in order, a done event
// with a messageId and a completionTokens equal to the token count ended
// it, and the tokens concatenate to the mock model's reply to message.
func (c *client) chatStream(ctx context.Context, edge, sessionID, message string) (ttft, total time.Duration, r reply, st streamStats, err error) {
	return c.chatStreamEach(ctx, edge, sessionID, message, nil)
}

// chatStreamEach is chatStream calling onToken, when set, with each token
// event's index and the time it was read.
func (c *client) chatStreamEach(ctx context.Context, edge, sessionID, message string, onToken func(index int, at time.Time)) (ttft, total time.Duration, r reply, st streamStats, err error) {
	return c.chatStreamWith(ctx, edge, sessionID, message, streamHooks{token: onToken})
}

// streamHooks are what chatStreamWith calls as a stream goes; either may
// be nil.
type streamHooks struct {
	// opened is called once the stream's 200 and headers arrived: the
	// node has started the reply.
	opened func()
	// token is called with each token event's index and the time it was
	// read.
	token func(index int, at time.Time)
}

// chatStreamWith is chatStream calling h's hooks.
func (c *client) chatStreamWith(ctx context.Context, edge, sessionID, message string, h streamHooks) (ttft, total time.Duration, r reply, st streamStats, err error) {
	onToken := h.token
	start := time.Now()
	resp, err := c.post(ctx, edge, "/chat", map[string]any{"sessionId": sessionID, "message": message, "stream": true})
	if err != nil {
		return 0, 0, r, st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, r, st, statusError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return 0, 0, r, st, fmt.Errorf("content type %q, want text/event-stream", ct)
	}
	if h.opened != nil {
		h.opened()
	}
	comments := &commentCounter{atLineStart: true}
	defer func() { st.comments = comments.n }()
	var (
		text strings.Builder
		done bool
	)
	for ev, err := range sse.Read(io.TeeReader(resp.Body, comments), nil) {
		if err != nil {
			return 0, 0, r, st, fmt.Errorf("reading the stream: %w", err)
		}
		if done {
			return 0, 0, r, st, errors.New("event after done")
		}
		switch ev.Type {
		case "token":
			at := time.Now()
			if onToken != nil {
				onToken(st.tokens, at)
			}
			if st.tokens == 0 {
				ttft = at.Sub(start)
			}
			if ev.LastEventID != strconv.Itoa(st.tokens) {
				return 0, 0, r, st, fmt.Errorf("token out of order")
			}
			var tok struct{ Text string }
			if err := json.Unmarshal([]byte(ev.Data), &tok); err != nil {
				return 0, 0, r, st, fmt.Errorf("token data: %w", err)
			}
			text.WriteString(tok.Text)
			st.tokens++
		case "done":
			total = time.Since(start)
			var d struct {
				MessageID string `json:"messageId"`
				Usage     struct {
					CompletionTokens int `json:"completionTokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				return 0, 0, r, st, fmt.Errorf("done data: %w", err)
			}
			if d.MessageID == "" {
				return 0, 0, r, st, errors.New("done without messageId")
			}
			if d.Usage.CompletionTokens != st.tokens {
				return 0, 0, r, st, errors.New("done counts other tokens than were streamed")
			}
			r.messageID, done = d.MessageID, true
		case "error":
			var e struct {
				Error struct{ Code string }
			}
			_ = json.Unmarshal([]byte(ev.Data), &e)
			return 0, 0, r, st, fmt.Errorf("error event %q", e.Error.Code)
		default:
			return 0, 0, r, st, fmt.Errorf("unexpected event %q", ev.Type)
		}
	}
	switch {
	case !done:
		return 0, 0, r, st, errors.New("stream ended without done")
	case st.tokens == 0:
		return 0, 0, r, st, errors.New("no tokens")
	case text.String() != expectedReply(message):
		return 0, 0, r, st, errors.New("streamed tokens differ from the reply")
	}
	r.content = text.String()
	return ttft, total, r, st, nil
}

// chatWhole POSTs /chat with stream:false: the answer must be the stored
// assistant message, with the mock model's whole reply as its content.
func (c *client) chatWhole(ctx context.Context, edge, sessionID, message string) (time.Duration, reply, error) {
	start := time.Now()
	resp, err := c.post(ctx, edge, "/chat", map[string]any{"sessionId": sessionID, "message": message, "stream": false})
	if err != nil {
		return 0, reply{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, reply{}, statusError(resp)
	}
	var body struct {
		Message struct {
			ID, Role, Content string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, reply{}, fmt.Errorf("chat body: %w", err)
	}
	total := time.Since(start)
	switch {
	case body.Message.ID == "" || body.Message.Role != "assistant":
		return 0, reply{}, errors.New("chat body without the assistant message")
	case body.Message.Content == "":
		return 0, reply{}, errors.New("empty reply content")
	case body.Message.Content != expectedReply(message):
		return 0, reply{}, errors.New("reply content differs from the model's")
	}
	return total, reply{messageID: body.Message.ID, content: body.Message.Content}, nil
}

// historyMessage is one message of a history page.
type historyMessage struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	Content string `json:"content"`
}

// history GETs one page of a session's history, newest first. userID,
// when set, is sent as X-User-Id (the rate limiter's user key).
func (c *client) history(ctx context.Context, edge, sessionID string, limit int, userID string) ([]historyMessage, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/chat/%s/history?limit=%d", edge, sessionID, limit), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if userID != "" {
		req.Header.Set("X-User-Id", userID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.Header, statusError(resp)
	}
	var page struct {
		Messages []historyMessage `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, resp.Header, fmt.Errorf("history body: %w", err)
	}
	return page.Messages, resp.Header, nil
}

// historyStatus GETs …/history?limit=1 with key as the API key and
// userID as X-User-Id, and returns the status, the headers and, for an
// error, the body's code; only a failed exchange is an error.
func (c *client) historyStatus(ctx context.Context, edge, key, sessionID, userID string) (int, http.Header, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, edge+"/chat/"+sessionID+"/history?limit=1", nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-User-Id", userID)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code string }
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return 0, nil, "", fmt.Errorf("HTTP %d body: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, body.Error.Code, nil
}

// checkStored reads the session's newest message and compares it with the
// reply the client received: the reply is complete only if it was stored
// as received.
func (c *client) checkStored(ctx context.Context, edge, sessionID string, r reply) error {
	msgs, _, err := c.history(ctx, edge, sessionID, 1, "")
	switch {
	case err != nil:
		return fmt.Errorf("history after the phase: %w", err)
	case len(msgs) != 1 || msgs[0].ID != r.messageID:
		return errors.New("newest stored message is not the last reply")
	case msgs[0].Content != r.content:
		return errors.New("stored reply differs from the one received")
	}
	return nil
}

// metric adds up the series of the Prometheus counter name on edge's
// /metrics whose labels contain match ("" for every series).
func (c *client) metric(ctx context.Context, edge, name, match string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, edge+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") || !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		sum += v
	}
	return sum, nil
}

// metricByEdge reads metric from every edge.
func (c *client) metricByEdge(ctx context.Context, edges []string, name, match string) ([]float64, error) {
	out := make([]float64, len(edges))
	for i, edge := range edges {
		v, err := c.metric(ctx, edge, name, match)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// statusError reads an error response's code (docs/http.md, Errors).
func statusError(resp *http.Response) error {
	var body struct {
		Error struct{ Code string }
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	return fmt.Errorf("HTTP %d %s", resp.StatusCode, body.Error.Code)
}

// commentCounter counts SSE comment lines (those starting with ':', the
// edge's ": ping" heartbeats) in the bytes written to it. sse.Read skips
// comments, so the stream is teed through it.
type commentCounter struct {
	atLineStart bool
	n           int
}

func (c *commentCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		if c.atLineStart && b == ':' {
			c.n++
		}
		c.atLineStart = b == '\n'
	}
	return len(p), nil
}
