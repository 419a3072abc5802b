package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/internal/tracing"
)

// Node is the Requester every typed grain client calls, and tells those
// clients when a member fails.
var (
	_ grains.Requester   = (*Node)(nil)
	_ grains.HostWatcher = (*Node)(nil)
)

// Node is one running cluster member: an actor system, its remote, a
// memberlist provider and the grain kinds it hosts.
type Node struct {
	cfg      Config
	logger   *slog.Logger
	system   *actor.ActorSystem
	cluster  *protocluster.Cluster
	provider *MemberlistProvider

	leaving  atomic.Bool
	stopOnce sync.Once
	stopErr  error
}

// Start validates cfg, starts the actor remote and memberlist, and begins
// joining the seeds. It returns once the node is a member of its own
// topology; Ready tells when it has also reached its seeds. On error nothing
// is left running.
func Start(cfg Config) (n *Node, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	remoteAddr, _ := splitHostPort(cfg.RemoteAddr)
	logger := cfg.Logger

	actorLogger := slog.New(protoactorHandler{logger.Handler()}).With("component", "protoactor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLogger }))
	provider := newMemberlistProvider(cfg)
	cc := protocluster.Configure(cfg.ClusterName, provider, disthash.New(),
		remote.Configure(remoteAddr.host, remoteAddr.port, remoteOptions(cfg)...),
		protocluster.WithKinds(cfg.Kinds...),
		protocluster.WithRequestTimeout(cfg.RequestTimeout),
	)
	c := protocluster.New(system, cc)

	// Proto.Actor's StartMember panics when a port is taken or the
	// provider fails; turn that into an error and undo what started.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("start cluster member: %v", r)
			if e, ok := r.(error); ok {
				err = fmt.Errorf("start cluster member: %w", e)
			}
			_ = provider.Shutdown(false)
			if c.Remote != nil {
				func() {
					defer func() { _ = recover() }()
					c.Remote.Shutdown(false)
				}()
			}
			system.Shutdown()
			n = nil
		}
	}()
	c.StartMember()

	n = &Node{cfg: cfg, logger: logger, system: system, cluster: c, provider: provider}
	logger.Info("cluster member started", "gossip", n.GossipAddr(), "remote", system.Address(), "id", system.ID)
	return n, nil
}

// Name is the node's memberlist name.
func (n *Node) Name() string { return n.cfg.NodeName }

// ID is the node's Proto.Actor member id, new for each start.
func (n *Node) ID() string { return n.system.ID }

// System is the node's actor system.
func (n *Node) System() *actor.ActorSystem { return n.system }

// Cluster is the node's Proto.Actor cluster.
func (n *Node) Cluster() *protocluster.Cluster { return n.cluster }

// GossipAddr is the address memberlist bound (resolved when the
// configured port was 0).
func (n *Node) GossipAddr() string { return n.provider.gossipAddr }

// RemoteAddr is the address of the actor remote.
func (n *Node) RemoteAddr() string { return n.system.Address() }

// Ready returns nil when the node serves grain calls: it reached its seeds
// and its topology includes itself. Otherwise the error says why.
func (n *Node) Ready() error {
	if n.leaving.Load() {
		return fmt.Errorf("%w: leaving the cluster", ErrShuttingDown)
	}
	if !n.provider.Joined() {
		return fmt.Errorf("%w: waiting for seeds %s", ErrNotReady, strings.Join(n.cfg.Join, ","))
	}
	if !n.cluster.MemberList.ContainsMemberID(n.system.ID) {
		return fmt.Errorf("%w: not yet in its own topology", ErrNotReady)
	}
	return nil
}

// Members is the membership as this node's memberlist sees it, each
// member marked Placed when this node's topology places grains on it.
func (n *Node) Members() []MemberInfo {
	members := n.provider.Members()
	placed := n.TopologyIDs()
	for i := range members {
		members[i].Placed = slices.Contains(placed, members[i].ID)
	}
	return members
}

// TopologyIDs are the Proto.Actor member ids in this node's current
// topology: the members grains are placed on.
func (n *Node) TopologyIDs() []string {
	var ids []string
	for _, m := range n.cluster.MemberList.Members().Members() {
		ids = append(ids, m.Id)
	}
	return ids
}

