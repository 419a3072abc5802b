package cache

import "github.com/parley-chat/parley/actors/grains"

// Errors of Client, Identity and ParseIdentity, one per way a request can
// be refused, so that the HTTP edge maps each to its status with
// errors.Is. Each is also grains.ErrInvalidArgument. A grain that could
// not be reached in time, or whose storage failed, is
// grains.ErrUnavailable (HTTP 503): a failed Put or Delete may or may not
// have taken effect, and retrying it is safe, since both are idempotent.
var (
	// ErrInvalidKey: the tenant id or the key is malformed (HTTP 400).
	// Nothing reached a grain or storage.
	ErrInvalidKey = &grains.Error{Kind: grains.ErrInvalidArgument, Message: "invalid cache key"}
	// ErrValueTooLarge: the value is over MaxValueBytes (HTTP 413).
	// Nothing was stored.
	ErrValueTooLarge = &grains.Error{Kind: grains.ErrInvalidArgument, Message: "cache value too large"}
	// ErrInvalidTTL: the TTL is negative, under MinTTL or over MaxTTL
	// (HTTP 400). Nothing was stored.
	ErrInvalidTTL = &grains.Error{Kind: grains.ErrInvalidArgument, Message: "invalid cache ttl"}
)
