package session

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
)

// A reader that stops reading cannot make a reply buffer without bound:
// once Buffer events wait, the stream is abandoned and further tokens are
// dropped, not queued. (A short grace: nobody reads.)
func TestReplyStreamBufferIsBounded(t *testing.T) {
	c := NewClient(nil, testkit.NewActorSystem(t))
	r := c.openReply(true, 2, time.Millisecond)
	defer r.Close()
	for i := range 50 {
		c.system.Root.Send(r.pid, &Token{Index: int32(i), Text: "x"})
	}
	select {
	case <-r.Abandoned():
	case <-time.After(5 * time.Second):
		t.Fatal("a full buffer did not end the stream")
	}
	if n := len(r.events); n != 2 {
		t.Fatalf("%d events buffered, want the bound 2", n)
	}
}

// A burst larger than the buffer (a replayed reply arrives all at once)
// reaches a reader that reads; a reply without tokens keeps only its first
// token, so no length of reply fills its buffer. The grace is an hour, so
// only a reader that stopped, not a slow scheduler, could be abandoned.
func TestReplyStreamTakesABurstAClientReads(t *testing.T) {
	c := NewClient(nil, testkit.NewActorSystem(t))
	for _, tokens := range []bool{true, false} {
		r := c.openReply(tokens, 2, time.Hour)
		for i := range 500 {
			c.system.Root.Send(r.pid, &Token{Index: int32(i), Text: "x"})
		}
		c.system.Root.Send(r.pid, &ReplyDone{})
		got := 0
		for done := false; !done; {
			select {
			case ev := <-r.Events():
				if ev.Done != nil {
					done = true
				} else {
					got++
				}
			case <-r.Abandoned():
				t.Fatalf("tokens %v: the stream was abandoned after %d tokens although the client read", tokens, got)
			}
		}
		want := 500
		if !tokens {
			want = 1
		}
		if got != want {
			t.Fatalf("tokens %v: %d tokens reached the reader, want %d", tokens, got, want)
		}
		r.Close()
	}
}
