package main

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/raftstore"
)

// openStore opens the node's store: the node-local Badger DB, or with
// --raft-addr a member of the raft-replicated store (docs/durability.md).
func openStore(cfg serveConfig, logger *slog.Logger) (persistence.Store, error) {
	if cfg.RaftAddr == "" {
		store, err := persistence.OpenBadger(persistence.BadgerOptions{Dir: cfg.DataDir, Logger: logger})
		if err != nil {
			return nil, usageError{fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)}
		}
		return store, nil
	}
	store, err := raftstore.Open(raftstore.Config{
		NodeID:    cfg.NodeName,
		Dir:       cfg.DataDir,
		BindAddr:  cfg.RaftAddr,
		Bootstrap: cfg.RaftBootstrap || len(cfg.Join) == 0,
		Logger:    logger,
	})
	if err != nil {
		return nil, usageError{fmt.Errorf("--raft-addr %s, --data-dir %s: %w", cfg.RaftAddr, cfg.DataDir, err)}
	}
	return store, nil
}

// voterReconciler makes every cluster member that runs a store member a
// raft voter, as Consul's leader reconciles Serf members into raft. Only
// the raft leader acts. Members that fail are not removed: a node that
// comes back (with its data or without) rejoins as the same voter.
type voterReconciler struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startVoterReconciler(store *raftstore.Store, member *cluster.Node, logger *slog.Logger) *voterReconciler {
	v := &voterReconciler{done: make(chan struct{})}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-v.done:
				return
			case <-tick.C:
			}
			if !store.IsLeader() {
				continue
			}
			voters := map[string]bool{}
			for _, id := range store.Voters() {
				voters[id] = true
			}
			for _, m := range member.Members() {
				if m.Raft == "" || voters[m.Name] {
					continue
				}
				if err := store.AddVoter(m.Name, m.Raft); err != nil {
					logger.Warn("adding raft voter", "member", m.Name, "addr", m.Raft, "err", err)
					continue
				}
				logger.Info("raft voter added", "member", m.Name, "addr", m.Raft)
			}
		}
	}()
	return v
}

func (v *voterReconciler) stop() {
	if v == nil {
		return
	}
	close(v.done)
	v.wg.Wait()
}
