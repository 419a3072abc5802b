package testkit

import (
	"log/slog"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// SpawnGrain starts one activation of a grain outside any cluster, on
// system, the way the cluster would: the grain reads its identity with
// cluster.GetClusterIdentity in Started. Grain-level tests use it with a
// Probe and a FakeClock; spawning the same identity twice gives the two
// activations a membership change can briefly create. The activation is
// stopped when the test ends (if it has not stopped itself).
func SpawnGrain(t testing.TB, system *actor.ActorSystem, props *actor.Props, kind, identity string) *actor.PID {
	t.Helper()
	pid := system.Root.Spawn(cluster.WithClusterIdentity(props, cluster.NewClusterIdentity(identity, kind)))
	t.Cleanup(func() { _ = system.Root.StopFuture(pid).Wait() })
	return pid
}

// NewActorSystem returns an actor system whose logs go to the test log
// (see NewLogger) instead of stdout.
func NewActorSystem(t testing.TB) *actor.ActorSystem {
	logger := NewLogger(t)
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
}