// OwnerOf returns the remote address of the member that owns the grain
// according to this node's topology, with the same rendezvous hash disthash
// places grains with; "" when no member hosts kind.
func (n *Node) OwnerOf(identity, kind string) string {
	rdv := protocluster.NewRendezvous()
	rdv.UpdateMembers(n.cluster.MemberList.Members().Members())
	return rdv.GetByClusterIdentity(protocluster.NewClusterIdentity(identity, kind))
}

// ActiveGrains is how many activations of kind this node hosts now: the
// grains its placement actor started and that have not stopped yet; 0 for
// a kind the node does not host.
func (n *Node) ActiveGrains(kind string) int {
	k, ok := n.cluster.TryGetClusterKind(kind)
	if !ok {
		return 0
	}
	return int(k.Count())
}

// lookupTimeout bounds one activation request to a grain's owner. An
// activation is a local spawn on the owner, so a healthy owner answers in
// well under a millisecond; a request lost while the topology changes is
// given up on quickly and retried against the new owner, instead of waiting
// out the 5 s disthash.Manager.Get would.
const lookupTimeout = time.Second

// Idempotent is implemented by grain messages that may be delivered twice
// with the effect of once: reads, and writes that carry their own
// idempotency key. Request sends them again when the member running the
// grain fails mid-call; any other message fails with ErrHostLost then.
type Idempotent interface {
	Idempotent() bool
}

// Request sends msg to the grain kind/identity, activating it on its owner
// if needed, and waits for the reply until ctx's deadline (or the configured
// RequestTimeout when ctx has none).
//
// Finding the activation is retried with back-off inside that deadline
// while the cluster re-forms (a member just died or left). The call itself
// is retried only when it certainly did not run (the activation was gone:
// a dead letter), or when msg is Idempotent. When the member running the
// grain is declared failed while the call waits, the call ends then rather
// than at its deadline. Request fails with ErrShuttingDown, ErrTimeout,
// ErrHostLost or ErrUnavailable, or ctx's error when ctx was cancelled.
func (n *Node) Request(ctx context.Context, identity, kind string, msg any) (res any, err error) {
	if n.leaving.Load() {
		return nil, ErrShuttingDown
	}
	root := n.system.Root
	if tracing.Enabled() {
		var span trace.Span
		ctx, span = tracing.Start(ctx, kind+" "+messageName(msg), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("parley.grain.kind", kind)))
		defer func() { tracing.End(span, err) }()
		root = tracedRoot(n.system, ctx)
	}
	deadline := time.Now().Add(n.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	timeout := time.Until(deadline)
	idempotent := false
	if m, ok := msg.(Idempotent); ok {
		idempotent = m.Idempotent()
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		pid, err := n.activation(identity, kind, min(lookupTimeout, remaining))
		if err == nil {
			res, callErr := n.call(root, pid, msg, deadline)
			switch {
			case callErr == nil:
				return res, nil
			case errors.Is(callErr, actor.ErrTimeout):
				return nil, fmt.Errorf("%w: %s/%s after %s", ErrTimeout, kind, identity, timeout)
			case errors.Is(callErr, ErrHostLost) && !idempotent:
				return nil, fmt.Errorf("%s/%s: %w", kind, identity, callErr)
			}
			// A dead letter (the activation stopped, or its node is
			// leaving, before it saw msg), a host no longer in the
			// cluster, or a failed host and a message safe to repeat:
			// find the new activation.
			n.cluster.PidCache.RemoveByValue(identity, kind, pid)
			err = fmt.Errorf("activation %s gone: %w", pid, callErr)
		}
		lastErr = err
		// 10 ms, 20 ms, 40 ms … capped at 250 ms, never past the deadline.
		wait := min(10*time.Millisecond<<min(attempt, 5), 250*time.Millisecond, time.Until(deadline))
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, ctx.Err()
			}
		case <-time.After(max(wait, 0)):
		}
	}
	return nil, fmt.Errorf("%w: %s/%s: %v", ErrUnavailable, kind, identity, lastErr)
}

// errNotMember: the activation's host is no longer in the cluster, so
// the call was not sent.
var errNotMember = errors.New("host is not a member")

