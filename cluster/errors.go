package cluster

import (
	"errors"
	"fmt"
)

// Errors returned by Node. Callers compare with errors.Is.
var (
	// ErrNotReady: the node has not joined its cluster yet, or is leaving.
	ErrNotReady = errors.New("node not ready")
	// ErrShuttingDown: the node is leaving or stopped; no new grain calls.
	ErrShuttingDown = errors.New("node shutting down")
	// ErrTimeout: a grain call did not answer before its deadline.
	ErrTimeout = errors.New("grain call timed out")
	// ErrUnavailable: no member could host the grain before the deadline,
	// typically while the cluster re-forms after a node was lost.
	ErrUnavailable = errors.New("grain unavailable")
	// ErrHostLost: the member running the grain failed while the call
	// waited for its reply, so whether the call took effect is unknown.
	// It wraps ErrUnavailable.
	ErrHostLost = fmt.Errorf("%w: the grain's node failed mid-call; the call may or may not have taken effect", ErrUnavailable)
)
