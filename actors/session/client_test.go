package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
)

// fakeSessions answers every call with reply or err and records what was
// sent.
type fakeSessions struct {
	reply any
	err   error
	sent  []any
}

var _ grains.Requester = (*fakeSessions)(nil)

func (f *fakeSessions) Request(_ context.Context, identity, kind string, msg any) (any, error) {
	if kind != session.Kind {
		return nil, errors.New("wrong kind " + kind)
	}
	f.sent = append(f.sent, msg)
	return f.reply, f.err
}

const sessionID = "0193a4c2-6f0e-7c3a-9b1d-2f4e5a6b7c8d"

// The client reports every way a call can fail as the shared sentinels,
// with the grain's own words when the grain answered.
func TestClientTurnsFailuresIntoSentinels(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   any
		err     error
		want    []error
		notWant error
	}{
		{"reply in progress", &grains.Failure{Code: grains.CodeConflict, Message: "busy"}, nil, []error{grains.ErrConflict}, grains.ErrUnavailable},
		{"refused", &grains.Failure{Code: grains.CodeInvalidArgument, Message: "limit 0"}, nil, []error{grains.ErrInvalidArgument}, nil},
		{"storage failed", &grains.Failure{Code: grains.CodeUnavailable, Message: "clear: storage unavailable"}, nil, []error{grains.ErrUnavailable}, nil},
		{"node timeout", nil, cluster.ErrTimeout, []error{grains.ErrUnavailable, cluster.ErrTimeout}, nil},
		{"caller cancelled", nil, context.Canceled, []error{context.Canceled}, grains.ErrUnavailable},
		{"answer of the wrong type", &session.Cleared{}, nil, nil, grains.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := session.NewClient(&fakeSessions{reply: tc.reply, err: tc.err}, testkit.NewActorSystem(t))
			_, err := c.History(context.Background(), "acme", sessionID, 0, 0)
			if err == nil {
				t.Fatal("History succeeded")
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("%v is not %v", err, want)
				}
			}
			if tc.notWant != nil && errors.Is(err, tc.notWant) {
				t.Errorf("%v is %v", err, tc.notWant)
			}
			if f, ok := tc.reply.(*grains.Failure); ok {
				var ge *grains.Error
				if !errors.As(err, &ge) || ge.Message != f.Message {
					t.Errorf("%v does not carry the grain's message %q", err, f.Message)
				}
			}
		})
	}
}

func TestClientRefusesABadIdentityBeforeAnyCall(t *testing.T) {
	node := &fakeSessions{reply: &session.Cleared{}}
	c := session.NewClient(node, testkit.NewActorSystem(t))
	for _, tc := range [][2]string{{"acme", "not-a-uuid"}, {"Acme", sessionID}, {"acme", "0193A4C2-6F0E-7C3A-9B1D-2F4E5A6B7C8D"}} {
		if err := c.Clear(context.Background(), tc[0], tc[1]); !errors.Is(err, session.ErrBadIdentity) || !errors.Is(err, grains.ErrInvalidArgument) {
			t.Errorf("Clear(%q, %q) = %v, want ErrBadIdentity", tc[0], tc[1], err)
		}
	}
	if _, err := c.Chat(context.Background(), "acme", "nope", session.ChatRequest{Content: "hi"}); !errors.Is(err, session.ErrBadIdentity) {
		t.Errorf("Chat with a bad session id = %v, want ErrBadIdentity", err)
	}
	if len(node.sent) != 0 {
		t.Fatalf("%d calls reached the grain", len(node.sent))
	}
}

func TestClientHistoryReadsThePage(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	node := &fakeSessions{reply: &session.Page{NextBefore: 7, Messages: []*session.Message{
		{Id: "m8", Seq: 8, Role: "assistant", Content: "hello", TokenCount: 2, CreatedAtUnixNano: created.UnixNano()},
	}}}
	c := session.NewClient(node, testkit.NewActorSystem(t))
	page, err := c.History(context.Background(), "acme", sessionID, 10, 9)
	if err != nil {
		t.Fatal(err)
	}
	want := session.Entry{ID: "m8", Seq: 8, Role: "assistant", Content: "hello", TokenCount: 2, CreatedAt: created}
	if page.NextBefore != 7 || len(page.Messages) != 1 || page.Messages[0].ID != want.ID || page.Messages[0].Seq != want.Seq ||
		page.Messages[0].Content != want.Content || page.Messages[0].TokenCount != 2 || !page.Messages[0].CreatedAt.Equal(created) {
		t.Fatalf("page %+v, want %+v before 7", page, want)
	}
	if h, ok := node.sent[0].(*session.History); !ok || h.Limit != 10 || h.Before != 9 {
		t.Fatalf("sent %v, want History{limit 10, before 9}", node.sent[0])
	}
}

