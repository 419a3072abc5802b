package raftstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// # Linearizable reads
//
// A read must see every write acknowledged before it started. Every write
// is acknowledged by the leader after its own state machine applied it, so
// the leader's copy holds them all, with two exceptions that the leader
// rules out before it answers:
//
//   - a newer leader elected elsewhere may have acknowledged writes this
//     member has not seen: VerifyLeader confirms, with a round of heartbeats
//     to a majority, that no newer leader exists;
//   - a new leader may not yet have applied entries committed under its
//     predecessor: once per term it runs a barrier, which returns when every
//     earlier entry is applied to its copy.
//
// Members that do not lead forward reads to the leader rather than serve
// their own copy, which may lag. Reads are idempotent, so a forwarded read
// whose connection fails is simply sent again until the deadline.

// read answers q as of a moment between the call and its return.
func (s *Store) read(ctx context.Context, q query) (result, error) {
	return s.onLeader(ctx, leaderRequest{method: "Read", body: encodeQuery(q), repeatable: true, local: func(deadline time.Time) result {
		return s.readOnLeader(ctx, q, deadline)
	}})
}

// readOnLeader answers q from this member's copy once it has confirmed its
// leadership.
func (s *Store) readOnLeader(ctx context.Context, q query, deadline time.Time) result {
	if err := s.confirmLeadership(deadline); err != nil {
		return result{err: err}
	}
	return s.fsm.query(ctx, q)
}

// confirmLeadership returns nil if this member leads a majority and its copy
// holds every entry committed before this term; errNotLeader if it does not
// lead (any more).
func (s *Store) confirmLeadership(deadline time.Time) error {
	if s.raft.State() != raft.Leader {
		return errNotLeader
	}
	if term := s.raft.CurrentTerm(); s.readyTerm.Load() != term {
		if err := s.await(s.raft.Barrier(time.Until(deadline)), deadline); err != nil {
			return s.readError(err)
		}
		// A barrier that succeeded was committed by this member as leader,
		// in term or later; recording the earlier term only costs a
		// second barrier.
		s.readyTerm.Store(term)
	}
	if err := s.await(s.raft.VerifyLeader(), deadline); err != nil {
		return s.readError(err)
	}
	return nil
}

// readError maps what raft answered to a barrier or a leadership check.
// Losing leadership is errNotLeader: a read was not carried out and can be
// sent to the next leader.
func (s *Store) readError(err error) error {
	switch {
	case errors.Is(err, raft.ErrLeadershipLost):
		return errNotLeader
	case errors.Is(err, errDeadline), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: no majority confirmed this leader within the timeout", ErrNoQuorum)
	}
	return s.raftError(err, "read")
}

// serveRead is the leader's side of a forwarded read.
func (s *Store) serveRead(body []byte, timeout time.Duration) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	release, err := s.enter(ctx)
	if err != nil {
		return result{err: err}
	}
	defer release()
	q, err := decodeQuery(body)
	if err != nil {
		return result{err: fmt.Errorf("forwarded query refused: %w", err)}
	}
	return s.readOnLeader(ctx, q, time.Now().Add(timeout))
}
