package testkit_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/testkit"
)

// echo answers every string with the same string.
func echo(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case string:
		ctx.Respond(m)
	}
}

func TestProbeRequestExpectAndNoMessage(t *testing.T) {
	system := actor.NewActorSystem()
	probe := testkit.NewProbe(t, system)
	pid := system.Root.Spawn(actor.PropsFromFunc(echo))

	probe.Request(pid, "hello")
	if got := testkit.ExpectMessage[string](probe, time.Second); got != "hello" {
		t.Fatalf("got %q", got)
	}
	probe.Send(pid, "no sender, no reply")
	probe.ExpectNoMessage(50 * time.Millisecond)
}

func TestProbeReplyAnswersTheLastSender(t *testing.T) {
	system := actor.NewActorSystem()
	probe := testkit.NewProbe(t, system)

	future := system.Root.RequestFuture(probe.PID(), "ping", time.Second)
	if got := probe.Expect(time.Second); got.Message != "ping" || got.Sender == nil {
		t.Fatalf("probe got %+v", got)
	}
	probe.Reply("pong")
	res, err := future.Result()
	if err != nil || res != "pong" {
		t.Fatalf("requester got %v, %v", res, err)
	}
}

func TestProbeWatchExpectTerminated(t *testing.T) {
	system := actor.NewActorSystem()
	probe := testkit.NewProbe(t, system)
	pid := system.Root.Spawn(actor.PropsFromFunc(echo))

	probe.Watch(pid)
	system.Root.Stop(pid)
	probe.ExpectTerminated(pid, time.Second)
}

// failures runs f against a testing.TB that records Fatalf instead of
// failing t, and returns what f reported.
func failures(t *testing.T, f func(tb testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msgs
}

type recorder struct {
	testing.TB
	msgs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func TestProbeFailsOnWrongTypeMissingAndUnexpectedMessages(t *testing.T) {
	system := actor.NewActorSystem()
	pid := system.Root.Spawn(actor.PropsFromFunc(echo))

	msgs := failures(t, func(tb testing.TB) {
		probe := testkit.NewProbe(tb, system)
		probe.Request(pid, "a string")
		testkit.ExpectMessage[int](probe, time.Second)
	})
	if len(msgs) != 1 || !strings.Contains(msgs[0], "expected int, got string") {
		t.Errorf("wrong type: %q", msgs)
	}

	msgs = failures(t, func(tb testing.TB) {
		testkit.NewProbe(tb, system).Expect(20 * time.Millisecond)
	})
	if len(msgs) != 1 || !strings.Contains(msgs[0], "no message within 20ms") {
		t.Errorf("missing message: %q", msgs)
	}

	msgs = failures(t, func(tb testing.TB) {
		probe := testkit.NewProbe(tb, system)
		probe.Request(pid, "surprise")
		probe.ExpectNoMessage(time.Second)
	})
	if len(msgs) != 1 || !strings.Contains(msgs[0], "expected no message") {
		t.Errorf("unexpected message: %q", msgs)
	}
}
