package ratelimit

import "github.com/parley-chat/parley/actors/grains"

// Errors returned by this package. Callers compare with errors.Is; both
// are grains.ErrInvalidArgument too.
var (
	// ErrBadIdentity: a tenant, scope or id that is not well formed. Such
	// an identity never reaches a grain or storage.
	ErrBadIdentity = &grains.Error{Kind: grains.ErrInvalidArgument, Message: "invalid rate limiter identity"}
	// ErrBadRequest: limits, cost or policy out of range. Nothing was
	// counted.
	ErrBadRequest = &grains.Error{Kind: grains.ErrInvalidArgument, Message: "invalid rate limit request"}
)
