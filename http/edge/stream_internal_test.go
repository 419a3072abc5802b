package edge

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
)

// A client that stops reading cannot make the edge buffer without bound:
// once StreamBuffer events wait, the stream is abandoned (overflow closes)
// and further tokens are dropped, not queued. (A short grace: nobody reads.)
func TestReplyStreamBufferIsBounded(t *testing.T) {
	s := &server{cfg: Config{System: testkit.NewActorSystem(t), StreamBuffer: 2, SlowReaderGrace: time.Millisecond}}
	rs := s.openStream(true)
	defer s.closeStream(rs)
	for i := range 50 {
		s.cfg.System.Root.Send(rs.pid, &session.Token{Index: int32(i), Text: "x"})
	}
	select {
	case <-rs.overflow:
	case <-time.After(5 * time.Second):
		t.Fatal("a full buffer did not end the stream")
	}
	if n := len(rs.events); n != 2 {
		t.Fatalf("%d events buffered, want the bound 2", n)
	}
}

// A burst larger than the buffer (a replayed reply arrives all at once)
// reaches a client that reads; a stream:false reply keeps only its first
// token, so no length of reply fills its buffer. The grace is an hour, so
// only a reader that stopped, not a slow scheduler, could be abandoned.
func TestReplyStreamTakesABurstAClientReads(t *testing.T) {
	s := &server{cfg: Config{System: testkit.NewActorSystem(t), StreamBuffer: 2, SlowReaderGrace: time.Hour}}
	for _, tokens := range []bool{true, false} {
		rs := s.openStream(tokens)
		for i := range 500 {
			s.cfg.System.Root.Send(rs.pid, &session.Token{Index: int32(i), Text: "x"})
		}
		s.cfg.System.Root.Send(rs.pid, &session.ReplyDone{})
		got := 0
		for done := false; !done; {
			select {
			case ev := <-rs.events:
				switch ev.(type) {
				case *session.Token:
					got++
				case *session.ReplyDone:
					done = true
				}
			case <-rs.overflow:
				t.Fatalf("tokens %v: the stream was abandoned after %d tokens although the client read", tokens, got)
			}
		}
		want := 500
		if !tokens {
			want = 1
		}
		if got != want {
			t.Fatalf("tokens %v: %d tokens reached the handler, want %d", tokens, got, want)
		}
		s.closeStream(rs)
	}
}
