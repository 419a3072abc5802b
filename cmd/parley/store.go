package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
	"github.com/parley-chat/parley/persistence/raftstore"
)

// Values of --store.
const (
	storeReplicated = "replicated"
	storeLocal      = "local"
)

// stores are what a node persists to. sessions holds chat sessions and
// cache entries; limits holds rate-limiter windows. With --store
// replicated, sessions is a member of the raft-replicated store and limits
// a node-local Badger DB under <data-dir>/ratelimit: windows last a minute,
// and copying every counter through consensus would spend the group's
// write budget on state whose loss costs at most one extra window of
// budget (docs/rate-limiting.md). With --store local both are one
// node-local Badger DB.
type stores struct {
	sessions persistence.Store
	limits   persistence.Store
}

// openStores opens the node's stores under cfg.DataDir.
func openStores(cfg serveConfig, sec *nodeSecurity, logger *slog.Logger) (stores, error) {
	if cfg.Store == storeLocal {
		store, err := badgerstore.Open(badgerstore.Options{Dir: cfg.DataDir, Logger: logger})
		if err != nil {
			return stores{}, usageError{fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)}
		}
		return stores{sessions: store, limits: store}, nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "MANIFEST")); err == nil {
		logger.Warn("the data dir holds a node-local store (--store local) that the replicated store does not read; its sessions are not served", "dataDir", cfg.DataDir)
	}
	rcfg := raftstore.Config{
		NodeID:    cfg.NodeName,
		Dir:       cfg.DataDir,
		BindAddr:  cfg.RaftAddr,
		Bootstrap: cfg.RaftBootstrap || len(cfg.Join) == 0,
		Logger:    logger,
	}
	if sec != nil {
		rcfg.ServerTLS = sec.identity.ServerConfig()
		rcfg.ClientTLS = sec.identity.ClientConfig()
		rcfg.OnTLSRefused = func(remote string, err error) { sec.identity.Refused("raft", remote, err) }
	}
	replicated, err := raftstore.Open(rcfg)
	if err != nil {
		return stores{}, usageError{fmt.Errorf("--raft-addr %s, --data-dir %s: %w", cfg.RaftAddr, cfg.DataDir, err)}
	}
	limits, err := badgerstore.Open(badgerstore.Options{
		Dir: filepath.Join(cfg.DataDir, "ratelimit"),
		// A SIGKILL loses nothing without fsync (the kernel holds the
		// pages); a power cut may lose the last seconds of counters.
		NoSync: true,
		// Small entries that live minutes: small memtables and caches
		// (docs/rate-limiting.md, Memory per key).
		Small:  true,
		Logger: logger,
	})
	if err != nil {
		_ = replicated.Close()
		return stores{}, usageError{fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)}
	}
	return stores{sessions: replicated, limits: limits}, nil
}

// replicated is the raft store member, nil with --store local.
func (s stores) replicated() *raftstore.Store {
	rs, _ := s.sessions.(*raftstore.Store)
	return rs
}

// close closes both stores (once when they are one).
func (s stores) close() error {
	var errs []error
	if s.limits != s.sessions {
		errs = append(errs, s.limits.Close())
	}
	errs = append(errs, s.sessions.Close())
	return errors.Join(errs...)
}

// startVoterReconciler keeps the replicated store's voters in step with
// the cluster's members (raftstore.Reconciler).
func startVoterReconciler(store *raftstore.Store, member *cluster.Node, deadAfter time.Duration, logger *slog.Logger) *raftstore.Reconciler {
	return raftstore.StartReconciler(store, raftstore.ReconcilerConfig{
		Members: func() map[string]string {
			members := map[string]string{} // name -> raft address
			for _, m := range member.Members() {
				if m.Raft != "" {
					members[m.Name] = m.Raft
				}
			}
			return members
		},
		DeadAfter: deadAfter,
		Logger:    logger,
	})
}
