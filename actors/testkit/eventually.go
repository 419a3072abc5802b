package testkit

import (
	"testing"
	"time"
)

// Eventually calls check every 10 ms until it returns nil, and fails the
// test with check's last error if that has not happened within timeout.
// Use it for conditions other goroutines or nodes bring about (membership
// converging, a grain re-activating), never to let fake time pass.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	if err := Poll(timeout, check); err != nil {
		t.Fatalf("testkit: not true within %s: %v", timeout, err)
	}
}

// Poll is Eventually without the test: it returns nil as soon as check
// does, or check's last error once timeout has passed.
func Poll(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
