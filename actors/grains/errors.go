package grains

import (
	"context"
	"errors"
	"fmt"
)

// Failure codes, in Failure.Code: one per sentinel below.
const (
	CodeInvalidArgument = "invalid_argument"
	CodeConflict        = "conflict"
	CodeUnavailable     = "unavailable"
)

// The errors every typed client reports, whatever the grain kind, so that
// a caller (the HTTP edge) maps each to its answer with errors.Is. A
// client's own, finer errors (cache.ErrInvalidKey…) wrap one of these.
var (
	// ErrInvalidArgument: the request or the identity is malformed.
	// Nothing changed, and sending it again will not help.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrConflict: the grain's state refuses the request for now (a
	// session's reply is already in progress). Nothing changed; the same
	// request can succeed later.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the grain could not be reached in time, or its
	// storage failed. A write may or may not have taken effect; the
	// cause stays in the chain (cluster.ErrTimeout, cluster.ErrHostLost…).
	ErrUnavailable = errors.New("unavailable")
)

// Error is a failure in a grain's or a client's own words: Error() is
// Message alone, and errors.Is sees Kind, one of the sentinels above.
// Clients declare their finer sentinels as *Error values.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns Kind.
func (e *Error) Unwrap() error { return e.Kind }

// Failed turns a grain's Failure into an *Error of the sentinel its code
// names. A code this version does not know (a newer node in a rolling
// upgrade) counts as unavailable, the one answer that is safe to retry.
func Failed(f *Failure) error {
	kind := ErrUnavailable
	switch f.GetCode() {
	case CodeInvalidArgument:
		kind = ErrInvalidArgument
	case CodeConflict:
		kind = ErrConflict
	}
	return &Error{Kind: kind, Message: f.GetMessage()}
}

// CallFailed wraps the error of a Requester call that got no answer: the
// caller's own cancellation stays a cancellation (nothing is unavailable),
// anything else is ErrUnavailable with its cause kept in the chain.
func CallFailed(what string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}
