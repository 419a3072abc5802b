package raftstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/parley-chat/parley/actors/clock"
)

// Config configures Open. Zero fields take the value of DefaultConfig; only
// NodeID, Dir and BindAddr are required.
type Config struct {
	// NodeID names this member in the raft configuration (the node name).
	// It must stay the same across restarts on the same Dir.
	NodeID string
	// Dir holds everything the member keeps: the raft log and stable state
	// (Dir/raft, a Badger DB written with fsync), raft snapshots
	// (Dir/snapshots) and the state machine's Badger DB (Dir/fsm, rebuilt at
	// every Open). It is created if missing.
	Dir string
	// BindAddr is the TCP address of the raft transport, which also carries
	// the requests other members forward to the leader. "127.0.0.1:0" picks
	// a free port; Store.RaftAddr reports the bound address.
	BindAddr string
	// AdvertiseAddr is the address other members dial, when it differs from
	// the bound one (BindAddr on 0.0.0.0). Empty means the bound address.
	AdvertiseAddr string
	// Bootstrap makes a member with no state start a cluster with itself as
	// the only voter, as `make run` does with one node. A member that already
	// has state ignores it. Exactly one member of a new cluster bootstraps;
	// the others join through AddVoter.
	Bootstrap bool
	// ApplyTimeout bounds every request: a write (or a linearizable read)
	// that no leader with a quorum carries out within it fails with
	// ErrNoQuorum. The caller's context may shorten it.
	ApplyTimeout time.Duration
	// ServerTLS and ClientTLS make every connection of the port mutual TLS
	// (tls.go): ServerTLS for the ones accepted, which must require and
	// verify a client certificate, ClientTLS for the ones dialled. Give
	// both or neither; neither leaves the port in the clear, which only a
	// loopback-only member may do.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	// OnTLSRefused, when set, is told of every accepted connection whose
	// TLS handshake failed, from the goroutine that served it (for a
	// rate-limited log line).
	OnTLSRefused func(remote string, err error)
	// Clock is the leader's time for sweeps (Store.Sweep): a sweep whose
	// time is ahead of it by more than MaxSweepLead is refused. Nil means
	// clock.Real; tests give a fake one.
	Clock clock.Clock
	// Logger receives the store's lines and hashicorp/raft's (raft's Info
	// lines at Debug). Nil means slog.Default().
	Logger *slog.Logger

	// HeartbeatTimeout is how long a follower waits without hearing from the
	// leader before it starts an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes before it
	// starts another election.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without hearing
	// from a majority. After it, its pending writes fail and it steps down.
	// At most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest a leader waits before telling followers
	// about new commits when there is no other traffic.
	CommitTimeout time.Duration
	// SnapshotInterval is how often the member checks whether to snapshot
	// its state machine (a random time between it and twice it).
	SnapshotInterval time.Duration
	// SnapshotThreshold is how many new log entries make a snapshot due.
	SnapshotThreshold uint64
	// TrailingLogs is how many log entries a snapshot leaves in the log, so
	// that a follower slightly behind catches up from the log rather than
	// from a whole snapshot.
	TrailingLogs uint64
}

// DefaultConfig returns the production settings: hashicorp/raft's own
// defaults, which suit members on a LAN.
func DefaultConfig() Config {
	return Config{
		BindAddr:           "127.0.0.1:8300",        // parley serve's --raft-addr; required, never defaulted
		ApplyTimeout:       5 * time.Second,         // a request's whole budget
		HeartbeatTimeout:   1000 * time.Millisecond, // raft's default
		ElectionTimeout:    1000 * time.Millisecond, // raft's default
		LeaderLeaseTimeout: 500 * time.Millisecond,  // raft's default
		CommitTimeout:      50 * time.Millisecond,   // raft's default
		SnapshotInterval:   120 * time.Second,       // raft's default
		SnapshotThreshold:  8192,                    // raft's default
		TrailingLogs:       10240,                   // raft's default
	}
}

// LocalConfig returns settings for members in one process (the tests):
// DefaultConfig with timings short enough that a new leader is elected
// within about a second of a member's death, and long enough that a
// machine loaded by test binaries running in parallel does not depose a
// live leader (a 100 ms lease did, and writes failed with ErrNoQuorum).
func LocalConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// withDefaults fills every zero field from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = d.ApplyTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = d.HeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = d.ElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = min(d.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = d.CommitTimeout
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = d.SnapshotInterval
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	return c
}

// Validate reports the first field that makes c unusable, after the
// defaults of zero fields are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.NodeID == "":
		return errors.New("raftstore: Config.NodeID is required")
	case c.Dir == "":
		return errors.New("raftstore: Config.Dir is required")
	case c.BindAddr == "":
		return errors.New("raftstore: Config.BindAddr is required")
	case (c.ServerTLS == nil) != (c.ClientTLS == nil):
		return errors.New("raftstore: Config.ServerTLS and Config.ClientTLS go together")
	case c.ApplyTimeout < 0:
		return fmt.Errorf("raftstore: Config.ApplyTimeout is negative (%s)", c.ApplyTimeout)
	case c.HeartbeatTimeout < 5*time.Millisecond:
		return fmt.Errorf("raftstore: Config.HeartbeatTimeout %s is below 5ms", c.HeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("raftstore: Config.ElectionTimeout %s is below HeartbeatTimeout %s", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.LeaderLeaseTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("raftstore: Config.LeaderLeaseTimeout %s is not between 5ms and HeartbeatTimeout %s", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	case c.CommitTimeout < time.Millisecond:
		return fmt.Errorf("raftstore: Config.CommitTimeout %s is below 1ms", c.CommitTimeout)
	case c.SnapshotInterval < 5*time.Millisecond:
		return fmt.Errorf("raftstore: Config.SnapshotInterval %s is below 5ms", c.SnapshotInterval)
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return fmt.Errorf("raftstore: Config.BindAddr %q: %w", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if err := checkAdvertisable(c.AdvertiseAddr); err != nil {
			return fmt.Errorf("raftstore: Config.AdvertiseAddr %q: %w", c.AdvertiseAddr, err)
		}
	}
	return nil
}

// checkAdvertisable refuses an address other members could not dial.
func checkAdvertisable(addr string) error {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return err
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() || tcp.Port == 0 {
		return errors.New("not an address other members can dial (give a specific IP and port)")
	}
	return nil
}
