package cache

import (
	"fmt"
	"time"
)

// Limits on entries. The grain enforces them on every Put whoever sends it;
// Client checks them first so that a bad request never costs a grain call.
const (
	// MaxValueBytes bounds a value, as the HTTP edge bounds a request body:
	// an entry is held in its grain's memory while the grain is active.
	MaxValueBytes = 64 << 10
	// DefaultTTL is what a Put with TTL 0 gets: an hour, as the plan's
	// Workers KV cache.
	DefaultTTL = 3600 * time.Second
	// MinTTL is the shortest TTL; shorter ones are more likely a unit
	// mistake (nanoseconds for seconds) than a wish.
	MinTTL = time.Second
	// MaxTTL is the longest TTL: the cache is not a database, and every
	// entry leaves the disk within MaxTTL plus one sweep interval.
	MaxTTL = 30 * 24 * time.Hour
)

// checkValue returns ErrValueTooLarge for a value over MaxValueBytes.
func checkValue(value []byte) error {
	if len(value) > MaxValueBytes {
		return fmt.Errorf("%w: %d bytes, over the %d limit", ErrValueTooLarge, len(value), MaxValueBytes)
	}
	return nil
}

// effectiveTTL returns the TTL an entry gets: DefaultTTL for 0, ttl itself
// within MinTTL..MaxTTL, and ErrInvalidTTL otherwise.
func effectiveTTL(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return DefaultTTL, nil
	case ttl < MinTTL || ttl > MaxTTL:
		return 0, fmt.Errorf("%w: %s is outside %s..%s (0 means %s)", ErrInvalidTTL, ttl, MinTTL, MaxTTL, DefaultTTL)
	}
	return ttl, nil
}
