package testkit

import (
	"slices"
	"sync"
	"time"

	"github.com/parley-chat/parley/actors/clock"
)

// FakeClock is a clock.Clock that moves only when the test says so. Timers
// scheduled with AfterFunc fire, in order of due time, from Advance or Set,
// on the goroutine that called them; Now reads the fired timer's due time
// while its callback runs.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever timers change
}

var _ clock.Clock = (*FakeClock)(nil)

// Epoch is where a FakeClock starts when NewFakeClock gets the zero time: a
// fixed instant, so tests print the same times every run.
var Epoch = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// NewFakeClock returns a clock reading start (Epoch when start is zero).
func NewFakeClock(start time.Time) *FakeClock {
	if start.IsZero() {
		start = Epoch
	}
	return &FakeClock{now: start, changed: make(chan struct{})}
}

type fakeTimer struct {
	c   *FakeClock
	due time.Time
	f   func()
}

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when the clock has advanced by d.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, due: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.notifyLocked()
	return t
}

// Stop cancels the timer; it reports whether the timer had not fired yet.
func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	c.notifyLocked()
	return true
}

// Advance moves the clock forward by d, firing every timer that falls due on
// the way (a callback that schedules a new timer inside the window sees it
// fire too).
func (c *FakeClock) Advance(d time.Duration) {
	c.Set(c.Now().Add(d))
}

// Set moves the clock to t (never backwards: an earlier t is ignored),
// firing the timers due by then.
func (c *FakeClock) Set(t time.Time) {
	for {
		c.mu.Lock()
		next := c.nextDueLocked(t)
		if next == nil {
			if t.After(c.now) {
				c.now = t
			}
			c.mu.Unlock()
			return
		}
		c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool { return x == next })
		if next.due.After(c.now) {
			c.now = next.due
		}
		c.notifyLocked()
		c.mu.Unlock()
		next.f()
	}
}

func (c *FakeClock) nextDueLocked(limit time.Time) *fakeTimer {
	var next *fakeTimer
	for _, x := range c.timers {
		if x.due.After(limit) {
			continue
		}
		if next == nil || x.due.Before(next.due) {
			next = x
		}
	}
	return next
}

// Timers is the number of timers scheduled and not yet fired or stopped.
func (c *FakeClock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitForTimers blocks until at least n timers are scheduled or timeout
// passes, and reports whether they were. Actors schedule timers on their own
// goroutine; a test waits for them before it advances the clock, so that
// the advance is not lost.
func (c *FakeClock) WaitForTimers(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if len(c.timers) >= n {
			c.mu.Unlock()
			return true
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

func (c *FakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}
