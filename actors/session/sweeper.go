package session

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/persistence"
)

// SweeperConfig configures the node's retention sweep.
type SweeperConfig struct {
	// Store is swept. Required.
	Store persistence.Store
	// Clock schedules sweeps and tells "now"; clock.Real when nil.
	Clock clock.Clock
	// Interval between sweeps. Default 10 minutes.
	Interval time.Duration
	// Retention gives each tenant's MaxAge; DefaultRetention when nil.
	Retention func(tenant string) Retention
	// Timeout bounds one sweep. Default 5 minutes.
	Timeout time.Duration
	// Logger receives a line per sweep that removed something.
	Logger *slog.Logger
}

// SweeperStats counts what a Sweeper did since it started.
type SweeperStats struct {
	Runs, Failures                int
	Messages, KVEntries, Sessions int
}

// Sweeper deletes, on a timer, what retention and TTLs have expired:
// messages past their tenant's MaxAge (already hidden from History) and
// expired KV entries, including in sessions nobody touches again.
type Sweeper struct {
	cfg SweeperConfig

	mu      sync.Mutex // held while a sweep runs, so Stop waits for it
	stopped bool
	timer   clock.Timer
	stats   SweeperStats
}

// StartSweeper schedules the first sweep one Interval from now.
func StartSweeper(cfg SweeperConfig) *Sweeper {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.Retention == nil {
		cfg.Retention = func(string) Retention { return DefaultRetention }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sweeper{cfg: cfg}
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
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	stats, err := s.cfg.Store.Sweep(ctx, s.cfg.Clock.Now(), func(tenant string) time.Duration {
		return s.cfg.Retention(tenant).MaxAge
	})
	cancel()
	s.stats.Runs++
	s.stats.Messages += stats.Messages
	s.stats.KVEntries += stats.KVEntries
	s.stats.Sessions += stats.Sessions
	switch {
	case err != nil && !errors.Is(err, persistence.ErrClosed):
		s.stats.Failures++
		s.cfg.Logger.Error("retention sweep failed; retrying next interval", "err", err)
	case stats.Messages+stats.KVEntries > 0:
		s.cfg.Logger.Info("retention sweep", "messages", stats.Messages, "kvEntries", stats.KVEntries, "sessionsEmptied", stats.Sessions)
	}
	s.timer = s.cfg.Clock.AfterFunc(s.cfg.Interval, s.run)
}

// Stats returns the totals so far.
func (s *Sweeper) Stats() SweeperStats {
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
