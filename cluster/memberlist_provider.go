package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/memberlist"
)

// MemberlistProvider is a Proto.Actor ClusterProvider whose membership comes
// from hashicorp/memberlist (SWIM gossip). It is created by Node; its
// methods are called by Proto.Actor's Cluster.
type MemberlistProvider struct {
	cfg    Config
	logger *slog.Logger

	ml         *memberlist.Memberlist
	keyring    *memberlist.Keyring // nil when gossip is not encrypted
	gossipAddr string              // the address memberlist bound
	cluster    *protocluster.Cluster
	self       MemberMeta
	meta       atomic.Pointer[[]byte] // self, encoded: what memberlist gossips

	mu      sync.Mutex
	members map[string]MemberMeta    // memberlist node name -> meta, as memberlist reports them
	lost    map[string]chan struct{} // remote address -> closed when that member fails
	joined  bool                     // a seed answered (or there were none)
	left    bool

	changed  chan struct{} // coalesced "members changed" signal, capacity 1
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

var _ protocluster.ClusterProvider = (*MemberlistProvider)(nil)

func newMemberlistProvider(cfg Config) *MemberlistProvider {
	return &MemberlistProvider{
		cfg:     cfg,
		logger:  cfg.Logger.With("component", "membership"),
		members: map[string]MemberMeta{},
		lost:    map[string]chan struct{}{},
		changed: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
}

// StartMember starts gossiping this node's metadata and joining the seeds.
func (p *MemberlistProvider) StartMember(c *protocluster.Cluster) error {
	p.cluster = c
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return fmt.Errorf("remote address: %w", err)
	}
	p.self = MemberMeta{
		ID:     c.ActorSystem.ID,
		Remote: net.JoinHostPort(host, strconv.Itoa(port)),
		Kinds:  c.GetClusterKinds(),
		HTTP:   p.cfg.HTTPAddr,
		Raft:   p.cfg.RaftAddr,
	}
	meta, err := p.self.encode()
	if err != nil {
		return err
	}
	p.meta.Store(&meta)

	gossip, err := splitHostPort(p.cfg.GossipAddr)
	if err != nil {
		return fmt.Errorf("gossip address: %w", err)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = p.cfg.NodeName
	mc.BindAddr = gossip.host
	mc.BindPort = gossip.port
	mc.AdvertiseAddr = gossip.host
	mc.AdvertisePort = gossip.port
	mc.Label = p.cfg.ClusterName
	mc.ProbeInterval = p.cfg.ProbeInterval
	mc.ProbeTimeout = p.cfg.ProbeTimeout
	mc.SuspicionMult = p.cfg.SuspicionMult
	mc.SuspicionMaxTimeoutMult = p.cfg.SuspicionMaxTimeoutMult
	mc.GossipInterval = p.cfg.GossipInterval
	mc.TCPTimeout = time.Second
	mc.IndirectChecks = 1
	mc.RetransmitMult = 2
	mc.PushPullInterval = 15 * time.Second
	mc.GossipToTheDeadTime = 15 * time.Second
	mc.Delegate = metaDelegate{p: p}
	mc.Events = eventDelegate{p: p}
	mc.Logger = memberlistLogger(p.logger)
	if p.keyring, err = keyring(p.cfg); err != nil {
		return err
	}
	mc.Keyring = p.keyring
	mc.GossipVerifyIncoming = true // drop what is not encrypted with a key of the ring
	mc.GossipVerifyOutgoing = true

	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("gossip on %s: %w", p.cfg.GossipAddr, err)
	}
	p.ml = ml
	// Read once: memberlist rewrites its LocalNode in place on UpdateNode.
	p.gossipAddr = ml.LocalNode().Address()
	if port == 0 || gossip.port == 0 {
		p.logger.Debug("bound ports", "gossip", p.gossipAddr)
	}

	p.wg.Add(2)
	go p.topologyLoop()
	go p.joinLoop()
	return nil
}

// StartClient is not supported: every Parley node is a full member.
func (p *MemberlistProvider) StartClient(*protocluster.Cluster) error {
	return fmt.Errorf("parley: cluster clients are not supported; start a member")
}

// Shutdown leaves gossip (announcing it when graceful) and stops the
// provider's goroutines. It is safe to call more than once.
func (p *MemberlistProvider) Shutdown(graceful bool) error {
	var err error
	p.stopOnce.Do(func() {
		close(p.stop)
		if p.ml != nil {
			if graceful {
				p.leave(p.cfg.LeaveTimeout)
			}
			err = p.ml.Shutdown()
		}
		p.wg.Wait()
	})
	return err
}

// announceLeaving gossips that this node is about to leave gracefully, so
// that peers tell its departure from a failure (see hostLost).
func (p *MemberlistProvider) announceLeaving(timeout time.Duration) {
	self := p.self
	self.Leaving = true
	meta, err := self.encode()
	if err != nil {
		p.logger.Warn("announcing the leave", "err", err)
		return
	}
	p.meta.Store(&meta)
	if err := p.ml.UpdateNode(timeout); err != nil {
		p.logger.Warn("announcing the leave", "err", err)
	}
}

// leave announces this node's departure; peers drop it from their topology
// at once instead of waiting for the failure detector.
func (p *MemberlistProvider) leave(timeout time.Duration) {
	p.mu.Lock()
	if p.left {
		p.mu.Unlock()
		return
	}
	p.left = true
	p.mu.Unlock()
	if err := p.ml.Leave(timeout); err != nil {
		p.logger.Warn("leave broadcast incomplete", "err", err)
	}
}

// Joined reports whether the node has reached its seeds (always true when
// it has none).
func (p *MemberlistProvider) Joined() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.joined && !p.left
}

