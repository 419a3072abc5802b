package edge

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
)

// A client that stops reading cannot make the edge buffer without bound:
// once StreamBuffer events wait, the stream is abandoned (overflow closes)
// and further tokens are dropped, not queued.
func TestReplyStreamBufferIsBounded(t *testing.T) {
	s := &server{cfg: Config{System: testkit.NewActorSystem(t), StreamBuffer: 2}}
	rs := s.openStream()
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
