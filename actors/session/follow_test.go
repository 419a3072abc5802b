package session_test

import (
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
)

// A follower that joins mid-reply gets the tokens so far, then the rest
// and the end, exactly what the Chat's own requester gets; a Follow with
// nothing in progress is answered Idle.
func TestFollowReplaysTheReplyInProgressFromItsStart(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	gate := make(chan struct{})
	props, err := session.Props(session.Config{Store: e.store, Clock: e.clock, Model: model.Mock{Gate: gate}, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pid := testkit.SpawnGrain(t, e.system, props, session.Kind, newIdentity(t, "acme"))
	probe := func() *testkit.Probe { return testkit.NewProbe(t, e.system) }
	early := probe()
	ask[*session.Idle](e, pid, &session.Follow{ReplyAddress: early.PID().Address, ReplyId: early.PID().Id})

	chatter := probe()
	started := ask[*session.ChatStarted](e, pid, &session.Chat{Content: "follow me", ReplyAddress: chatter.PID().Address, ReplyId: chatter.PID().Id})
	want := model.Tokens(model.MockReply(model.Request{Message: "follow me"}))
	for range 3 {
		gate <- struct{}{}
		testkit.ExpectMessage[*session.Token](chatter, 5*time.Second)
	}
	late := probe()
	following := ask[*session.Following](e, pid, &session.Follow{ReplyAddress: late.PID().Address, ReplyId: late.PID().Id})
	if following.UserMessage.Id != started.UserMessage.Id {
		t.Fatalf("following %+v, started %+v", following.UserMessage, started.UserMessage)
	}
	// The gate holds the fourth token: three were written when late joined.
	if following.Tokens != 3 {
		t.Fatalf("following says %d tokens written so far, want 3", following.Tokens)
	}
	close(gate)
	for _, p := range []*testkit.Probe{chatter, late} {
		var text strings.Builder
		from := 0
		if p == chatter {
			from = 3
			text.WriteString(strings.Join(want[:3], ""))
		}
		for i := from; i < len(want); i++ {
			tok := testkit.ExpectMessage[*session.Token](p, 5*time.Second)
			if tok.Index != int32(i) {
				t.Fatalf("token %d has index %d", i, tok.Index)
			}
			text.WriteString(tok.Text)
		}
		done := testkit.ExpectMessage[*session.ReplyDone](p, 5*time.Second)
		if done.Message.Content != text.String() || text.String() != strings.Join(want, "") {
			t.Fatalf("done %q after tokens %q", done.Message.Content, text.String())
		}
	}
	ask[*session.Idle](e, pid, &session.Follow{ReplyAddress: early.PID().Address, ReplyId: early.PID().Id})
}

// Past FollowBytes the start of the reply is not kept: a late follower is
// refused, and the reply itself goes on.
func TestFollowIsRefusedPastTheBound(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	gate := make(chan struct{})
	props, err := session.Props(session.Config{Store: e.store, Clock: e.clock, Model: model.Mock{Gate: gate}, FollowBytes: 8, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pid := testkit.SpawnGrain(t, e.system, props, session.Kind, newIdentity(t, "acme"))
	chatter, late := testkit.NewProbe(t, e.system), testkit.NewProbe(t, e.system)
	ask[*session.ChatStarted](e, pid, &session.Chat{Content: "long", ReplyAddress: chatter.PID().Address, ReplyId: chatter.PID().Id})
	for range 4 { // "You said: long." and more: past 8 bytes
		gate <- struct{}{}
		testkit.ExpectMessage[*session.Token](chatter, 5*time.Second)
	}
	if f := ask[*grains.Failure](e, pid, &session.Follow{ReplyAddress: late.PID().Address, ReplyId: late.PID().Id}); f.Code != grains.CodeUnavailable {
		t.Fatalf("follow past the bound: %+v", f)
	}
	close(gate)
	expectDone(t, chatter)
}

// Regenerate writes a new reply to the newest user message without storing
// it again; the next reply's context holds the new reply, not the old.
func TestRegenerateRepliesAgainToTheNewestUserMessage(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	pid := e.spawn(newIdentity(t, "acme"))
	p := testkit.NewProbe(t, e.system)
	regen := &session.Regenerate{ReplyAddress: p.PID().Address, ReplyId: p.PID().Id}
	if f := ask[*grains.Failure](e, pid, regen); f.Code != grains.CodeInvalidArgument {
		t.Fatalf("regenerate in an empty session: %+v", f)
	}
	ask[*session.ChatStarted](e, pid, &session.Chat{Content: "question", ReplyAddress: p.PID().Address, ReplyId: p.PID().Id})
	first := expectDone(t, p)
	started := ask[*session.ChatStarted](e, pid, regen)
	if started.UserMessage.Content != "question" || started.UserMessage.Seq != 1 {
		t.Fatalf("regenerate answers %+v", started.UserMessage)
	}
	second := expectDone(t, p)
	if second.Message.Seq != 3 || second.Message.Content != first.Message.Content || second.PromptTokens != first.PromptTokens {
		t.Fatalf("regenerated %+v (prompt %d), first %+v (prompt %d)", second.Message, second.PromptTokens, first.Message, first.PromptTokens)
	}
	page := ask[*session.Page](e, pid, &session.History{})
	if len(page.Messages) != 3 || page.Messages[2].Role != "user" || page.Messages[1].Role != "assistant" || page.Messages[0].Role != "assistant" {
		t.Fatalf("history %+v", page.Messages)
	}
	// The next prompt counts the question and one reply, not both.
	ask[*session.ChatStarted](e, pid, &session.Chat{Content: "next", ReplyAddress: p.PID().Address, ReplyId: p.PID().Id})
	next := expectDone(t, p)
	if want := first.PromptTokens + first.CompletionTokens + int32(model.CountTokens("next")); next.PromptTokens != want {
		t.Fatalf("next prompt %d tokens, want %d", next.PromptTokens, want)
	}
}

func expectDone(t *testing.T, p *testkit.Probe) *session.ReplyDone {
	t.Helper()
	for {
		switch m := p.Expect(5 * time.Second).Message.(type) {
		case *session.Token:
		case *session.ReplyDone:
			return m
		default:
			t.Fatalf("unexpected %T %v", m, m)
		}
	}
}
