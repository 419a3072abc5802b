package model_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/parley-chat/parley/actors/model"
)

func TestMockIsDeterministicAndTokensRebuildTheReply(t *testing.T) {
	req := model.Request{Prompt: "Be brief.", History: []model.Turn{{Role: "user", Content: "hi there"}}, Message: "what  is   up"}
	var first, second []string
	u1, err := model.Mock{}.Stream(context.Background(), req, func(tok string) error { first = append(first, tok); return nil })
	if err != nil {
		t.Fatal(err)
	}
	_, _ = model.Mock{}.Stream(context.Background(), req, func(tok string) error { second = append(second, tok); return nil })
	if strings.Join(first, "") != model.MockReply(req) || strings.Join(first, "|") != strings.Join(second, "|") {
		t.Fatalf("tokens %q do not rebuild %q deterministically", first, model.MockReply(req))
	}
	if !strings.HasPrefix(model.MockReply(req), "You said: what is up.") {
		t.Fatalf("reply %q", model.MockReply(req))
	}
	if u1.CompletionTokens != len(first) || u1.PromptTokens != 2+3+2 {
		t.Fatalf("usage %+v for %d tokens", u1, len(first))
	}
}

func TestMockStopsWhenEmitFailsOrContextEnds(t *testing.T) {
	stop := errors.New("client gone")
	n := 0
	_, err := model.Mock{}.Stream(context.Background(), model.Request{Message: "x"}, func(string) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("err %v after %d tokens", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (model.Mock{}).Stream(ctx, model.Request{Message: "x"}, func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// A gated mock emits one token per value on its gate, and stops with the
// context while it waits.
func TestGatedMockEmitsATokenPerValue(t *testing.T) {
	gate := make(chan struct{})
	tokens := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := model.Mock{Gate: gate}.Stream(ctx, model.Request{Message: "hi"}, func(tok string) error { tokens <- tok; return nil })
		done <- err
	}()
	for range 2 {
		gate <- struct{}{}
		<-tokens
	}
	if len(tokens) != 0 {
		t.Fatalf("%d tokens emitted beyond the two let through", len(tokens))
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v, want context.Canceled", err)
	}
	if len(tokens) != 0 {
		t.Fatal("a token was emitted without a value on the gate")
	}
}
