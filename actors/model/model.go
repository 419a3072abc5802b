// Package model is the seam between a chat session and whatever writes the
// assistant's reply: the deterministic mock (mock.go's Mock, below) and any
// OpenAI-compatible Chat Completions endpoint (openai.go), tried in order
// with retries by a Chain (chain.go). Grains only see Model.
package model

import (
	"context"
	"strings"
	"time"
)

// Turn is one earlier message of the conversation.
type Turn struct {
	Role    string // user, assistant or system
	Content string
}

// Request is what the model is given: the tenant's prompt template, the
// recent history (oldest first) and the new user message.
type Request struct {
	Prompt  string
	History []Turn
	Message string
}

// Usage counts tokens the way the reply is billed, and says who wrote the
// reply and why it ended.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	// Model names the model that wrote the reply (a fallback's name when
	// the first entry failed); "mock" for the mock.
	Model string
	// FinishReason is FinishStop, FinishLength or, with an error,
	// FinishError; empty when no token was written.
	FinishReason string
}

// Why a reply ended, as stored with it and told in done.
const (
	FinishStop    = "stop"    // the model finished its reply
	FinishLength  = "length"  // the reply reached maxTokens (or the size bound)
	FinishStopped = "stopped" // a client asked to stop it
	FinishError   = "error"   // the upstream failed after the first token
)

// Model writes a reply token by token. Stream calls emit for each token in
// order, from the caller's goroutine, and returns when the reply is
// complete, emit returns an error, or ctx is done. It may block; callers
// run it off any actor's goroutine. Usage is meaningful with an error too:
// it counts what was written before the failure.
type Model interface {
	Stream(ctx context.Context, req Request, emit func(token string) error) (Usage, error)
}

// Mock is the deterministic model of M1: the same request always gets the
// same reply, one word-sized token at a time, TokenDelay apart.
type Mock struct {
	// TokenDelay is the pause before each token (0 in benchmarks).
	TokenDelay time.Duration
	// Gate, when set, holds each token until a value arrives on it or it
	// is closed, so that a test decides when a reply progresses.
	Gate <-chan struct{}
}

var _ Model = Mock{}

// DefaultMock is the mock parley serve runs: a token every 20 ms, about
// the pace of a hosted model, so streams are visible.
func DefaultMock() Mock {
	return Mock{TokenDelay: 20 * time.Millisecond}
}

// Stream implements Model.
func (m Mock) Stream(ctx context.Context, req Request, emit func(string) error) (Usage, error) {
	usage := Usage{PromptTokens: CountTokens(req.Prompt) + CountTokens(req.Message), Model: MockName}
	for _, t := range req.History {
		usage.PromptTokens += CountTokens(t.Content)
	}
	var timer *time.Timer
	if m.TokenDelay > 0 {
		timer = time.NewTimer(m.TokenDelay)
		defer timer.Stop()
	}
	for _, token := range Tokens(MockReply(req)) {
		if timer != nil {
			select {
			case <-ctx.Done():
				return usage, ctx.Err()
			case <-timer.C:
				timer.Reset(m.TokenDelay)
			}
		} else if err := ctx.Err(); err != nil {
			return usage, err
		}
		if m.Gate != nil {
			select {
			case <-ctx.Done():
				return usage, ctx.Err()
			case <-m.Gate:
			}
		}
		if err := emit(token); err != nil {
			return usage, err
		}
		usage.CompletionTokens++
	}
	usage.FinishReason = FinishStop
	return usage, nil
}

// MockName is the mock's provider and model name.
const MockName = "mock"

// MockReply is the mock's whole reply to req.
func MockReply(req Request) string {
	return "You said: " + strings.Join(strings.Fields(req.Message), " ") +
		". This is Parley's mock model, replying token by token so that streaming can be seen and tested."
}

// Tokens splits text into the mock's tokens: each word with the space
// before it, so that joining the tokens gives back the text.
func Tokens(text string) []string {
	var out []string
	start := 0
	for i := 1; i < len(text); i++ {
		if text[i] == ' ' && text[i-1] != ' ' {
			out = append(out, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// CountTokens is the mock's token count of text: its words.
func CountTokens(text string) int { return len(strings.Fields(text)) }
