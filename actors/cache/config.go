package cache

import (
	"errors"
	"log/slog"
	"time"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/persistence"
)

// Config is what every Cache activation on a node shares.
type Config struct {
	// Store keeps the entries. Required.
	Store persistence.KVStore
	// Quota returns a tenant's storage quota, which every Put carries to
	// the store; no quota when nil.
	Quota func(tenant string) persistence.Quota
	// Clock tells the time that TTLs are measured on; clock.Real when nil.
	Clock clock.Clock
	// IdleTimeout passivates a key that received nothing for this long.
	// Default 5 minutes.
	IdleTimeout time.Duration
	// StoreTimeout bounds one storage call. Default 5 s.
	StoreTimeout time.Duration
	// Logger receives the grain's logs; discarded when nil.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults; Store must still be set. A zero
// field of a Config takes its value from here.
func DefaultConfig() Config {
	return Config{
		Clock:        clock.Real,
		Quota:        func(string) persistence.Quota { return persistence.Quota{} },
		IdleTimeout:  5 * time.Minute,
		StoreTimeout: 5 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("cache config: Store is nil")
	case c.IdleTimeout < 0:
		return errors.New("cache config: IdleTimeout is negative")
	case c.StoreTimeout < 0:
		return errors.New("cache config: StoreTimeout is negative")
	}
	return nil
}