// Members returns the members memberlist currently considers alive, sorted
// by node name.
func (p *MemberlistProvider) Members() []MemberInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]MemberInfo, 0, len(p.members))
	for name, m := range p.members {
		out = append(out, MemberInfo{Name: name, MemberMeta: m})
	}
	slices.SortFunc(out, func(a, b MemberInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// MemberInfo is one member as this node sees it.
type MemberInfo struct {
	Name string `json:"name"`
	MemberMeta
	// Placed says whether this node places grains on the member: it is in
	// the node's Proto.Actor topology (Node.Members sets it).
	Placed bool `json:"placed"`
}

func (p *MemberlistProvider) seeds() []string {
	self := p.gossipAddr
	var seeds []string
	for _, s := range p.cfg.Join {
		if s != self && s != p.cfg.GossipAddr {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// joinLoop contacts the seeds until one answers, so a node started before
// its seeds waits for them instead of failing.
func (p *MemberlistProvider) joinLoop() {
	defer p.wg.Done()
	seeds := p.seeds()
	delay := 100 * time.Millisecond
	for attempt := 1; len(seeds) > 0; attempt++ {
		n, err := p.ml.Join(seeds)
		if n > 0 {
			p.logger.Info("joined cluster", "seedsReached", n, "attempts", attempt)
			break
		}
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelInfo
		}
		reason := ""
		if err != nil {
			// memberlist joins one multi-line error per seed.
			reason = strings.Join(strings.Fields(err.Error()), " ")
		}
		p.logger.Log(context.Background(), level, "waiting for seeds", "seeds", seeds, "err", reason)
		select {
		case <-p.stop:
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, p.cfg.JoinRetryMax)
	}
	p.mu.Lock()
	p.joined = true
	p.mu.Unlock()
	p.signal()
}

func (p *MemberlistProvider) signal() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// topologyLoop hands every membership change to Proto.Actor. It is the only
// caller of UpdateClusterTopology, so topologies are applied in order.
func (p *MemberlistProvider) topologyLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-p.changed:
		}
		p.mu.Lock()
		members := make(protocluster.Members, 0, len(p.members))
		for name, m := range p.members {
			pm, err := m.member()
			if err != nil {
				p.logger.Warn("ignoring member with bad metadata", "member", name, "err", err)
				continue
			}
			members = append(members, pm)
		}
		p.mu.Unlock()
		p.cluster.MemberList.UpdateClusterTopology(members)
	}
}

func (p *MemberlistProvider) nodeUp(n *memberlist.Node) {
	m, err := decodeMeta(n.Meta)
	if err != nil {
		p.logger.Warn("ignoring member with bad metadata", "member", n.Name, "err", err)
		return
	}
	p.mu.Lock()
	old, existed := p.members[n.Name]
	p.members[n.Name] = m
	if existed && old.ID != m.ID {
		// Restarted before the failure detector noticed: the old process
		// is gone, and so is every reply it owed.
		p.hostFailedLocked(old.Remote)
	}
	p.mu.Unlock()
	if !existed && p.cluster.Remote.BlockList().IsBlocked(m.ID) {
		// Declared failed and back under the same id: it was alive all
		// along (a pause longer than the suspicion timeout, a partition
		// that healed) and refuted its death. Proto.Actor blocks a member
		// that left the topology for good; let this one back in, or it
		// would serve its own grains outside everyone else's placement.
		// Its calls that failed meanwhile failed as to a lost host, and
		// a session's conditional appends keep two activations of it
		// from overwriting each other while placements settle.
		p.cluster.Remote.BlockList().Unblock(m.ID)
		p.logger.Warn("member back after being declared failed", "member", n.Name, "addr", n.Address(), "id", m.ID)
	} else if !existed || old.ID != m.ID {
		p.logger.Info("member up", "member", n.Name, "addr", n.Address(), "id", m.ID)
	}
	p.signal()
}

func (p *MemberlistProvider) nodeDown(n *memberlist.Node) {
	p.mu.Lock()
	old, existed := p.members[n.Name]
	delete(p.members, n.Name)
	// memberlist does not tell a node that left from one that failed; a
	// leaving node says so in its metadata first (announceLeaving).
	failed := existed && !old.Leaving
	if failed {
		p.hostFailedLocked(old.Remote)
	}
	p.mu.Unlock()
	if failed {
		p.logger.Warn("member failed", "member", n.Name, "addr", n.Address())
	} else {
		p.logger.Info("member left", "member", n.Name, "addr", n.Address())
	}
	p.signal()
}

// hostLost returns a channel that is closed when the member whose actor
// remote listens on remote is declared failed (not when it leaves
// gracefully: a leaving member answers what it was sent before it goes).
// ok is false when no current member has that address.
func (p *MemberlistProvider) hostLost(remote string) (lost <-chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.members {
		if m.Remote == remote {
			ch, found := p.lost[remote]
			if !found {
				ch = make(chan struct{})
				p.lost[remote] = ch
			}
			return ch, true
		}
	}
	return nil, false
}

func (p *MemberlistProvider) hostFailedLocked(remote string) {
	if ch, ok := p.lost[remote]; ok {
		close(ch)
		delete(p.lost, remote)
	}
}

// eventDelegate receives memberlist's membership events. memberlist calls it
// from its own goroutines, never concurrently, and it must not block: it
// updates the member map and signals topologyLoop.
type eventDelegate struct{ p *MemberlistProvider }

func (d eventDelegate) NotifyJoin(n *memberlist.Node)   { d.p.nodeUp(n) }
func (d eventDelegate) NotifyUpdate(n *memberlist.Node) { d.p.nodeUp(n) }
func (d eventDelegate) NotifyLeave(n *memberlist.Node)  { d.p.nodeDown(n) }

// metaDelegate serves this node's metadata; Parley uses no user messages
// or push/pull state of its own.
type metaDelegate struct{ p *MemberlistProvider }

func (d metaDelegate) NodeMeta(limit int) []byte {
	meta := *d.p.meta.Load()
	if len(meta) > limit {
		return nil
	}
	return meta
}
func (metaDelegate) NotifyMsg([]byte)                           {}
func (metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (metaDelegate) LocalState(join bool) []byte                { return nil }
func (metaDelegate) MergeRemoteState(buf []byte, join bool)     {}
