package ratelimit

import "errors"

// Errors returned by this package. Callers compare with errors.Is.
var (
	// ErrBadIdentity: a tenant, scope or id that is not well formed. Such
	// an identity never reaches a grain or storage.
	ErrBadIdentity = errors.New("invalid rate limiter identity")
	// ErrBadRequest: limits, cost or policy out of range. Nothing was
	// counted.
	ErrBadRequest = errors.New("invalid rate limit request")
)

// Failure codes, in Failure.Code.
const (
	// CodeInvalidArgument: the identity or the request is malformed;
	// nothing was counted.
	CodeInvalidArgument = "invalid_argument"
	// CodeUnavailable: the grain could not load its counters; nothing was
	// counted. A Limiter treats the scope as unreachable.
	CodeUnavailable = "unavailable"
)
