package testkit_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/testkit"
)

func TestFakeClockFiresDueTimersInOrder(t *testing.T) {
	c := testkit.NewFakeClock(time.Time{})
	start := c.Now()
	if !start.Equal(testkit.Epoch) {
		t.Fatalf("starts at %s, want Epoch", start)
	}
	var fired []string
	var seen []time.Duration
	at := func(name string) func() {
		return func() {
			fired = append(fired, name)
			seen = append(seen, c.Now().Sub(start))
		}
	}
	c.AfterFunc(3*time.Second, at("3s"))
	c.AfterFunc(time.Second, at("1s"))
	stopped := c.AfterFunc(2*time.Second, at("2s"))
	c.AfterFunc(time.Hour, at("1h"))

	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	c.Advance(999 * time.Millisecond)
	if len(fired) != 0 {
		t.Fatalf("fired %v before any was due", fired)
	}
	c.Advance(5 * time.Second)
	if !slices.Equal(fired, []string{"1s", "3s"}) {
		t.Fatalf("fired %v, want [1s 3s]", fired)
	}
	if !slices.Equal(seen, []time.Duration{time.Second, 3 * time.Second}) {
		t.Errorf("callbacks saw Now at %v, want their due times", seen)
	}
	if got := c.Now().Sub(start); got != 5999*time.Millisecond {
		t.Errorf("clock at +%s after advancing 5.999s", got)
	}
	if c.Timers() != 1 {
		t.Errorf("%d timers pending, want the 1h one", c.Timers())
	}
	if stopped.Stop() {
		t.Error("second Stop reported true")
	}
}

func TestFakeClockTimerScheduledByACallbackFiresInTheSameAdvance(t *testing.T) {
	c := testkit.NewFakeClock(time.Time{})
	ticks := 0
	var tick func()
	tick = func() {
		ticks++
		c.AfterFunc(time.Minute, tick)
	}
	c.AfterFunc(time.Minute, tick)
	c.Advance(10 * time.Minute)
	if ticks != 10 {
		t.Fatalf("a self-rescheduling 1-minute timer fired %d times in 10 minutes", ticks)
	}
}

func TestFakeClockNeverGoesBack(t *testing.T) {
	c := testkit.NewFakeClock(time.Time{})
	c.Advance(time.Hour)
	c.Set(testkit.Epoch)
	if got := c.Now(); !got.Equal(testkit.Epoch.Add(time.Hour)) {
		t.Fatalf("Set to an earlier time moved the clock to %s", got)
	}
}

func TestFakeClockWaitForTimers(t *testing.T) {
	c := testkit.NewFakeClock(time.Time{})
	if c.WaitForTimers(1, 10*time.Millisecond) {
		t.Fatal("WaitForTimers reported a timer nobody scheduled")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.AfterFunc(time.Second, func() {})
	}()
	if !c.WaitForTimers(1, 5*time.Second) {
		t.Fatal("timer scheduled by another goroutine not seen")
	}
	wg.Wait()
}
