package raftstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// # Membership
//
// Which members vote is raft's configuration, changed one server at a time
// through the leader. The cluster layer is meant to drive it from its own
// membership, as Consul's leader reconciles raft peers with its gossip
// members: a server that joins is added as a voter; one that leaves, or has
// been failed long enough, is removed (docs/durability.md, What is left).
// Any member can be asked; it forwards to the leader. Both changes are
// idempotent, so they are retried on any failure until the deadline.

// membershipOp names a configuration change.
type membershipOp byte

const (
	addVoter membershipOp = iota + 1
	removeServer
)

// AddVoter makes the member id, reachable at addr (its RaftAddr), a voter.
// Adding a voter that is already one with the same address does nothing;
// with another address, it moves it (a member restarted elsewhere). It
// returns once the change is committed, not once the new member has caught
// up.
func (s *Store) AddVoter(id, addr string) error {
	if id == "" || addr == "" {
		return errors.New("raftstore: AddVoter needs an id and an address")
	}
	if err := s.changeMembership(addVoter, id, addr); err != nil {
		return fmt.Errorf("add voter %s at %s: %w", id, addr, err)
	}
	return nil
}

// RemoveServer takes the member id out of the configuration, so that it no
// longer counts towards the quorum. Removing a server that is not a member
// does nothing. A member removed while running shuts its raft down.
func (s *Store) RemoveServer(id string) error {
	if id == "" {
		return errors.New("raftstore: RemoveServer needs an id")
	}
	if err := s.changeMembership(removeServer, id, ""); err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	return nil
}

func (s *Store) changeMembership(op membershipOp, id, addr string) error {
	var e encoder
	e.Byte(byte(op))
	e.String(id)
	e.String(addr)
	// Not carried out, or perhaps carried out (ErrUnavailable): either
	// way, asking again is safe.
	_, err := s.onLeader(context.Background(), leaderRequest{method: "ChangeMembership", body: e.Encoded(), repeatable: true, retryOn: ErrUnavailable,
		local: func(deadline time.Time) result {
			return result{err: s.changeOnLeader(op, raft.ServerID(id), raft.ServerAddress(addr), deadline)}
		}})
	return err
}

func (s *Store) changeOnLeader(op membershipOp, id raft.ServerID, addr raft.ServerAddress, deadline time.Time) error {
	if s.raft.State() != raft.Leader {
		return errNotLeader
	}
	timeout := time.Until(deadline)
	var f raft.IndexFuture
	switch op {
	case addVoter:
		f = s.raft.AddVoter(id, addr, 0, timeout)
	case removeServer:
		if !slices.Contains(s.servers(), string(id)) {
			return nil // raft would commit a no-op change; skip the round trip
		}
		f = s.raft.RemoveServer(id, 0, timeout)
	default:
		return fmt.Errorf("unknown membership change %d", op)
	}
	if err := s.await(f, deadline); err != nil {
		return s.raftError(err, "membership change")
	}
	return nil
}

// serveMembership is the leader's side of a forwarded membership change.
func (s *Store) serveMembership(body []byte, timeout time.Duration) result {
	release, err := s.enter(context.Background())
	if err != nil {
		return result{err: err}
	}
	defer release()
	d := newDecoder(body)
	op := membershipOp(d.Byte())
	id := d.String()
	addr := d.String()
	if err := d.Finish(); err != nil {
		return result{err: fmt.Errorf("forwarded membership change refused: %w", err)}
	}
	return result{err: s.changeOnLeader(op, raft.ServerID(id), raft.ServerAddress(addr), time.Now().Add(timeout))}
}

// Leader returns the id and raft address of the member this one believes
// leads, or empty strings when it knows of none (during an election, or
// without a quorum).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this member believes it leads. Only a
// successful request proves it.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Voters returns the ids of the voters in this member's latest known
// configuration, sorted.
func (s *Store) Voters() []string {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []string
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			out = append(out, string(srv.ID))
		}
	}
	slices.Sort(out)
	return out
}

// servers returns the ids of every server in the latest configuration.
func (s *Store) servers() []string {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []string
	for _, srv := range f.Configuration().Servers {
		out = append(out, string(srv.ID))
	}
	return out
}

// Stats returns raft's own counters for this member (state, term,
// last_log_index, commit_index, applied_index, last_snapshot_index,
// num_peers, last_contact…), for operators and metrics.
func (s *Store) Stats() map[string]string { return s.raft.Stats() }

// Snapshot makes this member snapshot its state machine now and compact its
// log, instead of waiting for SnapshotThreshold (an operator action, and
// how tests reach the snapshot paths).
func (s *Store) Snapshot() error {
	release, err := s.enter(context.Background())
	if err != nil {
		return err
	}
	defer release()
	if err := s.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// TransferLeadership hands leadership to the most up-to-date other voter
// when this member leads, and returns once it has (or failed to); it does
// nothing on a member that does not lead, or that is the only voter. A node about to stop calls it
// so that writes wait for one hand-off instead of an election timeout.
func (s *Store) TransferLeadership() error {
	release, err := s.enter(context.Background())
	if err != nil {
		return err
	}
	defer release()
	if !s.IsLeader() || len(s.Voters()) < 2 {
		return nil
	}
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	return nil
}
