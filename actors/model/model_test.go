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
