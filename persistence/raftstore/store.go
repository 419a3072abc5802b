// Package raftstore is a replicated persistence.Store: a group of members
// (normally three) that keep identical copies of the data by running every
// write through hashicorp/raft. A write is acknowledged only once a majority
// of the voters have it in their fsynced raft log, so the death of any
// minority loses nothing acknowledged; grains use it exactly as they use the
// single-node badgerstore.Store, which is what each member runs as its
// state machine.
//
//   - Writes (Append, DeleteSession, Put, Delete, Sweep, DeleteTenant) are
//     encoded as commands (command.go, records.go) and applied through raft
//     on the leader; a member that is not the leader forwards them
//     (forward.go), except Sweep, which only the leader carries out.
//     The conditional append is decided inside the state machine, in log
//     order, so two activations of one session can never both write.
//   - Reads (Meta, Page, Get) are linearizable: the leader confirms it still
//     leads a majority (raft's VerifyLeader) and answers from its own copy;
//     other members forward reads to it (read.go).
//   - Membership (AddVoter, RemoveServer) is driven from outside, by the
//     cluster layer, as Consul drives it from its gossip membership.
//
// docs/durability.md states the guarantees and what each failure does.
package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parley-chat/parley/persistence"
)

// Store is one member of a replicated store. It is safe for concurrent use.
type Store struct {
	cfg   Config
	id    raft.ServerID
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm
	logs  *logStore
	mux   *mux
	trans *raft.NetworkTransport
	fwd   *forwarder

	// readyTerm is the term in which this member, as leader, last saw a
	// barrier through: every entry of earlier terms is then applied to its
	// copy, which linearizable reads need (read.go).
	readyTerm atomic.Uint64

	// leaderlessSince is when this member last lost its leader (unix
	// nanoseconds), 0 while it knows one (health.go).
	leaderlessSince atomic.Int64

	// mu guards closed; ops counts the calls in progress, which Close waits
	// for after it has made them give up.
	mu       sync.RWMutex
	closed   bool
	ops      sync.WaitGroup
	shutdown chan struct{}  // closed by Close
	wg       sync.WaitGroup // goroutines of the store itself
}

var _ persistence.Store = (*Store)(nil)

