package passivation_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/passivation"
	"github.com/parley-chat/parley/actors/testkit"
)

// idleActor passivates after a minute without messages, never while busy.
func idleActor(clk *testkit.FakeClock, busy *atomic.Bool) actor.Producer {
	return func() actor.Actor {
		var idle *passivation.Idle
		return actor.ReceiveFunc(func(ctx actor.Context) {
			switch ctx.Message().(type) {
			case *actor.Started:
				idle = passivation.Start(ctx, clk, time.Minute)
			case *actor.Stopping:
				idle.Stop()
			case passivation.Tick:
				if _, ok := idle.Check(ctx, busy.Load()); ok {
					ctx.Stop(ctx.Self())
				}
			case string:
				idle.Touch()
			}
		})
	}
}

func TestIdleGrainStopsOnlyAfterTheTimeoutWithoutActivityOrWork(t *testing.T) {
	system := testkit.NewActorSystem(t)
	clk := testkit.NewFakeClock(time.Time{})
	var busy atomic.Bool
	probe := testkit.NewProbe(t, system)
	pid := system.Root.Spawn(actor.PropsFromProducer(idleActor(clk, &busy)))
	probe.Watch(pid)

	step := func(d time.Duration) {
		t.Helper()
		if !clk.WaitForTimers(1, 5*time.Second) {
			t.Fatal("no reminder scheduled")
		}
		clk.Advance(d)
	}

	step(40 * time.Second)
	system.Root.Send(pid, "activity") // pushes passivation to +100 s
	probe.ExpectNoMessage(20 * time.Millisecond)
	step(20 * time.Second) // the first reminder, at +60 s: idle only 20 s
	probe.ExpectNoMessage(20 * time.Millisecond)

	busy.Store(true)
	step(time.Hour) // idle long enough, but busy
	probe.ExpectNoMessage(20 * time.Millisecond)

	busy.Store(false)
	step(time.Minute)
	probe.ExpectTerminated(pid, 5*time.Second)
}
