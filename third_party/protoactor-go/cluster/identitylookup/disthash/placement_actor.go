package disthash

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	clustering "github.com/asynkron/protoactor-go/cluster"
)

type GrainMeta struct {
	ID  *clustering.ClusterIdentity
	PID *actor.PID
}

type placementActor struct {
	cluster          *clustering.Cluster
	partitionManager *Manager
	actors           map[string]GrainMeta
	// byPID finds an activation's key from its PID's Id, so that a
	// Terminated costs one lookup rather than a scan of every activation
	// (a scan per passivation made passivating n grains cost n²).
	// (Parley patch.)
	byPID map[string]string
	// peak is the most activations held since the maps were last
	// rebuilt: Go maps never give back their buckets, so once the
	// activations fall to a quarter of it both maps are copied into
	// maps of their present size. (Parley patch.)
	peak     int
	draining bool
}

// Drain asks a node's placement actor (PartitionActivatorActorName) to
// passivate every grain it activated and to refuse new activations, and
// answers with the same *Drain once the grains have stopped. A node sends it
// to itself before it announces a graceful leave: calls in flight to its
// grains either complete or come back as dead letters (which callers retry
// elsewhere), instead of being lost with the connections peers close when
// the member leaves. (Parley patch.)
type Drain struct{}

func newPlacementActor(c *clustering.Cluster, pm *Manager) *placementActor {
	return &placementActor{
		cluster:          c,
		partitionManager: pm,
		actors:           map[string]GrainMeta{},
		byPID:            map[string]string{},
	}
}

func (p *placementActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.Logger().Info("Placement actor started")
	case *actor.Stopping:
		ctx.Logger().Info("Placement actor stopping")
		p.onStopping(ctx)
	case *actor.Stopped:
		ctx.Logger().Info("Placement actor stopped")
	case *actor.Terminated:
		p.onTerminated(msg)
	case *Drain:
		p.draining = true
		p.onStopping(ctx)
		ctx.Respond(msg)
	case *clustering.ActivationRequest:
		if p.draining {
			// nil: "not here", the caller retries once the topology
			// no longer names this node.
			ctx.Respond(nil)
			return
		}
		p.onActivationRequest(msg, ctx)
	case *clustering.ClusterTopology:
		p.onClusterTopology(msg, ctx)
	default:
		ctx.Logger().Error("Invalid message", slog.Any("message", msg), slog.Any("sender", ctx.Sender()))
	}
}

func (p *placementActor) onTerminated(msg *actor.Terminated) {
	found, key, meta := p.pidToMeta(msg.Who)
	if !found {
		// Parley patch: not one of ours (upstream dereferenced nil).
		return
	}
	clusterKind := p.cluster.GetClusterKind(meta.ID.Kind)
	clusterKind.Dec()

	activationTerminated := &clustering.ActivationTerminated{
		Pid:             msg.Who,
		ClusterIdentity: meta.ID,
	}
	p.partitionManager.cluster.MemberList.BroadcastEvent(activationTerminated, true)

	if found {
		delete(p.actors, *key)
		delete(p.byPID, msg.Who.Id) // Parley patch
		p.shrink()
	}
}

// shrink rebuilds the maps once they hold a quarter of their peak, so
// that a burst of activations leaves no memory behind after they have
// passivated. Each rebuild copies at most a quarter of the entries the
// peak added, so the cost per activation stays constant. (Parley patch.)
func (p *placementActor) shrink() {
	if p.peak < minShrinkPeak || len(p.actors) > p.peak/4 {
		return
	}
	actors := make(map[string]GrainMeta, len(p.actors))
	for k, v := range p.actors {
		actors[k] = v
	}
	byPID := make(map[string]string, len(p.byPID))
	for k, v := range p.byPID {
		byPID[k] = v
	}
	p.actors, p.byPID, p.peak = actors, byPID, len(actors)
}

// minShrinkPeak is the smallest peak worth a rebuild. (Parley patch.)
const minShrinkPeak = 1024

func (p *placementActor) onStopping(ctx actor.Context) {
	futures := make(map[string]*actor.Future, len(p.actors))

	for key, meta := range p.actors {
		futures[key] = ctx.PoisonFuture(meta.PID)
	}

	for key, future := range futures {
		err := future.Wait()
		if err != nil {
			ctx.Logger().Error("Failed to poison actor", slog.String("identity", key), slog.Any("error", err))
		}
	}
}

func (p *placementActor) onActivationRequest(msg *clustering.ActivationRequest, ctx actor.Context) {
	key := msg.ClusterIdentity.AsKey()
	meta, found := p.actors[key]
	if found {
		response := &clustering.ActivationResponse{
			Pid: meta.PID,
		}
		ctx.Respond(response)
		return
	}

	clusterKind := p.cluster.GetClusterKind(msg.ClusterIdentity.Kind)
	if clusterKind == nil {
		ctx.Logger().Error("Unknown cluster kind", slog.String("kind", msg.ClusterIdentity.Kind))

		// TODO: what to do here?
		ctx.Respond(nil)
		return
	}

	props := clustering.WithClusterIdentity(clusterKind.Props, msg.ClusterIdentity)

	pid := ctx.SpawnPrefix(props, msg.ClusterIdentity.Identity)
	clusterKind.Inc()

	p.actors[key] = GrainMeta{
		ID:  msg.ClusterIdentity,
		PID: pid,
	}
	p.byPID[pid.Id] = key // Parley patch
	p.peak = max(p.peak, len(p.actors))

	response := &clustering.ActivationResponse{
		Pid: pid,
	}

	ctx.Respond(response)
}

func (p *placementActor) pidToMeta(pid *actor.PID) (bool, *string, *GrainMeta) {
	// Parley patch: one lookup in byPID instead of a scan of p.actors;
	// PIDs compared by value, not pointer.
	if pid == nil {
		return false, nil, nil
	}
	k, ok := p.byPID[pid.Id]
	if !ok {
		return false, nil, nil
	}
	v, ok := p.actors[k]
	if !ok || !v.PID.Equal(pid) {
		return false, nil, nil
	}
	return true, &k, &v
}

func (p *placementActor) onClusterTopology(msg *clustering.ClusterTopology, ctx actor.Context) {
	rdv := clustering.NewRendezvous()
	rdv.UpdateMembers(msg.Members)
	myAddress := p.cluster.ActorSystem.Address()
	for identity, meta := range p.actors {
		ownerAddress := rdv.GetByIdentity(identity)
		if ownerAddress == myAddress {

			ctx.Logger().Debug("Actor stays", slog.String("identity", identity), slog.String("owner", ownerAddress), slog.String("me", myAddress))
			continue
		}

		ctx.Logger().Debug("Actor moved", slog.String("identity", identity), slog.String("owner", ownerAddress), slog.String("me", myAddress))

		ctx.Poison(meta.PID)
	}
}
