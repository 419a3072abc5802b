package persistence

import (
	"context"
	"time"
)

// KVKey names one key-value entry: Space separates users of the KV (the
// cache, the rate limiter) so that their keys can never collide, and Key is
// free text (it may hold ':' or '/', never NUL). The Badger store keeps it
// under Tenant:k:Space:Key, a key shape no session key can take.
type KVKey struct {
	Tenant string
	Space  string
	Key    string
}

// The spaces Parley uses.
const (
	SpaceCache     = "cache"
	SpaceRateLimit = "ratelimit"
)

// KVStore keeps small values with an optional expiry.
type KVStore interface {
	// Get returns the value stored under key, or ok == false when there is
	// none or it expired at or before now. A miss is not an error. The
	// returned slice belongs to the caller.
	Get(ctx context.Context, key KVKey, now time.Time) (value []byte, expiresAt time.Time, ok bool, err error)
	// Put stores value under key until expiresAt (the zero time means
	// forever). The store keeps its own copy of value. When Put returns nil
	// the value is durable. A Put that would pass opts.Quota fails with a
	// *QuotaError and writes nothing.
	Put(ctx context.Context, key KVKey, value []byte, expiresAt time.Time, opts PutOptions) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key KVKey) error
}
