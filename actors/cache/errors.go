package cache

import "errors"

// Errors of Client, Identity and ParseIdentity, one per way a request can
// fail, so that the HTTP edge maps each to its status with errors.Is.
var (
	// ErrInvalidKey: the tenant id or the key is malformed (HTTP 400).
	// Nothing reached a grain or storage.
	ErrInvalidKey = errors.New("invalid cache key")
	// ErrValueTooLarge: the value is over MaxValueBytes (HTTP 413).
	// Nothing was stored.
	ErrValueTooLarge = errors.New("cache value too large")
	// ErrInvalidTTL: the TTL is negative, under MinTTL or over MaxTTL
	// (HTTP 400). Nothing was stored.
	ErrInvalidTTL = errors.New("invalid cache ttl")
	// ErrUnavailable: the grain could not be reached in time, or its
	// storage failed (HTTP 503). A failed Put or Delete may or may not have
	// taken effect; retrying it is safe, since both are idempotent. The
	// cause stays in the chain (cluster.ErrTimeout, cluster.ErrUnavailable…).
	ErrUnavailable = errors.New("cache unavailable")
)
