package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
)

func TestChatStreamsTokensThenStoresTheReply(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	gate := make(chan struct{})
	props, err := session.Props(session.Config{Store: e.store, Clock: e.clock, Model: model.Mock{Gate: gate}, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pid := testkit.SpawnGrain(t, e.system, props, session.Kind, newIdentity(t, "acme"))
	listener := testkit.NewProbe(t, e.system)
	chat := &session.Chat{Content: "hello there", ReplyAddress: listener.PID().Address, ReplyId: listener.PID().Id}

	started := ask[*session.ChatStarted](e, pid, chat)
	if started.UserMessage.Seq != 1 || started.UserMessage.Content != "hello there" || started.UserMessage.TokenCount != 2 {
		t.Fatalf("user message %+v", started.UserMessage)
	}
	// One reply per session at a time.
	if f := ask[*grains.Failure](e, pid, chat); f.Code != grains.CodeConflict {
		t.Fatalf("second chat during a reply: %+v", f)
	}

	want := model.Tokens(model.MockReply(model.Request{Message: "hello there"}))
	var got []string
	for i := range want {
		gate <- struct{}{}
		tok := testkit.ExpectMessage[*session.Token](listener, 5*time.Second)
		if tok.Index != int32(i) {
			t.Fatalf("token %d has index %d", i, tok.Index)
		}
		got = append(got, tok.Text)
	}
	done := testkit.ExpectMessage[*session.ReplyDone](listener, 5*time.Second)
	if done.Message.Role != "assistant" || done.Message.Content != strings.Join(got, "") || done.Message.Seq != 2 ||
		done.CompletionTokens != int32(len(want)) || done.Message.TokenCount != int32(len(want)) {
		t.Fatalf("done %+v after tokens %q", done, got)
	}
	page := ask[*session.Page](e, pid, &session.History{})
	if len(page.Messages) != 2 || page.Messages[0].Id != done.Message.Id {
		t.Fatalf("history %+v", page.Messages)
	}
	// The session takes the next chat once the reply is stored.
	ask[*session.ChatStarted](e, pid, chat)
}

func TestReplyIsStoredEvenIfNobodyListens(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	identity := newIdentity(t, "acme")
	key, _ := session.ParseIdentity(identity)
	pid := e.spawn(identity)
	gone := testkit.NewProbe(t, e.system)
	e.system.Root.Stop(gone.PID()) // the client disconnected before the first token
	ask[*session.ChatStarted](e, pid, &session.Chat{Content: "anyone?", ReplyAddress: gone.PID().Address, ReplyId: gone.PID().Id})
	testkit.Eventually(t, 5*time.Second, func() error {
		msgs, err := e.store.Page(context.Background(), key, 0, 10, time.Time{})
		if err != nil {
			return err
		}
		if len(msgs) != 2 || msgs[0].Role != persistence.RoleAssistant {
			return errNotYet
		}
		return nil
	})
}

var errNotYet = errors.New("reply not stored yet")

// replyOverQuota refuses every assistant message as over the tenant's
// stored-bytes quota.
type replyOverQuota struct{ persistence.Store }

func (s replyOverQuota) Append(ctx context.Context, key persistence.SessionKey, expectedLast uint64, msgs []persistence.Message, opts persistence.AppendOptions) (persistence.SessionMeta, error) {
	if msgs[0].Role == persistence.RoleAssistant {
		return persistence.SessionMeta{}, &persistence.QuotaError{Quota: persistence.QuotaStoredBytes, Limit: 100, Used: 90}
	}
	return s.Store.Append(ctx, key, expectedLast, msgs, opts)
}

// A reply the tenant's quota has no room for ends as quota_exceeded,
// naming the quota, not as an unavailable store.
func TestAReplyPastTheQuotaEndsQuotaExceeded(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	props, err := session.Props(session.Config{Store: replyOverQuota{e.store}, Clock: e.clock, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pid := testkit.SpawnGrain(t, e.system, props, session.Kind, newIdentity(t, "acme"))
	listener := testkit.NewProbe(t, e.system)
	ask[*session.ChatStarted](e, pid, &session.Chat{Content: "hello", ReplyAddress: listener.PID().Address, ReplyId: listener.PID().Id})
	for {
		switch m := listener.Expect(5 * time.Second).Message.(type) {
		case *session.Token:
			continue
		case *session.ReplyFailed:
			if m.Code != grains.CodeQuotaExceeded || m.Quota != persistence.QuotaStoredBytes {
				t.Fatalf("reply failed %+v, want quota_exceeded naming %s", m, persistence.QuotaStoredBytes)
			}
			return
		default:
			t.Fatalf("got %T %+v", m, m)
		}
	}
}
