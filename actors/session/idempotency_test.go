package session_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/persistence"
)

// keyedChat is a Chat with an idempotency key whose reply goes to listener.
func keyedChat(content, key string, listener *testkit.Probe) *session.Chat {
	return &session.Chat{Content: content, IdempotencyKey: key, ReplyAddress: listener.PID().Address, ReplyId: listener.PID().Id}
}

// takeReply takes one whole reply from listener: its tokens, which must
// come with indexes 0, 1, 2…, and the ReplyDone that ends them.
func takeReply(t *testing.T, listener *testkit.Probe) ([]string, *session.ReplyDone) {
	t.Helper()
	var tokens []string
	for {
		switch m := listener.Expect(5 * time.Second).Message.(type) {
		case *session.Token:
			if m.Index != int32(len(tokens)) {
				t.Fatalf("token %d has index %d", len(tokens), m.Index)
			}
			tokens = append(tokens, m.Text)
		case *session.ReplyDone:
			return tokens, m
		default:
			t.Fatalf("reply: unexpected %T %v", m, m)
		}
	}
}

// history returns every message of the session, newest first.
func (e *env) history(identity string) []persistence.Message {
	e.t.Helper()
	key, err := session.ParseIdentity(identity)
	if err != nil {
		e.t.Fatal(err)
	}
	msgs, err := e.store.Page(context.Background(), key, 0, 100, time.Time{})
	if err != nil {
		e.t.Fatal(err)
	}
	return msgs
}

func TestChatSentAgainWithItsKeyReplaysTheStoredReply(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	identity := newIdentity(t, "acme")
	pid := e.spawn(identity)

	first := testkit.NewProbe(t, e.system)
	started := ask[*session.ChatStarted](e, pid, keyedChat("hello there", "req-1", first))
	tokens, done := takeReply(t, first)

	// The retry (a client that never saw the answer) gets the same
	// exchange, streamed the same way, and stores nothing.
	again := testkit.NewProbe(t, e.system)
	restarted := ask[*session.ChatStarted](e, pid, keyedChat("hello there", "req-1", again))
	if restarted.UserMessage.Id != started.UserMessage.Id || restarted.UserMessage.Seq != 1 || restarted.Host == "" {
		t.Fatalf("retry started with %+v, first with %+v", restarted, started.UserMessage)
	}
	replayed, redone := takeReply(t, again)
	if strings.Join(replayed, "|") != strings.Join(tokens, "|") {
		t.Fatalf("retry streamed %q, the reply was %q", replayed, tokens)
	}
	if redone.Message.Id != done.Message.Id || redone.Message.Content != done.Message.Content ||
		redone.CompletionTokens != done.CompletionTokens || redone.CompletionTokens != int32(len(tokens)) {
		t.Fatalf("retry ended with %+v, the reply with %+v", redone, done)
	}
	if msgs := e.history(identity); len(msgs) != 2 || msgs[0].ID != done.Message.Id || msgs[1].ID != started.UserMessage.Id {
		t.Fatalf("history after the retry holds %d messages: %+v", len(msgs), msgs)
	}

	// A new activation (the session moved to another node) knows the key
	// from the store.
	e.system.Root.Stop(pid)
	moved := e.spawn(identity)
	third := testkit.NewProbe(t, e.system)
	if s := ask[*session.ChatStarted](e, moved, keyedChat("hello there", "req-1", third)); s.UserMessage.Id != started.UserMessage.Id {
		t.Fatalf("new activation started %+v", s.UserMessage)
	}
	if _, d := takeReply(t, third); d.Message.Id != done.Message.Id {
		t.Fatalf("new activation replayed %+v", d.Message)
	}

	// Another key is another request.
	ask[*session.ChatStarted](e, moved, keyedChat("hello there", "req-2", third))
	takeReply(t, third)
	if n := len(e.history(identity)); n != 4 {
		t.Fatalf("history after a second key holds %d messages, want 4", n)
	}
}

// TestChatWithTheKeyOfAnUnansweredMessageStoresOnlyTheReply: the node
// writing the reply died after storing the user message; the retry, on the
// session's next activation, writes the reply to that message.
func TestChatWithTheKeyOfAnUnansweredMessageStoresOnlyTheReply(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	identity := newIdentity(t, "acme")
	key, _ := session.ParseIdentity(identity)
	stored := persistence.Message{Seq: 1, ID: uuid.NewString(), Role: persistence.RoleUser, Content: "are you there?",
		TokenCount: 3, CreatedAt: e.clock.Now(), IdempotencyKey: "req-lost"}
	if _, err := e.store.Append(context.Background(), key, 0, []persistence.Message{stored}, persistence.AppendOptions{}); err != nil {
		t.Fatal(err)
	}

	pid := e.spawn(identity)
	listener := testkit.NewProbe(t, e.system)
	started := ask[*session.ChatStarted](e, pid, keyedChat("are you there?", "req-lost", listener))
	if started.UserMessage.Id != stored.ID || started.UserMessage.Seq != 1 {
		t.Fatalf("started with %+v, want the stored message", started.UserMessage)
	}
	tokens, done := takeReply(t, listener)
	want := model.MockReply(model.Request{Message: "are you there?"})
	if strings.Join(tokens, "") != want || done.Message.Content != want || done.Message.Seq != 2 {
		t.Fatalf("reply %q ended by %+v, want %q at seq 2", tokens, done.Message, want)
	}
	msgs := e.history(identity)
	if len(msgs) != 2 || msgs[0].Role != persistence.RoleAssistant || msgs[1].ID != stored.ID {
		t.Fatalf("history holds %+v, want the stored message and one reply", msgs)
	}
}

