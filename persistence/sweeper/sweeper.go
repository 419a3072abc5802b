// Package sweeper is the node's expiry sweep: on a timer it asks every store
// the node opened to remove what has expired (persistence.Store.Sweep), so
// that expired data leaves the disk even where no request touches it again.
// Retention is enforced on reads at once (History skips messages past their
// tenant's age, Get misses expired entries); the sweep is what frees the
// space.
//
// The replicated store sweeps only on its raft leader, with the leader's
// clock and tenants config (persistence/raftstore); every node still runs a
// Sweeper, so whichever node leads sweeps.
package sweeper

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/persistence"
)

// Defaults of Config.
const (
	DefaultInterval = 10 * time.Minute // between sweeps
	DefaultTimeout  = 5 * time.Minute  // bounds one store's sweep
)

// Config configures a Sweeper. Zero fields take the defaults.
type Config struct {
	// Stores are swept, by name (the name goes into the logs), in name
	// order. A store listed under two names is swept once. Required.
	Stores map[string]persistence.Store
	// Clock schedules sweeps and tells "now"; clock.Real when nil.
	Clock clock.Clock
	// Interval between sweeps. Default DefaultInterval.
	Interval time.Duration
	// Timeout bounds one store's sweep. Default DefaultTimeout.
	Timeout time.Duration
	// Retention gives each tenant's message age limit (zero or less:
	// messages are kept); nil keeps every message, and only expired
	// key-value entries are removed.
	Retention func(tenant string) time.Duration
	// Logger receives a line per store sweep that removed something or
	// failed.
	Logger *slog.Logger
}

// Stats counts what a Sweeper did since it started, over all its stores.
type Stats struct {
	Runs, Failures                int // Runs counts rounds; Failures store sweeps that failed
	Messages, KVEntries, Sessions int
}

// Sweeper sweeps its stores every Interval until Stop.
type Sweeper struct {
	cfg    Config
	names  []string // of the distinct stores, in sweep order
	stores []persistence.Store

	mu      sync.Mutex // held while a sweep runs, so Stop waits for it
	stopped bool
	timer   clock.Timer
	stats   Stats
}

// Start schedules the first sweep one Interval from now. It panics when no
// store is given, a mistake in the node's setup.
func Start(cfg Config) *Sweeper {
	if len(cfg.Stores) == 0 {
		panic("sweeper: no stores")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retention == nil {
		cfg.Retention = func(string) time.Duration { return 0 }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sweeper{cfg: cfg}
	for _, name := range slices.Sorted(maps.Keys(cfg.Stores)) {
		store := cfg.Stores[name]
		if !slices.Contains(s.stores, store) {
			s.names = append(s.names, name)
			s.stores = append(s.stores, store)
		}
	}
	s.mu.Lock()
	s.timer = cfg.Clock.AfterFunc(cfg.Interval, s.run)
	s.mu.Unlock()
	return s
}

func (s *Sweeper) run() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	now := s.cfg.Clock.Now()
	for i, store := range s.stores {
		s.sweep(s.names[i], store, now)
	}
	s.stats.Runs++
	s.timer = s.cfg.Clock.AfterFunc(s.cfg.Interval, s.run)
}

// sweep sweeps one store and counts what it did. The caller holds mu.
func (s *Sweeper) sweep(name string, store persistence.Store, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	stats, err := store.Sweep(ctx, now, s.cfg.Retention)
	cancel()
	s.stats.Messages += stats.Messages
	s.stats.KVEntries += stats.KVEntries
	s.stats.Sessions += stats.Sessions
	switch {
	case err != nil && !errors.Is(err, persistence.ErrClosed):
		s.stats.Failures++
		s.cfg.Logger.Error("expiry sweep failed; retrying next interval", "store", name, "err", err)
	case stats.Messages+stats.KVEntries > 0:
		s.cfg.Logger.Info("expiry sweep", "store", name, "messages", stats.Messages, "kvEntries", stats.KVEntries, "sessionsEmptied", stats.Sessions)
	}
}

// Stats returns the totals so far.
func (s *Sweeper) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Stop cancels future sweeps and waits for one in progress. Safe to call
// more than once.
func (s *Sweeper) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.timer.Stop()
}
