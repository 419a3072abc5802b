package testkit

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// DefaultTimeout is how long Expect waits when the test passes 0.
const DefaultTimeout = 3 * time.Second

// Probe is an actor owned by a test. Every user message it receives is
// queued for the test to take with Expect*; Proto.Actor's lifecycle messages
// are dropped, except *actor.Terminated for PIDs the probe watches.
//
// A Probe is used from the test goroutine; its actor runs on the system's
// dispatcher. It is stopped when the test ends.
type Probe struct {
	t      testing.TB
	system *actor.ActorSystem
	pid    *actor.PID
	inbox  chan Envelope
	last   Envelope
}

// Envelope is one message the probe received and who sent it (nil when the
// sender did not say).
type Envelope struct {
	Message any
	Sender  *actor.PID
}

// probeWatch asks the probe's actor to watch a PID.
type probeWatch struct {
	pid  *actor.PID
	done chan struct{}
}

// inboxSize bounds what a probe holds; a test that lets more than this pile
// up unread fails instead of hanging the sender.
const inboxSize = 1024

// NewProbe spawns a probe on system.
func NewProbe(t testing.TB, system *actor.ActorSystem) *Probe {
	t.Helper()
	p := &Probe{t: t, system: system, inbox: make(chan Envelope, inboxSize)}
	pid, err := system.Root.SpawnNamed(actor.PropsFromFunc(p.receive), "testkit-probe-"+system.ProcessRegistry.NextId())
	if err != nil {
		t.Fatalf("testkit: spawn probe: %v", err)
	}
	p.pid = pid
	t.Cleanup(func() { _ = system.Root.StopFuture(pid).Wait() })
	return p
}

func (p *Probe) receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
		return
	case probeWatch:
		ctx.Watch(msg.pid)
		close(msg.done)
		return
	}
	select {
	case p.inbox <- Envelope{Message: ctx.Message(), Sender: ctx.Sender()}:
	default:
		p.t.Errorf("testkit: probe %s holds %d unread messages; dropping %T", p.pid, inboxSize, ctx.Message())
	}
}

// PID is the probe's address: give it to the actor under test as the place
// to send replies or notifications.
func (p *Probe) PID() *actor.PID { return p.pid }

// Send delivers msg to pid with no sender, as a fire-and-forget tell.
func (p *Probe) Send(pid *actor.PID, msg any) { p.system.Root.Send(pid, msg) }

// Request delivers msg to pid with the probe as its sender, so the reply
// (ctx.Respond) comes back to the probe: take it with Expect.
func (p *Probe) Request(pid *actor.PID, msg any) {
	p.system.Root.RequestWithCustomSender(pid, msg, p.pid)
}

// Reply answers the sender of the last message the probe took, as an actor
// calling ctx.Respond would.
func (p *Probe) Reply(msg any) {
	p.t.Helper()
	if p.last.Sender == nil {
		p.t.Fatalf("testkit: Reply(%T): the last message had no sender", msg)
	}
	p.system.Root.Send(p.last.Sender, msg)
}

// Watch makes the probe watch pid; when pid stops, the probe receives an
// *actor.Terminated (see ExpectTerminated).
func (p *Probe) Watch(pid *actor.PID) {
	done := make(chan struct{})
	p.system.Root.Send(p.pid, probeWatch{pid: pid, done: done})
	<-done
}

// Expect waits up to timeout (DefaultTimeout when 0) for the next message
// and returns it; the test fails if none arrives.
func (p *Probe) Expect(timeout time.Duration) Envelope {
	p.t.Helper()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	select {
	case env := <-p.inbox:
		p.last = env
		return env
	case <-time.After(timeout):
		p.t.Fatalf("testkit: probe %s: no message within %s", p.pid, timeout)
		return Envelope{}
	}
}

// ExpectNoMessage fails the test if a message arrives within d. It is the
// one place a test waits on purpose: keep d short (tens of milliseconds).
func (p *Probe) ExpectNoMessage(d time.Duration) {
	p.t.Helper()
	select {
	case env := <-p.inbox:
		p.t.Fatalf("testkit: probe %s: expected no message for %s, got %T %v", p.pid, d, env.Message, env.Message)
	case <-time.After(d):
	}
}

// ExpectTerminated waits for the *actor.Terminated of a watched pid.
func (p *Probe) ExpectTerminated(pid *actor.PID, timeout time.Duration) {
	p.t.Helper()
	got := ExpectMessage[*actor.Terminated](p, timeout)
	if !got.Who.Equal(pid) {
		p.t.Fatalf("testkit: expected %s to terminate, got Terminated for %s", pid, got.Who)
	}
}

// ExpectMessage waits for the probe's next message and requires it to be a
// T, which it returns:
//
//	reply := testkit.ExpectMessage[*countergrain.Count](probe, time.Second)
func ExpectMessage[T any](p *Probe, timeout time.Duration) T {
	p.t.Helper()
	env := p.Expect(timeout)
	msg, ok := env.Message.(T)
	if !ok {
		var want T
		p.t.Fatalf("testkit: probe %s: expected %s, got %T %v", p.pid, typeName(want), env.Message, env.Message)
	}
	return msg
}

func typeName[T any](v T) string {
	if t := reflect.TypeOf(v); t != nil {
		return t.String()
	}
	return fmt.Sprintf("%T", (*T)(nil))[1:]
}
