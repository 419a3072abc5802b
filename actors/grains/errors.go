package grains

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/persistence"
)

// Failure codes, in Failure.Code: one per sentinel below.
const (
	CodeInvalidArgument = "invalid_argument"
	CodeConflict        = "conflict"
	CodeUnavailable     = "unavailable"
	CodeQuotaExceeded   = "quota_exceeded"
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
	// ErrQuotaExceeded: the write would pass one of the tenant's storage
	// quotas (QuotaOf names it). Nothing changed; it can succeed once the
	// tenant deletes data or data expires.
	ErrQuotaExceeded = errors.New("quota exceeded")
)

// Error is a failure in a grain's or a client's own words: Error() is
// Message alone, and errors.Is sees Kind, one of the sentinels above.
// Clients declare their finer sentinels as *Error values.
type Error struct {
	Kind    error
	Message string
	// Quota is the quota an ErrQuotaExceeded failure names; "" otherwise.
	Quota string
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
	case CodeQuotaExceeded:
		kind = ErrQuotaExceeded
	}
	return &Error{Kind: kind, Message: f.GetMessage(), Quota: f.GetQuota()}
}

// QuotaOf returns the quota an ErrQuotaExceeded error names, or "".
func QuotaOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Quota
	}
	return ""
}

// StoreFailure is a grain's answer when a storage call for what failed
// with err: quota_exceeded, naming the quota, for a write the store
// refused over quota, and unavailable for anything else (the cause goes
// to the grain's log, never to the caller).
func StoreFailure(what string, err error) *Failure {
	if quota := persistence.ExceededQuota(err); quota != "" {
		return &Failure{Code: CodeQuotaExceeded, Message: fmt.Sprintf("%s: the tenant's %s quota is used up", what, quota), Quota: quota}
	}
	return &Failure{Code: CodeUnavailable, Message: fmt.Sprintf("%s: storage unavailable", what)}
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
