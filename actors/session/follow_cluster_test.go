package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
)

// A client on another node than the session follows its reply in progress:
// the tokens so far and the rest cross the remote, in order, and the
// Chat's own client, on the session's node, gets the same reply.
func TestFollowFromAnotherNode(t *testing.T) {
	t.Parallel()
	store := testkit.OpenStore(t, "")
	gate := make(chan struct{})
	c := testkit.NewCluster(t, 2, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
		kind, err := session.NewKind(session.Config{Store: store, Model: model.Mock{Gate: gate}, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind)
	}))
	c.WaitConverged(10 * time.Second)
	// A session owned by node 0, followed from node 1.
	sid := sessionOwnedBy(t, c, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	owner, other := session.NewClient(c.Node(0), c.Node(0).System()), session.NewClient(c.Node(1), c.Node(1).System())
	chat, err := owner.Chat(ctx, "acme", sid, session.ChatRequest{Content: "far away", Tokens: true})
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()
	want := model.Tokens(model.MockReply(model.Request{Message: "far away"}))
	gate <- struct{}{}
	gate <- struct{}{}
	for range 2 {
		if ev := <-chat.Events(); ev.Text == "" {
			t.Fatalf("event %+v", ev)
		}
	}
	follower, err := other.Follow(ctx, "acme", sid, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	if follower.UserMessage.ID != chat.UserMessage.ID {
		t.Fatalf("following %+v, chatting %+v", follower.UserMessage, chat.UserMessage)
	}
	close(gate)
	var text strings.Builder
	for i := 0; ; i++ {
		select {
		case ev := <-follower.Events():
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			if ev.Done != nil {
				if text.String() != strings.Join(want, "") || ev.Done.Message.Content != text.String() {
					t.Fatalf("followed %q, done %q", text.String(), ev.Done.Message.Content)
				}
				if _, err := other.Follow(ctx, "acme", sid, 0, 0); !errors.Is(err, session.ErrNoReply) {
					t.Fatalf("follow after the reply: %v", err)
				}
				return
			}
			if ev.Index != i {
				t.Fatalf("token %d has index %d", i, ev.Index)
			}
			text.WriteString(ev.Text)
		case <-ctx.Done():
			t.Fatalf("followed %q, then nothing", text.String())
		}
	}
}

// sessionOwnedBy returns a new session id of tenant acme whose grain the
// cluster places on node owner.
func sessionOwnedBy(t *testing.T, c *testkit.Cluster, owner int) string {
	t.Helper()
	for {
		sid := uuid.NewString()
		identity, err := session.Identity("acme", sid)
		if err != nil {
			t.Fatal(err)
		}
		if c.Node(0).OwnerOf(identity, session.Kind) == c.Node(owner).RemoteAddr() {
			return sid
		}
	}
}
