package raftstore

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// # Voter upkeep
//
// The Reconciler keeps the voters in step with the cluster's members, as
// Consul's leader reconciles Serf members into raft and autopilot cleans
// up dead servers. Only the raft leader acts, once per Interval:
//   - every member that runs a store member is made a voter, once it has
//     proved its name: with TLS, the leader dials the member's raft address
//     and adds it only if the certificate presented there names it
//     (VerifyPeer), so a gossip member cannot vote by advertising an
//     address, nor take over another member's name;
//   - a voter that has not been a member for DeadAfter (failed, or left for
//     good) is removed, one per round, while at least MinVoters stay: when
//     a replacement node has joined, the dead one stops counting towards
//     the quorum. A node that returns within DeadAfter (a restart, a disk
//     swap) stays the same voter; one that returns later is added again.

// ReconcilerConfig configures a Reconciler. Zero fields take the defaults
// given with each.
type ReconcilerConfig struct {
	// Members returns the cluster's live members that run a store member:
	// node name -> advertised raft address. Called from the reconciler's
	// goroutine; it must not block.
	Members func() map[string]string
	// DeadAfter is how long a voter may be missing from Members before it
	// is removed. Required.
	DeadAfter time.Duration
	// Interval is the time between two rounds (1s).
	Interval time.Duration
	// MinVoters is how many voters must stay after a removal (3: three
	// voters survive one loss; removing the dead one of three would not
	// add to that, and would make its return a re-add).
	MinVoters int
	// Logger receives a line per change and per refused member.
	Logger *slog.Logger
}

// voterStore is the part of *Store the reconciler drives.
type voterStore interface {
	IsLeader() bool
	Voters() []string
	AddVoter(id, addr string) error
	RemoveServer(id string) error
	VerifyPeer(ctx context.Context, name, addr string) error
	TLS() bool
}

var _ voterStore = (*Store)(nil)

// Reconciler is the voter upkeep of one member; see "Voter upkeep".
type Reconciler struct {
	store voterStore
	cfg   ReconcilerConfig

	absent  map[string]time.Time // voter -> first seen missing from the members
	refused map[string]string    // member -> "addr: reason" last logged

	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// StartReconciler starts the upkeep of s's voters. Stop ends it.
func StartReconciler(s *Store, cfg ReconcilerConfig) *Reconciler {
	r := newReconciler(s, cfg)
	r.wg.Add(1)
	go r.loop()
	return r
}

func newReconciler(s voterStore, cfg ReconcilerConfig) *Reconciler {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MinVoters <= 0 {
		cfg.MinVoters = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Members == nil {
		panic("raftstore: ReconcilerConfig.Members is nil")
	}
	return &Reconciler{
		store:   s,
		cfg:     cfg,
		absent:  map[string]time.Time{},
		refused: map[string]string{},
		done:    make(chan struct{}),
	}
}

func (r *Reconciler) loop() {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		r.reconcile(time.Now())
	}
}

// Stop ends the upkeep and waits for a round in progress. It is safe to
// call more than once, and on a nil *Reconciler.
func (r *Reconciler) Stop() {
	if r == nil {
		return
	}
	r.stopOnce.Do(func() { close(r.done) })
	r.wg.Wait()
}

// reconcile is one round at now.
func (r *Reconciler) reconcile(now time.Time) {
	if !r.store.IsLeader() {
		clear(r.absent)
		return
	}
	members := r.cfg.Members()
	voters := r.store.Voters()
	for _, name := range slices.Sorted(maps.Keys(members)) {
		if slices.Contains(voters, name) {
			continue
		}
		addr := members[name]
		if r.store.TLS() {
			ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Interval)
			err := r.store.VerifyPeer(ctx, name, addr)
			cancel()
			if err != nil {
				// Logged once per reason: a rogue member retries every round.
				if why := addr + ": " + err.Error(); r.refused[name] != why {
					r.refused[name] = why
					r.cfg.Logger.Warn("not made a raft voter: its certificate does not prove its name", "member", name, "addr", addr, "err", err)
				}
				continue
			}
			delete(r.refused, name)
		}
		if err := r.store.AddVoter(name, addr); err != nil {
			r.cfg.Logger.Warn("adding raft voter", "member", name, "addr", addr, "err", err)
			continue
		}
		r.cfg.Logger.Info("raft voter added", "member", name, "addr", addr)
	}
	for name := range r.refused {
		if _, ok := members[name]; !ok {
			delete(r.refused, name)
		}
	}
	dead := deadVoters(voters, members, r.absent, now, r.cfg.DeadAfter)
	if len(dead) > 0 && len(voters)-1 >= r.cfg.MinVoters {
		if err := r.store.RemoveServer(dead[0]); err != nil {
			r.cfg.Logger.Warn("removing dead raft voter", "member", dead[0], "err", err)
			return
		}
		delete(r.absent, dead[0])
		r.cfg.Logger.Warn("dead raft voter removed", "member", dead[0], "absentFor", r.cfg.DeadAfter.String(), "voters", len(voters)-1)
	}
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