func TestChatWithTheKeyOfAReplyInProgressIsAConflict(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	gate := make(chan struct{})
	props, err := session.Props(session.Config{Store: e.store, Clock: e.clock, Model: model.Mock{Gate: gate}, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	identity := newIdentity(t, "acme")
	pid := testkit.SpawnGrain(t, e.system, props, session.Kind, identity)
	listener := testkit.NewProbe(t, e.system)
	chat := keyedChat("slow one", "req-slow", listener)
	ask[*session.ChatStarted](e, pid, chat)
	if f := ask[*grains.Failure](e, pid, chat); f.Code != grains.CodeConflict {
		t.Fatalf("same key during its reply: %+v", f)
	}
	close(gate) // let the reply run to its end
	_, done := takeReply(t, listener)
	ask[*session.ChatStarted](e, pid, chat)
	if _, again := takeReply(t, listener); again.Message.Id != done.Message.Id {
		t.Fatalf("after the reply the key replays %+v, want %+v", again.Message, done.Message)
	}
	if n := len(e.history(identity)); n != 2 {
		t.Fatalf("history holds %d messages, want 2", n)
	}
}

func TestAppendWithTheSameKeyStoresOnce(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	identity := newIdentity(t, "acme")
	pid := e.spawn(identity)
	req := &session.Append{Role: "system", Content: "be brief", TokenCount: 2, IdempotencyKey: "setup-1"}
	first := ask[*session.Appended](e, pid, req).Message
	e.clock.Advance(time.Second)
	again := ask[*session.Appended](e, pid, req).Message
	if again.Id != first.Id || again.Seq != first.Seq || again.CreatedAtUnixNano != first.CreatedAtUnixNano {
		t.Fatalf("second append answered %+v, the first stored %+v", again, first)
	}
	if other := ask[*session.Appended](e, pid, &session.Append{Role: "system", Content: "be brief", IdempotencyKey: "setup-2"}).Message; other.Seq != 2 {
		t.Fatalf("another key stored seq %d, want 2", other.Seq)
	}
	if n := len(e.history(identity)); n != 2 {
		t.Fatalf("history holds %d messages, want 2", n)
	}
}

// TestAKeyStoredByAnotherActivationIsFound: two activations of one session
// (a membership change in progress); the second's write loses the race,
// and after reloading it finds the key the first stored.
func TestAKeyStoredByAnotherActivationIsFound(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	identity := newIdentity(t, "acme")
	first, second := e.spawn(identity), e.spawn(identity)
	ask[*session.Page](e, second, &session.History{}) // second has loaded the empty session

	stored := ask[*session.Appended](e, first, &session.Append{Role: "user", Content: "once", IdempotencyKey: "a-1"}).Message
	if again := ask[*session.Appended](e, second, &session.Append{Role: "user", Content: "once", IdempotencyKey: "a-1"}).Message; again.Id != stored.Id {
		t.Fatalf("second activation appended %+v, first stored %+v", again, stored)
	}

	listener := testkit.NewProbe(t, e.system)
	started := ask[*session.ChatStarted](e, first, keyedChat("hi", "c-1", listener))
	_, done := takeReply(t, listener)
	// second's sequence is stale again: its append conflicts, it reloads
	// and replays the exchange first stored.
	if s := ask[*session.ChatStarted](e, second, keyedChat("hi", "c-1", listener)); s.UserMessage.Id != started.UserMessage.Id {
		t.Fatalf("second activation started %+v, first %+v", s.UserMessage, started.UserMessage)
	}
	if _, d := takeReply(t, listener); d.Message.Id != done.Message.Id {
		t.Fatalf("second activation replied %+v, first %+v", d.Message, done.Message)
	}
	if n := len(e.history(identity)); n != 3 {
		t.Fatalf("history holds %d messages, want 3", n)
	}
}

func TestBadIdempotencyKeysAreRefusedAndStoreNothing(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	identity := newIdentity(t, "acme")
	pid := e.spawn(identity)
	listener := testkit.NewProbe(t, e.system)
	for _, key := range []string{strings.Repeat("k", 129), "has space", "tab\t", "é", "del\x7f", "nul\x00"} {
		if f := ask[*grains.Failure](e, pid, keyedChat("hi", key, listener)); f.Code != grains.CodeInvalidArgument {
			t.Errorf("chat with key %q: %+v", key, f)
		}
		if f := ask[*grains.Failure](e, pid, &session.Append{Role: "user", Content: "hi", IdempotencyKey: key}); f.Code != grains.CodeInvalidArgument {
			t.Errorf("append with key %q: %+v", key, f)
		}
	}
	if n := len(e.history(identity)); n != 0 {
		t.Fatalf("bad keys stored %d messages", n)
	}
	for _, key := range []string{strings.Repeat("k", 128), "!", "~", "01J9Z-x_y.z:/+="} {
		ask[*session.Appended](e, pid, &session.Append{Role: "user", Content: "hi", IdempotencyKey: key})
	}
}

// TestOnlyKeyedWritesAreSafeToSendAgain: the cluster sends a call again
// to the session's new activation when its node fails mid-call only if
// the message says it may.
func TestOnlyKeyedWritesAreSafeToSendAgain(t *testing.T) {
	for _, tc := range []struct {
		msg  cluster.Idempotent
		want bool
	}{
		{&session.Chat{Content: "x"}, false},
		{&session.Chat{Content: "x", IdempotencyKey: "k"}, true},
		{&session.Append{Content: "x"}, false},
		{&session.Append{Content: "x", IdempotencyKey: "k"}, true},
		{&session.History{}, true},
	} {
		if got := tc.msg.Idempotent(); got != tc.want {
			t.Errorf("%T %v: Idempotent() = %v, want %v", tc.msg, tc.msg, got, tc.want)
		}
	}
}
