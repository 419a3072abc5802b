package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
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
func openStores(cfg serveConfig, logger *slog.Logger) (stores, error) {
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
	replicated, err := raftstore.Open(raftstore.Config{
		NodeID:    cfg.NodeName,
		Dir:       cfg.DataDir,
		BindAddr:  cfg.RaftAddr,
		Bootstrap: cfg.RaftBootstrap || len(cfg.Join) == 0,
		Logger:    logger,
	})
	if err != nil {
		return stores{}, usageError{fmt.Errorf("--raft-addr %s, --data-dir %s: %w", cfg.RaftAddr, cfg.DataDir, err)}
	}
	limits, err := badgerstore.Open(badgerstore.Options{
		Dir: filepath.Join(cfg.DataDir, "ratelimit"),
		// A SIGKILL loses nothing without fsync (the kernel holds the
		// pages); a power cut may lose the last seconds of counters.
		NoSync: true,
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

// Voter upkeep, as Consul's leader and autopilot do it.
const (
	// reconcileInterval is how often the raft leader compares the voters
	// with the cluster's members.
	reconcileInterval = time.Second
	// minVoters: dead voters are removed only while at least this many
	// voters stay. Three voters survive one loss; removing the dead one of
	// three would not add to that, and would make its return a re-add.
	minVoters = 3
)

// voterReconciler keeps the replicated store's voters in step with the
// cluster's members, as Consul's leader reconciles Serf members into raft
// and autopilot cleans up dead servers. Only the raft leader acts:
//   - every member that runs a store member is made a voter;
//   - a voter that has not been a member for deadAfter (failed, or left for
//     good) is removed, one per round, while at least minVoters stay: when a
//     replacement node has joined, the dead one stops counting towards the
//     quorum. A node that returns within deadAfter (a restart, a disk
//     swap) stays the same voter; one that returns later is added again.
type voterReconciler struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startVoterReconciler(store *raftstore.Store, member *cluster.Node, deadAfter time.Duration, logger *slog.Logger) *voterReconciler {
	v := &voterReconciler{done: make(chan struct{})}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		tick := time.NewTicker(reconcileInterval)
		defer tick.Stop()
		absent := map[string]time.Time{} // voter -> first seen missing from the members
		for {
			select {
			case <-v.done:
				return
			case <-tick.C:
			}
			if !store.IsLeader() {
				clear(absent)
				continue
			}
			members := map[string]string{} // name -> raft address
			for _, m := range member.Members() {
				if m.Raft != "" {
					members[m.Name] = m.Raft
				}
			}
			voters := store.Voters()
			for _, name := range slices.Sorted(maps.Keys(members)) {
				if slices.Contains(voters, name) {
					continue
				}
				if err := store.AddVoter(name, members[name]); err != nil {
					logger.Warn("adding raft voter", "member", name, "addr", members[name], "err", err)
					continue
				}
				logger.Info("raft voter added", "member", name, "addr", members[name])
			}
			dead := deadVoters(voters, members, absent, time.Now(), deadAfter)
			if len(dead) > 0 && len(voters)-1 >= minVoters {
				if err := store.RemoveServer(dead[0]); err != nil {
					logger.Warn("removing dead raft voter", "member", dead[0], "err", err)
					continue
				}
				delete(absent, dead[0])
				logger.Warn("dead raft voter removed", "member", dead[0], "absentFor", deadAfter.String(), "voters", len(voters)-1)
			}
		}
	}()
	return v
}

// deadVoters updates absent (when each voter was first seen missing from
// members; forgotten once it is back) and returns, sorted, the voters
// missing for at least deadAfter at now.
func deadVoters(voters []string, members map[string]string, absent map[string]time.Time, now time.Time, deadAfter time.Duration) []string {
	for name := range absent {
		if _, back := members[name]; back || !slices.Contains(voters, name) {
			delete(absent, name)
		}
	}
	var dead []string
	for _, name := range voters {
		if _, ok := members[name]; ok {
			continue
		}
		since, seen := absent[name]
		if !seen {
			absent[name] = now
			since = now
		}
		if now.Sub(since) >= deadAfter {
			dead = append(dead, name)
		}
	}
	slices.Sort(dead)
	return dead
}

func (v *voterReconciler) stop() {
	if v == nil {
		return
	}
	close(v.done)
	v.wg.Wait()
}