// call sends msg to pid and waits for its reply until deadline, or until
// pid's host is declared failed (ErrHostLost: the call may or may not
// have run there).
func (n *Node) call(root *actor.RootContext, pid *actor.PID, msg any, deadline time.Time) (any, error) {
	if pid.Address == n.system.Address() {
		return root.RequestFuture(pid, msg, time.Until(deadline)).Result()
	}
	// Watch before sending, so a failure after the send is never missed.
	lost, ok := n.provider.hostLost(pid.Address)
	if !ok {
		return nil, errNotMember
	}
	future := root.RequestFuture(pid, msg, time.Until(deadline))
	type result struct {
		res any
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := future.Result()
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-lost:
		return nil, fmt.Errorf("%w: %s failed while the call waited", ErrHostLost, pid.Address)
	}
}

// HostLost returns a channel that is closed when the member whose actor
// remote listens on address is declared failed, at once when no member
// has that address, and never for this node's own address. The edge ends
// a streamed reply with it when the session's node dies mid-reply.
func (n *Node) HostLost(address string) <-chan struct{} {
	if address == n.system.Address() {
		return nil
	}
	lost, ok := n.provider.hostLost(address)
	if !ok {
		closed := make(chan struct{})
		close(closed)
		return closed
	}
	return lost
}

// activation returns the PID of the grain's activation: from the PID cache,
// or by asking its owner's disthash placement actor to activate it.
func (n *Node) activation(identity, kind string, timeout time.Duration) (*actor.PID, error) {
	if pid, ok := n.cluster.PidCache.Get(identity, kind); ok {
		return pid, nil
	}
	owner := n.OwnerOf(identity, kind)
	if owner == "" {
		return nil, fmt.Errorf("no member hosts kind %q", kind)
	}
	activator := actor.NewPID(owner, disthash.PartitionActivatorActorName)
	req := &protocluster.ActivationRequest{ClusterIdentity: protocluster.NewClusterIdentity(identity, kind)}
	res, err := n.system.Root.RequestFuture(activator, req, timeout).Result()
	if err != nil {
		return nil, fmt.Errorf("activate on %s: %w", owner, err)
	}
	resp, ok := res.(*protocluster.ActivationResponse)
	if !ok || resp.Pid == nil {
		return nil, fmt.Errorf("activate on %s: no activation (%T)", owner, res)
	}
	n.cluster.PidCache.Set(identity, kind, resp.Pid)
	return resp.Pid, nil
}

// Leave hands this node's grains to the rest of the cluster: it announces
// its departure so peers stop routing to it, passivates every local grain
// (each persists as it stops), and stops remoting. Calls made meanwhile are
// retried by callers onto the new owners. Leave and Shutdown are safe to
// call more than once; after either, the node is stopped.
func (n *Node) Leave(ctx context.Context) error {
	return n.stop(ctx)
}

// Shutdown stops the node; it is Leave, for callers that say "stop".
func (n *Node) Shutdown(ctx context.Context) error {
	return n.stop(ctx)
}

// Kill stops the node abruptly, as a crashed process would: no leave is
// announced, grains are not passivated, and peers find out through the
// failure detector. For tests.
func (n *Node) Kill() {
	n.stopOnce.Do(func() {
		n.leaving.Store(true)
		n.logger.Warn("killing node")
		_ = n.provider.ml.Shutdown() // stop answering probes at once, no leave message
		n.cluster.Remote.Shutdown(false)
		_ = n.provider.Shutdown(false)
		n.system.Shutdown()
	})
}

func (n *Node) stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.leaving.Store(true)
		n.logger.Info("leaving cluster")
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.provider.announceLeaving(time.Second)
			n.drain()
			// Now announce: peers drop this node from their topology and
			// retry their calls on the new owners.
			n.provider.leave(n.cfg.LeaveTimeout)
			n.cluster.Shutdown(true)
		}()
		select {
		case <-done:
			n.logger.Info("left cluster")
		case <-ctx.Done():
			n.stopErr = fmt.Errorf("leave cluster: %w", ctx.Err())
		}
	})
	return n.stopErr
}

// drain passivates every grain this node hosts and makes it refuse new
// activations, while the rest of the cluster still routes to it: calls
// already sent complete, later ones come back as dead letters and are
// retried by their callers, so none is lost in the leave.
func (n *Node) drain() {
	self := actor.NewPID(n.system.Address(), disthash.PartitionActivatorActorName)
	if _, err := n.system.Root.RequestFuture(self, &disthash.Drain{}, n.cfg.LeaveTimeout).Result(); err != nil {
		n.logger.Warn("passivating grains before leaving", "err", err)
	}
}