// A started Chat sends the grain a reply PID, and the Reply delivers what
// the session sends to it, its end included.
func TestClientChatDeliversTheReply(t *testing.T) {
	system := testkit.NewActorSystem(t)
	node := &fakeSessions{reply: &session.ChatStarted{UserMessage: &session.Message{Id: "u1", Seq: 1, Role: "user", Content: "hi"}}}
	c := session.NewClient(node, system)
	reply, err := c.Chat(context.Background(), "acme", sessionID, session.ChatRequest{Content: "hi", Tokens: true, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	defer reply.Close()
	chat := node.sent[0].(*session.Chat)
	if chat.Content != "hi" || chat.IdempotencyKey != "k1" || chat.ReplyId == "" || reply.UserMessage.ID != "u1" {
		t.Fatalf("sent %v, user message %+v", chat, reply.UserMessage)
	}
	to := system.NewLocalPID(chat.ReplyId)
	system.Root.Send(to, &session.Token{Index: 0, Text: "he"})
	system.Root.Send(to, &session.ReplyFailed{Code: grains.CodeUnavailable, Message: "the reply could not be stored"})
	for i, want := range []string{"he", ""} {
		select {
		case ev := <-reply.Events():
			if ev.Text != want || (i == 1 && (!errors.Is(ev.Err, grains.ErrUnavailable) || ev.Err.Error() != "the reply could not be stored")) {
				t.Fatalf("event %d: %+v", i, ev)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d never came", i)
		}
	}
}

// A reply's end carries which model wrote it and why it ended; a model
// that failed is an *UpstreamError with the stored partial reply, never
// ErrUnavailable.
func TestClientReplyCarriesModelFinishReasonAndUpstreamFailures(t *testing.T) {
	system := testkit.NewActorSystem(t)
	node := &fakeSessions{reply: &session.ChatStarted{UserMessage: &session.Message{Id: "u1", Seq: 1, Role: "user", Content: "hi"}}}
	c := session.NewClient(node, system)
	next := func(reply *session.Reply) session.Event {
		t.Helper()
		select {
		case ev := <-reply.Events():
			return *ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event came")
		}
		return session.Event{}
	}
	chat := func() (*session.Reply, *actor.PID) {
		t.Helper()
		node.sent = nil
		reply, err := c.Chat(context.Background(), "acme", sessionID, session.ChatRequest{Content: "hi", Tokens: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(reply.Close)
		return reply, system.NewLocalPID(node.sent[0].(*session.Chat).ReplyId)
	}

	reply, to := chat()
	system.Root.Send(to, &session.ReplyDone{Message: &session.Message{Id: "a2", Role: "assistant", Content: "he", FinishReason: "stopped"},
		PromptTokens: 3, CompletionTokens: 1, Model: "gpt-test"})
	if ev := next(reply); ev.Done == nil || ev.Done.Model != "gpt-test" || ev.Done.Message.FinishReason != "stopped" {
		t.Fatalf("done %+v", ev.Done)
	}

	reply, to = chat()
	system.Root.Send(to, &session.ReplyFailed{Code: session.CodeUpstreamFailed, Message: "mid-reply", Model: "fallback",
		Partial: &session.Message{Id: "a3", Role: "assistant", Content: "par", FinishReason: "error"}, PromptTokens: 3, CompletionTokens: 1})
	ev := next(reply)
	var upstream *session.UpstreamError
	if !errors.As(ev.Err, &upstream) || !errors.Is(ev.Err, session.ErrUpstreamFailed) || errors.Is(ev.Err, grains.ErrUnavailable) {
		t.Fatalf("err %v", ev.Err)
	}
	if upstream.Model != "fallback" || upstream.Partial == nil || upstream.Partial.ID != "a3" || upstream.Partial.FinishReason != "error" ||
		upstream.PromptTokens != 3 || upstream.CompletionTokens != 1 {
		t.Fatalf("upstream error %+v", upstream)
	}

	// An assistant message stored before finish reasons were kept reads
	// as a finished one.
	node.reply = &session.Page{Messages: []*session.Message{{Id: "old", Role: "assistant"}, {Id: "u", Role: "user"}}}
	page, err := c.History(context.Background(), "acme", sessionID, 0, 0)
	if err != nil || page.Messages[0].FinishReason != "stop" || page.Messages[1].FinishReason != "" {
		t.Fatalf("page %+v, %v", page, err)
	}
}

// Stop asks the session and reports whether a reply ran.
func TestClientStop(t *testing.T) {
	node := &fakeSessions{reply: &session.Stopped{Replying: true}}
	c := session.NewClient(node, testkit.NewActorSystem(t))
	if replying, err := c.Stop(context.Background(), "acme", sessionID); err != nil || !replying {
		t.Fatalf("Stop = %v, %v", replying, err)
	}
	if _, ok := node.sent[0].(*session.Stop); !ok {
		t.Fatalf("sent %T", node.sent[0])
	}
	node.reply = &session.Cleared{}
	if _, err := c.Stop(context.Background(), "acme", sessionID); err == nil {
		t.Fatal("an unexpected answer is not an error")
	}
	if _, err := c.Stop(context.Background(), "acme", "not-a-uuid"); !errors.Is(err, session.ErrBadIdentity) {
		t.Fatalf("bad identity: %v", err)
	}
}
