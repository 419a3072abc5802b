package model

import "time"

// Observer is told about upstream calls, for metrics. Its methods are
// called from the goroutine running Stream, concurrently for concurrent
// replies, so they must be safe for concurrent use and must not block.
type Observer interface {
	// UpstreamFirstToken reports how long the model named took from the
	// request being sent to its first content delta.
	UpstreamFirstToken(model string, d time.Duration)
	// UpstreamError reports a failed call by its code (CodeRateLimited…).
	UpstreamError(model, code string)
}

// nopObserver is the Observer of a Chain given none.
type nopObserver struct{}

func (nopObserver) UpstreamFirstToken(string, time.Duration) {}
func (nopObserver) UpstreamError(string, string)             {}
