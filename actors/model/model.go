// Package model is the seam between a chat session and whatever writes the
// assistant's reply. M1 ships a deterministic mock; an OpenAI-compatible
// streaming provider implements the same interface without touching grains.
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

// Usage counts tokens the way the reply is billed.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Model writes a reply token by token. Stream calls emit for each token in
// order, from the caller's goroutine, and returns when the reply is
// complete, emit returns an error, or ctx is done. It may block; callers
// run it off any actor's goroutine.
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
	usage := Usage{PromptTokens: CountTokens(req.Prompt) + CountTokens(req.Message)}
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
	return usage, nil
}

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
