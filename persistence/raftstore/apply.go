package raftstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parley-chat/parley/persistence"
)

// retryPause is how long a request waits before it looks for the leader
// again, after finding none or finding that the one it knew had stepped down.
const retryPause = 10 * time.Millisecond

// leaderRequest is a request only the leader carries out: a write, a
// linearizable read or a membership change.
type leaderRequest struct {
	method string                          // its name on the forwarding RPC (forward.go)
	body   []byte                          // its encoding, to forward
	local  func(deadline time.Time) result // carries it out when this member leads
	// repeatable requests (reads, membership changes) may be sent again
	// after any failure; a write only when it certainly was not carried
	// out (forward.go).
	repeatable bool
	// retryOn is an error, besides "not leader", after which the request
	// is sent again (nil: none).
	retryOn error
}

// onLeader carries req out on this member if it leads, else forwards it to
// the leader, looking for the leader again (every retryPause) while there
// is none, it stepped down, or forwarding failed in a way req may be sent
// again after, until ctx's deadline or the store's timeout.
func (s *Store) onLeader(ctx context.Context, req leaderRequest) (result, error) {
	release, err := s.enter(ctx)
	if err != nil {
		return result{}, err
	}
	defer release()
	deadline := s.deadline(ctx)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.pause(ctx, deadline); err != nil {
				return result{}, err
			}
		}
		addr, id := s.raft.LeaderWithID()
		var r result
		switch {
		case id == "":
			continue // no leader yet: an election is under way, or there is no quorum
		case id == s.id:
			r = req.local(deadline)
		default:
			var sent bool
			r, sent, err = s.fwd.call(ctx, string(addr), req.method, req.body, deadline)
			if err != nil {
				switch {
				case sent && !req.repeatable:
					return result{}, s.unknownOutcome(ctx, err, id)
				case ctx.Err() != nil:
					return result{}, ctx.Err()
				case s.isClosed():
					return result{}, persistence.ErrClosed
				}
				continue // the deadline is checked by pause
			}
		}
		if errors.Is(r.err, errNotLeader) || req.retryOn != nil && errors.Is(r.err, req.retryOn) {
			continue
		}
		return r, r.err
	}
}

// write runs c through the raft log and returns its result once committed
// and applied.
func (s *Store) write(ctx context.Context, c command) (result, error) {
	body := encodeCommand(c)
	return s.onLeader(ctx, leaderRequest{method: "Apply", body: body, local: func(deadline time.Time) result {
		return s.applyOnLeader(body, deadline)
	}})
}

// unknownOutcome is the error of a write that may or may not have been
// committed.
func (s *Store) unknownOutcome(ctx context.Context, err error, leader raft.ServerID) error {
	switch {
	case s.isClosed():
		return persistence.ErrClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ctx.Err()
	case errors.Is(err, errDeadline):
		return fmt.Errorf("%w: leader %s did not answer within the timeout (the write may still be applied)", ErrNoQuorum, leader)
	}
	return fmt.Errorf("%w: forwarding to leader %s: %v (the write may still be applied)", ErrUnavailable, leader, err)
}

// applyOnLeader appends body to the log if this member leads, and waits for
// it to be committed and applied here.
func (s *Store) applyOnLeader(body []byte, deadline time.Time) result {
	if s.raft.State() != raft.Leader {
		return result{err: errNotLeader}
	}
	f := s.raft.Apply(body, time.Until(deadline))
	if err := s.await(f, deadline); err != nil {
		return result{err: s.raftError(err, "write")}
	}
	r, ok := f.Response().(result)
	if !ok {
		return result{err: fmt.Errorf("%w: unexpected apply response %T", ErrUnavailable, f.Response())}
	}
	return r
}

// serveApply is the leader's side of a forwarded write.
func (s *Store) serveApply(body []byte, timeout time.Duration) result {
	release, err := s.enter(context.Background())
	if err != nil {
		return result{err: err}
	}
	defer release()
	c, err := decodeCommand(body)
	if err != nil {
		// A member running a newer format; nothing reaches the log that
		// this member could not apply itself.
		return result{err: fmt.Errorf("forwarded command refused: %w", err)}
	}
	if c.op == opSweep {
		// Only the leader sweeps, with its own clock and tenants config;
		// a member of an earlier version still forwards its sweeps.
		return result{err: errors.New("forwarded sweep refused: only the leader sweeps")}
	}
	return s.applyOnLeader(body, time.Now().Add(timeout))
}

// raftError maps what raft answered for a request that did not succeed.
// errNotLeader means the request was not carried out and may be sent again.
func (s *Store) raftError(err error, what string) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return errNotLeader
	case s.isClosed():
		return persistence.ErrClosed
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: raft has stopped on this member (removed from the group?)", ErrUnavailable)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: the leader lost its leadership before the %s committed (it may still be applied)", ErrNoQuorum, what)
	case errors.Is(err, errDeadline), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: the %s was not committed within the timeout (it may still be applied)", ErrNoQuorum, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
}

// await waits for a raft future until deadline or Close.
func (s *Store) await(f raft.Future, deadline time.Time) error {
	done := make(chan error, 1)
	// The goroutine ends when raft answers the future, which it always
	// does, at the latest when Close shuts raft down.
	s.ops.Add(1)
	go func() {
		defer s.ops.Done()
		done <- f.Error()
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return errDeadline
	case <-s.shutdown:
		return persistence.ErrClosed
	}
}

// pause waits retryPause, and fails once the deadline has passed, the
// context is done or the store is closing.
func (s *Store) pause(ctx context.Context, deadline time.Time) error {
	wait := min(retryPause, time.Until(deadline))
	if wait <= 0 {
		return s.noLeaderError(ctx)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		if !time.Now().Before(deadline) {
			return s.noLeaderError(ctx)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.shutdown:
		return persistence.ErrClosed
	}
}

func (s *Store) noLeaderError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, id := s.raft.LeaderWithID(); id == "" {
		return fmt.Errorf("%w: no leader elected within %s", ErrNoQuorum, s.cfg.ApplyTimeout)
	}
	return fmt.Errorf("%w: no leader could serve the request within %s", ErrNoQuorum, s.cfg.ApplyTimeout)
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}
