package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/parley-chat/parley/cluster/security"
)

// Config configures one cluster member. Zero values mean "use the default".
type Config struct {
	// ClusterName keeps unrelated clusters apart: memberlist drops gossip
	// from nodes whose name differs.
	ClusterName string
	// NodeName names the node in memberlist; unique within the cluster.
	NodeName string
	// GossipAddr is the host:port memberlist binds (TCP and UDP). Port 0
	// picks a free port (tests).
	GossipAddr string
	// RemoteAddr is the host:port of the Proto.Actor remote (gRPC). Port 0
	// picks a free port (tests).
	RemoteAddr string
	// HTTPAddr is gossiped for operators only.
	HTTPAddr string
	// RaftAddr is gossiped so the raft leader can add this node as a
	// voter of the replicated store; empty without one.
	RaftAddr string
	// Join lists seed gossip addresses. The node retries them until one
	// answers; until then it is not ready.
	Join []string
	// JoinRetryMax caps the back-off between join attempts.
	JoinRetryMax time.Duration
	// ProbeInterval, ProbeTimeout, SuspicionMult and SuspicionMaxTimeoutMult
	// tune memberlist's failure detector (see docs/cluster.md for the
	// detection time they give).
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	// GossipInterval is how often memberlist gossips queued updates.
	GossipInterval time.Duration
	// RequestTimeout bounds a grain call that has no earlier deadline.
	RequestTimeout time.Duration
	// LeaveTimeout bounds the graceful leave: announcing departure and
	// passivating this node's grains.
	LeaveTimeout time.Duration
	// Kinds are the grain kinds this node hosts.
	Kinds []*protocluster.Kind
	// TLS, when set, makes the actor remote mutual TLS with this identity
	// (tls.go). Nil leaves it in the clear: loopback-only clusters.
	TLS *security.Identity
	// GossipKey, when set, encrypts gossip with this AES key (16, 24 or 32
	// bytes); every member must share it. Nil gossips in the clear.
	GossipKey []byte
	// Logger receives Parley's, Proto.Actor's and memberlist's logs. It
	// should already name the node (a "node" attribute).
	Logger *slog.Logger
}

// DefaultConfig returns the defaults for a LAN cluster.
//
// Failure detection: memberlist probes one random member every
// ProbeInterval; a member that misses its direct and indirect probes is
// suspected, and declared dead after the suspicion timeout, which starts at
// SuspicionMaxTimeoutMult × SuspicionMult × max(1, log10 n) × ProbeInterval
// and shrinks to SuspicionMult × max(1, log10 n) × ProbeInterval as other
// members confirm. For a 3-node cluster that is 1 s to 2 s of suspicion after
// at most ~1 s of probing: a SIGKILLed node leaves the topology in about
// 2–3 s. The price is more gossip and false suspicion under long GC pauses,
// acceptable on a LAN where round trips are well under ProbeTimeout.
func DefaultConfig() Config {
	return Config{
		ClusterName:             "parley",
		NodeName:                "",                     // hostname-derived by the caller
		GossipAddr:              "127.0.0.1:7946",       // memberlist's customary port
		RemoteAddr:              "127.0.0.1:8090",       // Proto.Actor remote
		HTTPAddr:                "127.0.0.1:8080",       // parley serve's HTTP edge; gossiped as given, never defaulted
		JoinRetryMax:            2 * time.Second,        // seeds retried at least this often
		ProbeInterval:           500 * time.Millisecond, // memberlist LAN: 1 s
		ProbeTimeout:            200 * time.Millisecond, // memberlist LAN: 500 ms
		SuspicionMult:           2,                      // memberlist LAN: 4
		SuspicionMaxTimeoutMult: 2,                      // memberlist LAN: 6
		GossipInterval:          100 * time.Millisecond, // memberlist LAN: 200 ms
		RequestTimeout:          5 * time.Second,
		LeaveTimeout:            5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ClusterName == "" {
		c.ClusterName = d.ClusterName
	}
	if c.GossipAddr == "" {
		c.GossipAddr = d.GossipAddr
	}
	if c.RemoteAddr == "" {
		c.RemoteAddr = d.RemoteAddr
	}
	if c.JoinRetryMax == 0 {
		c.JoinRetryMax = d.JoinRetryMax
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = d.ProbeInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = d.ProbeTimeout
	}
	if c.SuspicionMult == 0 {
		c.SuspicionMult = d.SuspicionMult
	}
	if c.SuspicionMaxTimeoutMult == 0 {
		c.SuspicionMaxTimeoutMult = d.SuspicionMaxTimeoutMult
	}
	if c.GossipInterval == 0 {
		c.GossipInterval = d.GossipInterval
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.LeaveTimeout == 0 {
		c.LeaveTimeout = d.LeaveTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field by name.
func (c Config) Validate() error {
	if c.NodeName == "" {
		return fmt.Errorf("cluster config: NodeName is empty")
	}
	for _, a := range []struct{ name, addr string }{{"GossipAddr", c.GossipAddr}, {"RemoteAddr", c.RemoteAddr}} {
		if _, err := splitHostPort(a.addr); err != nil {
			return fmt.Errorf("cluster config: %s %q: %w", a.name, a.addr, err)
		}
	}
	for _, seed := range c.Join {
		if _, _, err := net.SplitHostPort(seed); err != nil {
			return fmt.Errorf("cluster config: Join %q: %w", seed, err)
		}
	}
	if c.GossipKey != nil {
		if _, err := keyring(c); err != nil {
			return err
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("cluster config: ProbeTimeout %s must be below ProbeInterval %s", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 || c.SuspicionMaxTimeoutMult < 1 {
		return fmt.Errorf("cluster config: SuspicionMult and SuspicionMaxTimeoutMult must be at least 1")
	}
	return nil
}

type hostPort struct {
	host string
	port int
}

func splitHostPort(addr string) (hostPort, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, err
	}
	if net.ParseIP(host) == nil {
		return hostPort{}, fmt.Errorf("host must be an IP address")
	}
	var port int
	if _, err := fmt.Sscanf(portText, "%d", &port); err != nil || port < 0 || port > 65535 {
		return hostPort{}, fmt.Errorf("bad port %q", portText)
	}
	return hostPort{host: host, port: port}, nil
}