// Open starts a member on cfg.Dir, creating the directory if needed. With
// cfg.Bootstrap and no previous state it starts a one-voter cluster; a
// member without state and without Bootstrap waits to be added to a cluster
// with AddVoter. A member restarted on its Dir rejoins its cluster with its
// log and rebuilds its state machine from its snapshot and log.
//
// Open does not wait for a leader: the first requests do, up to
// ApplyTimeout.
func Open(cfg Config) (_ *Store, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	base := cfg.Logger
	logger := base.With("component", "raftstore")

	// Each piece is closed again if a later one fails.
	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()

	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	logs, err := openLogStore(filepath.Join(cfg.Dir, "raft"), base.With("component", "raft-log"))
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { _ = logs.Close() })

	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, snapshotsRetained, newHCLog(base, "raft-snapshot"))
	if err != nil {
		return nil, fmt.Errorf("open raft snapshots in %s: %w", cfg.Dir, err)
	}

	machine, err := openFSM(cfg.Dir, base.With("component", "raft-fsm"))
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { _ = machine.close() })

	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", cfg.BindAddr, err)
	}
	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		advertise, err = net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
	} else {
		err = checkAdvertisable(ln.Addr().String())
	}
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("raftstore: Config.AdvertiseAddr is needed: bound %s: %w", ln.Addr(), err)
	}
	m := newMux(ln, advertise, logger)
	m.tls = newTransportTLS(cfg)
	cleanups = append(cleanups, func() { _ = m.Close(); m.wait() })

	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  m,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  newHCLog(base, "raft-net"),
	})
	cleanups = append(cleanups, func() { _ = trans.Close() })

	rconf := raft.DefaultConfig()
	rconf.LocalID = raft.ServerID(cfg.NodeID)
	rconf.Logger = newHCLog(base, "raft")
	rconf.HeartbeatTimeout = cfg.HeartbeatTimeout
	rconf.ElectionTimeout = cfg.ElectionTimeout
	rconf.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rconf.CommitTimeout = cfg.CommitTimeout
	rconf.SnapshotInterval = cfg.SnapshotInterval
	rconf.SnapshotThreshold = cfg.SnapshotThreshold
	rconf.TrailingLogs = cfg.TrailingLogs

	if cfg.Bootstrap {
		has, err := raft.HasExistingState(logs, logs, snaps)
		if err != nil {
			return nil, fmt.Errorf("inspect raft state: %w", err)
		}
		if !has {
			servers := raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: rconf.LocalID, Address: trans.LocalAddr(),
			}}}
			if err := raft.BootstrapCluster(rconf, logs, logs, snaps, trans, servers); err != nil {
				return nil, fmt.Errorf("bootstrap raft cluster: %w", err)
			}
		}
	}

	cache, err := raft.NewLogCache(logCacheSize, logs)
	if err != nil {
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	r, err := raft.NewRaft(rconf, machine, cache, logs, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}

	s := &Store{
		cfg:      cfg,
		id:       rconf.LocalID,
		log:      logger,
		raft:     r,
		fsm:      machine,
		logs:     logs,
		mux:      m,
		trans:    trans,
		fwd:      newForwarder(m),
		shutdown: make(chan struct{}),
	}
	s.leaderlessSince.Store(time.Now().UnixNano())
	srv := rpc.NewServer()
	if err := srv.RegisterName(forwardServiceName, &forwardService{s: s}); err != nil {
		_ = r.Shutdown().Error()
		return nil, fmt.Errorf("register forwarding service: %w", err)
	}
	m.start(func(c net.Conn) { srv.ServeConn(c) })

	observations := make(chan raft.Observation, 16)
	observer := raft.NewObserver(observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(observer)
	s.wg.Add(1)
	go s.watchLeader(observations, observer)

	logger.Debug("raft member started", "node", cfg.NodeID, "raftAddr", string(trans.LocalAddr()), "bootstrap", cfg.Bootstrap)
	return s, nil
}

const (
	// snapshotsRetained is how many snapshots raft keeps on disk.
	snapshotsRetained = 2
	// logCacheSize is how many recent log entries raft keeps in memory,
	// so replication to followers rarely reads the log DB.
	logCacheSize = 512
)

// watchLeader logs leader changes, the one raft event an operator wants at
// Info.
func (s *Store) watchLeader(observations chan raft.Observation, observer *raft.Observer) {
	defer s.wg.Done()
	defer s.raft.DeregisterObserver(observer)
	for {
		select {
		case <-s.shutdown:
			return
		case o := <-observations:
			if lo, ok := o.Data.(raft.LeaderObservation); ok {
				s.leaderChanged(string(lo.LeaderID))
				if lo.LeaderID == "" {
					s.log.Info("raft group has no leader")
				} else {
					s.log.Info("raft leader elected", "leader", string(lo.LeaderID), "leaderAddr", string(lo.LeaderAddr))
				}
			}
		}
	}
}

// RaftAddr returns the address other members reach this one on (the bound
// address, or Config.AdvertiseAddr).
func (s *Store) RaftAddr() string { return s.mux.Addr().String() }

// NodeID returns Config.NodeID.
func (s *Store) NodeID() string { return string(s.id) }

// Close stops the member abruptly, as the death of its process would: it
// neither hands leadership over nor leaves the configuration (a stopped
// voter still counts towards the quorum until RemoveServer). Calls in
// progress fail with persistence.ErrClosed. It is safe to call more than
// once; later calls return nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.shutdown)

	// Raft closes the transport when it shuts down, except when it had
	// already shut itself down (removed from the configuration).
	errs := []error{s.raft.Shutdown().Error(), s.trans.Close(), s.mux.Close()}
	s.fwd.close()
	s.mux.wait()
	s.ops.Wait()
	s.wg.Wait()
	errs = append(errs, s.fsm.close(), s.logs.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close raft store: %w", err)
	}
	return nil
}

