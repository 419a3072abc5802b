package main

import (
	"log/slog"
	"time"

	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/sweeper"
)

// startSweeper sweeps every store the node opened: the sessions and cache
// store by each tenant's retention, and the rate-limit counter store, whose
// expired windows would otherwise stay on disk for good (with --store local
// the two are one store, swept once).
func (s stores) startSweeper(clk clock.Clock, retention func(tenant string) session.Retention, logger *slog.Logger) *sweeper.Sweeper {
	return sweeper.Start(sweeper.Config{
		Stores:    map[string]persistence.Store{"sessions": s.sessions, "ratelimit": s.limits},
		Clock:     clk,
		Retention: func(tenant string) time.Duration { return retention(tenant).MaxAge },
		Logger:    logger,
	})
}
