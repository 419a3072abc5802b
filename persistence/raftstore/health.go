package raftstore

import "time"

// LeaderlessFor returns how long this member has known no leader: zero
// while it knows one, else the time since it last did (or since Open).
// A member that knows no leader cannot write (it has no one to forward
// to), and one that stays so for longer than an election takes has no
// quorum of voters it can reach: this is what a readiness probe asks.
//
// The leader is read from raft itself; leader observations (watchLeader)
// only date the moment it was lost, and a missed observation makes the
// duration start at the first call that finds no leader.
func (s *Store) LeaderlessFor() time.Duration {
	if _, id := s.raft.LeaderWithID(); id != "" {
		s.leaderlessSince.Store(0)
		return 0
	}
	now := time.Now().UnixNano()
	if s.leaderlessSince.CompareAndSwap(0, now) {
		return 0
	}
	return time.Duration(now - s.leaderlessSince.Load())
}

// leaderChanged records a leader observation: when the leader was lost,
// or that one is known again.
func (s *Store) leaderChanged(leaderID string) {
	if leaderID != "" {
		s.leaderlessSince.Store(0)
		return
	}
	s.leaderlessSince.CompareAndSwap(0, time.Now().UnixNano())
}