// enter checks ctx and the closed flag and counts the call in progress
// until the returned release is called.
func (s *Store) enter(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, persistence.ErrClosed
	}
	s.ops.Add(1)
	return s.ops.Done, nil
}

// deadline is when a call started now must be answered: ApplyTimeout from
// now, or the context's deadline if sooner.
func (s *Store) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(s.cfg.ApplyTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// Meta implements persistence.SessionStore.
func (s *Store) Meta(ctx context.Context, key persistence.SessionKey) (persistence.SessionMeta, error) {
	if err := checkSessionKey(key); err != nil {
		return persistence.SessionMeta{}, err
	}
	r, err := s.read(ctx, query{kind: queryMeta, session: key})
	if err != nil {
		return persistence.SessionMeta{}, fmt.Errorf("read meta of session %s:%s: %w", key.Tenant, key.Session, err)
	}
	return r.meta, nil
}

// Append implements persistence.SessionStore. When it returns nil, the
// messages are in the fsynced raft log of a majority of the voters.
func (s *Store) Append(ctx context.Context, key persistence.SessionKey, expectedLast uint64, msgs []persistence.Message, opts persistence.AppendOptions) (persistence.SessionMeta, error) {
	if err := checkSessionKey(key); err != nil {
		return persistence.SessionMeta{}, err
	}
	r, err := s.write(ctx, command{op: opAppend, session: key, expectedLast: expectedLast, msgs: msgs, maxMessages: opts.MaxMessages, quota: opts.Quota})
	if err != nil {
		return persistence.SessionMeta{}, fmt.Errorf("append to session %s:%s: %w", key.Tenant, key.Session, err)
	}
	return r.meta, nil
}

// Page implements persistence.SessionStore.
func (s *Store) Page(ctx context.Context, key persistence.SessionKey, before uint64, limit int, notBefore time.Time) ([]persistence.Message, error) {
	if err := checkSessionKey(key); err != nil {
		return nil, err
	}
	r, err := s.read(ctx, query{kind: queryPage, session: key, before: before, limit: limit, notBefore: notBefore})
	if err != nil {
		return nil, fmt.Errorf("page session %s:%s: %w", key.Tenant, key.Session, err)
	}
	if r.msgs == nil {
		r.msgs = []persistence.Message{}
	}
	return r.msgs, nil
}

// DeleteSession implements persistence.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, key persistence.SessionKey) error {
	if err := checkSessionKey(key); err != nil {
		return err
	}
	if _, err := s.write(ctx, command{op: opDeleteSession, session: key}); err != nil {
		return fmt.Errorf("delete session %s:%s: %w", key.Tenant, key.Session, err)
	}
	return nil
}

// Get implements persistence.KVStore.
func (s *Store) Get(ctx context.Context, key persistence.KVKey, now time.Time) ([]byte, time.Time, bool, error) {
	if err := checkTenant(key.Tenant); err != nil {
		return nil, time.Time{}, false, err
	}
	r, err := s.read(ctx, query{kind: queryGet, kv: key, now: now})
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("get %s %s: %w", key.Tenant, key.Space, err)
	}
	return r.value, r.exp, r.found, nil
}

// Put implements persistence.KVStore. When it returns nil, the value is in
// the fsynced raft log of a majority of the voters.
func (s *Store) Put(ctx context.Context, key persistence.KVKey, value []byte, expiresAt time.Time, opts persistence.PutOptions) error {
	if err := checkTenant(key.Tenant); err != nil {
		return err
	}
	if _, err := s.write(ctx, command{op: opPut, kv: key, value: value, expiresAt: expiresAt, quota: opts.Quota}); err != nil {
		return fmt.Errorf("put %s %s: %w", key.Tenant, key.Space, err)
	}
	return nil
}

