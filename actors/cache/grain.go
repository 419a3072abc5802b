package cache

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/passivation"
	"github.com/parley-chat/parley/persistence"
)

// NewKind returns the Cache grain kind to register on every node.
func NewKind(cfg Config) (*cluster.Kind, error) {
	return grains.NewKind(Kind, cfg, DefaultConfig(), activate)
}

// Props returns the grain's props, for tests that spawn one outside a
// cluster (testkit.SpawnGrain).
func Props(cfg Config) (*actor.Props, error) {
	return grains.Props(cfg, DefaultConfig(), activate)
}

func activate(cfg Config) actor.Actor { return &grain{cfg: cfg} }

// grain is one cache key's activation.
type grain struct {
	cfg    Config
	key    persistence.KVKey
	keyErr error // a malformed identity: every request is refused

	loaded    bool      // the entry below mirrors the store
	present   bool      // an entry exists (it may have expired since)
	value     []byte    // never modified in place: a Put replaces it
	expiresAt time.Time // when the entry stops being returned

	idle *passivation.Idle
}

func (g *grain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		g.started(ctx)
	case *actor.Stopping:
		g.idle.Stop()
	case passivation.Tick:
		if idleFor, ok := g.idle.Check(ctx, false); ok {
			g.cfg.Logger.Debug("passivating idle cache key", "tenant", g.key.Tenant, "idle", idleFor)
			ctx.Stop(ctx.Self())
		}
	case *Get:
		g.idle.Touch()
		g.get(ctx)
	case *Put:
		g.idle.Touch()
		g.put(ctx, msg)
	case *Delete:
		g.idle.Touch()
		g.delete(ctx)
	}
}

func (g *grain) started(ctx actor.Context) {
	ci := cluster.GetClusterIdentity(ctx)
	g.key, g.keyErr = ParseIdentity(ci.Identity)
	if g.keyErr == nil {
		if err := g.load(); err != nil {
			// Not fatal: the first request tries again.
			g.cfg.Logger.Warn("loading cache entry", "tenant", g.key.Tenant, "err", err)
		}
	}
	g.idle = passivation.Start(ctx, g.cfg.Clock, g.cfg.IdleTimeout)
}

// load reads the entry into memory. The store already treats an entry at
// or past its expiry as missing.
func (g *grain) load() error {
	sctx, cancel := g.storeContext()
	defer cancel()
	value, expiresAt, ok, err := g.cfg.Store.Get(sctx, g.key, g.cfg.Clock.Now())
	if err != nil {
		return err
	}
	g.present, g.value, g.expiresAt, g.loaded = ok, value, expiresAt, true
	return nil
}

// ready is true when the grain can serve a request; otherwise it has
// answered with a Failure.
func (g *grain) ready(ctx actor.Context) bool {
	if g.keyErr != nil {
		ctx.Respond(&grains.Failure{Code: grains.CodeInvalidArgument, Message: g.keyErr.Error()})
		return false
	}
	if !g.loaded {
		if err := g.load(); err != nil {
			g.fail(ctx, "load", err)
			return false
		}
	}
	return true
}

// fail answers unavailable. The key is not logged: it is client text.
func (g *grain) fail(ctx actor.Context, what string, err error) {
	g.cfg.Logger.Error("cache "+what, "tenant", g.key.Tenant, "err", err)
	ctx.Respond(grains.StoreFailure("cache "+what, err))
}

func (g *grain) storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), g.cfg.StoreTimeout)
}
