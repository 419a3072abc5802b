package raftstore

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by Store beside those of package persistence
// (persistence.ErrSequenceConflict, persistence.ErrInvalidKey and
// persistence.ErrClosed keep their meaning). Callers compare with errors.Is.
var (
	// ErrUnavailable: the group could not carry out the request in time. A
	// write that fails with it was not acknowledged, but its outcome is
	// unknown: it may have been committed anyway (a leader that loses its
	// quorum or a connection that breaks after the request left cannot tell).
	// Callers reload what they depend on (a session's Meta) and retry; the
	// conditional append keeps a retried append from landing twice.
	ErrUnavailable = errors.New("replicated store unavailable")
	// ErrNoQuorum: no leader backed by a majority of the voters answered
	// within Config.ApplyTimeout (or the caller's deadline), for example
	// because two of three voters are down. It wraps ErrUnavailable.
	ErrNoQuorum = fmt.Errorf("%w: no quorum", ErrUnavailable)
	// ErrSweepAhead: a sweep's time is more than MaxSweepLead ahead of the
	// leader's clock, as when the clock of the node that asked jumped.
	// Nothing was deleted.
	ErrSweepAhead = errors.New("sweep time ahead of the leader's clock")
)

// MaxSweepLead is how far ahead of the leader's clock a sweep's time may be:
// clocks of healthy nodes differ by far less, and a sweep further ahead
// would delete what has not expired.
const MaxSweepLead = time.Minute

// errNotLeader is what a member answers to a forwarded request when it is no
// longer the leader. It never reaches callers: the request was not carried
// out, so the sender looks for the new leader and tries again.
var errNotLeader = errors.New("not the leader")
