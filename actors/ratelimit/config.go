package ratelimit

import (
	"errors"
	"log/slog"
	"time"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/persistence"
)

// Config is what every RateLimiter activation on a node shares.
type Config struct {
	// Store keeps the counters between activations. Required.
	Store persistence.KVStore
	// Clock tells the time for every window and schedules write-behind and
	// passivation; clock.Real when nil.
	Clock clock.Clock
	// IdleTimeout passivates a limiter that received nothing for this
	// long. Default 2 minutes: by then its sliding minute is empty or
	// nearly so, and its counters are on disk.
	IdleTimeout time.Duration
	// FlushInterval bounds how long changed counters wait in memory before
	// they are written (write-behind): at most one write per interval per
	// key, never one per request. Default 1 s. This is also what a crash
	// can forget.
	FlushInterval time.Duration
	// StoreTimeout bounds one storage call. Default 1 s.
	StoreTimeout time.Duration
	// Crowded, when set, reports whether the node hosts more limiters
	// than it should (parley serve: more than --limiter-max-active). On a
	// crowded node a limiter writes its counters after a quarter of
	// FlushInterval and passivates once they are written and it has
	// received nothing for that quarter, instead of after IdleTimeout,
	// so that a flood of distinct keys costs memory in proportion to the
	// bound, not to the keys. None when nil.
	Crowded func() bool
	// Logger receives the grain's logs; discarded when nil.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults; Store must still be set. A zero
// field of a Config takes its value from here.
func DefaultConfig() Config {
	return Config{
		Clock:         clock.Real,
		IdleTimeout:   2 * time.Minute,
		FlushInterval: time.Second,
		StoreTimeout:  time.Second,
		Logger:        slog.New(slog.DiscardHandler),
	}
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("ratelimit config: Store is nil")
	case c.IdleTimeout < 0:
		return errors.New("ratelimit config: IdleTimeout is negative")
	case c.FlushInterval < 0:
		return errors.New("ratelimit config: FlushInterval is negative")
	case c.StoreTimeout < 0:
		return errors.New("ratelimit config: StoreTimeout is negative")
	}
	return nil
}
