package ratelimit

// Observer is told what a Limiter saw, for metrics.
//
// A Limiter calls it from the goroutine running Check, after every scope
// has answered or timed out, once per scope: Decision for a scope that
// answered, Unavailable for one that could not be reached in time. Many
// Checks run at once, so implementations must be safe for concurrent use,
// and they must not block: they are on the request path.
type Observer interface {
	// Decision reports one scope's answer.
	Decision(scope Scope, allowed bool)
	// Unavailable reports a scope whose limiter did not answer in time (or
	// answered that its storage failed).
	Unavailable(scope Scope)
}

// noObserver is the Observer of a Limiter given none.
type noObserver struct{}

func (noObserver) Decision(Scope, bool) {}
func (noObserver) Unavailable(Scope)    {}

var _ Observer = noObserver{}