// Delete implements persistence.KVStore.
func (s *Store) Delete(ctx context.Context, key persistence.KVKey) error {
	if err := checkTenant(key.Tenant); err != nil {
		return err
	}
	if _, err := s.write(ctx, command{op: opDelete, kv: key}); err != nil {
		return fmt.Errorf("delete %s %s: %w", key.Tenant, key.Space, err)
	}
	return nil
}

// Usage implements persistence.UsageReader from this member's copy of the
// state machine, which every command updates alike: it may lag the leader
// by the writes not yet applied here.
func (s *Store) Usage(tenant string) (persistence.Usage, error) {
	if err := checkTenant(tenant); err != nil {
		return persistence.Usage{}, err
	}
	return s.fsm.usage(tenant)
}

var _ persistence.UsageReader = (*Store)(nil)

// Sweep implements persistence.Store. Only the leader sweeps, with its own
// clock and tenants config: on any other member Sweep does nothing and
// returns no error, since the leader's sweep reaches every member through
// the log. So a member whose clock or tenants file is wrong cannot delete
// anyone's data by sweeping.
//
// retention is a function and cannot go into the log, so the leader first
// lists the tenants that have data in its copy and asks retention about
// each; the command carries now, the leader's clock reading (Config.Clock)
// and those durations, and every member runs badgerstore.Store.Sweep with
// them. The leader refuses with ErrSweepAhead a now more than MaxSweepLead
// ahead of its clock, and every state machine refuses such a command alike
// (fsm.go). A tenant whose first data arrives between the listing and the
// command keeps its messages until the next sweep.
//
// The whole sweep is one log entry, which every member's state machine
// carries out while its other writes wait (docs/durability.md, Costs).
func (s *Store) Sweep(ctx context.Context, now time.Time, retention func(tenant string) time.Duration) (persistence.SweepStats, error) {
	release, err := s.enter(ctx)
	if err != nil {
		return persistence.SweepStats{}, err
	}
	defer release()
	deadline := s.deadline(ctx)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.pause(ctx, deadline); err != nil {
				return persistence.SweepStats{}, fmt.Errorf("sweep: %w", err)
			}
		}
		if _, id := s.raft.LeaderWithID(); id == "" {
			continue // an election is under way: wait to learn who sweeps
		} else if id != s.id {
			return persistence.SweepStats{}, nil // the leader sweeps
		}
		leaderNow := s.cfg.Clock.Now()
		if now.After(leaderNow.Add(MaxSweepLead)) {
			return persistence.SweepStats{}, fmt.Errorf("%w: sweep at %s, leader's clock %s", ErrSweepAhead, now.UTC().Format(time.RFC3339), leaderNow.UTC().Format(time.RFC3339))
		}
		tenants, err := s.fsm.tenants(ctx)
		if err != nil {
			return persistence.SweepStats{}, fmt.Errorf("sweep: list tenants: %w", err)
		}
		durations := make(map[string]time.Duration)
		for _, t := range tenants {
			if d := retention(t); d > 0 {
				durations[t] = d
			}
		}
		// Never forwarded: a member that lost the leadership meanwhile
		// leaves the sweep to the new leader, whose clock it is.
		r := s.applyOnLeader(encodeCommand(command{op: opSweep, now: now, leaderNow: leaderNow, retention: durations}), deadline)
		if errors.Is(r.err, errNotLeader) {
			continue
		}
		if r.err != nil {
			return r.stats, fmt.Errorf("sweep: %w", r.err)
		}
		return r.stats, nil
	}
}

// DeleteTenant implements persistence.Store.
func (s *Store) DeleteTenant(ctx context.Context, tenant string) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	if _, err := s.write(ctx, command{op: opDeleteTenant, tenant: tenant}); err != nil {
		return fmt.Errorf("delete tenant %s: %w", tenant, err)
	}
	return nil
}

// checkSessionKey and checkTenant refuse bad keys before they cost a log
// entry, with the checks every store makes. The state machine checks
// everything again (KV spaces and keys only there), so these are a
// shortcut, not the line of defence.
var (
	checkSessionKey = persistence.ValidateSessionKey
	checkTenant     = persistence.ValidateTenant
)
