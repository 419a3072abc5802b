// Package clock is the seam through which grains, the rate limiter and the
// cache read time. Production code uses Real; tests use testkit.FakeClock and
// advance it by hand, so retention, TTLs and sliding windows are tested without
// sleeping.
package clock

import "time"

// Clock tells the time and schedules callbacks.
//
// Implementations are safe for concurrent use. AfterFunc callbacks run on a
// goroutine that is not the caller's and must not block: grains use them only
// to send themselves a message.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once, after d has elapsed on this clock.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a callback scheduled by AfterFunc.
type Timer interface {
	// Stop prevents the callback from running; it reports whether it did so.
	Stop() bool
}

// Real is the wall clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

var _ Clock = realClock{}
