package session

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/passivation"
	"github.com/parley-chat/parley/internal/tracing"
	"github.com/parley-chat/parley/persistence"
)

// NewKind returns the ChatSession grain kind to register on every node.
func NewKind(cfg Config) (*cluster.Kind, error) {
	return grains.NewKind(Kind, cfg, DefaultConfig(), activate)
}

// Props returns the grain's props, for tests that spawn one outside a
// cluster (testkit.SpawnGrain).
func Props(cfg Config) (*actor.Props, error) {
	return grains.Props(cfg, DefaultConfig(), activate)
}

func activate(cfg Config) actor.Actor { return &grain{cfg: cfg} }

// grain is one session's activation.
type grain struct {
	cfg       Config
	key       persistence.SessionKey
	keyErr    error // a malformed identity: every request is refused
	retention Retention

	loaded  bool
	lastSeq uint64                // newest sequence ever appended
	tail    []persistence.Message // the newest messages, newest last (tail.go)
	// tailAll says tail holds every message the store holds for the
	// session (the oldest included), so any page can come from memory.
	tailAll   bool
	tailBytes int // the text tail holds
	// newest is the newest page as last answered (of newestLimit
	// messages at most), until the tail changes.
	newest      *Page
	newestLimit int

	// live is the reply in progress, its followers and its tokens so far
	// (follow.go); nil when none.
	live *liveReply

	idle     *passivation.Idle
	replying bool // a model reply is in progress
	// run is the slot in Config.Replies a Chat holds from before its user
	// message is stored until its reply starts (startReply takes it).
	run *replyRun
	// stopReply cancels the reply in progress; stopped says Stop did.
	stopReply context.CancelFunc
	stopped   bool

	// trace is the span context of the message being handled (a client's
	// request, or the reply being stored); store calls are its children.
	// context.Background() when tracing is off.
	trace context.Context
}

func (g *grain) Receive(ctx actor.Context) {
	if tracing.Enabled() {
		var span trace.Span
		g.trace, span = g.span(ctx)
		defer span.End()
	}
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		g.started(ctx)
	case *actor.Stopping:
		g.idle.Stop()
	case passivation.Tick:
		// A reply in progress is activity.
		if idleFor, ok := g.idle.Check(ctx, g.replying); ok {
			g.cfg.Logger.Debug("passivating idle session", "tenant", g.key.Tenant, "session", g.key.Session, "idle", idleFor)
			ctx.Stop(ctx.Self())
		}
	case *Append:
		g.idle.Touch()
		g.append(ctx, msg)
	case *History:
		g.idle.Touch()
		g.history(ctx, msg)
	case *Clear:
		g.idle.Touch()
		g.clear(ctx)
	case *Chat:
		g.idle.Touch()
		g.chat(ctx, msg)
	case *Stop:
		g.idle.Touch()
		g.stop(ctx)
	case *Follow:
		g.follow(ctx, msg)
	case *Regenerate:
		g.idle.Touch()
		g.regenerate(ctx, msg)
	case *replyFinished:
		g.idle.Touch()
		g.replyDone(ctx, msg)
	}
}

func (g *grain) started(ctx actor.Context) {
	if g.cfg.OnActivate != nil {
		g.cfg.OnActivate()
	}
	ci := cluster.GetClusterIdentity(ctx)
	g.key, g.keyErr = ParseIdentity(ci.Identity)
	if g.keyErr == nil {
		g.retention = g.cfg.Retention(g.key.Tenant)
		if err := g.load(); err != nil {
			// Not fatal: the first request tries again.
			g.cfg.Logger.Warn("loading session", "tenant", g.key.Tenant, "session", g.key.Session, "err", err)
		}
	}
	g.idle = passivation.Start(ctx, g.cfg.Clock, g.cfg.IdleTimeout)
}

// load reads what the activation needs: the sequence and a bounded tail,
// never the whole history.
func (g *grain) load() error {
	sctx, cancel := g.storeContext()
	defer cancel()
	meta, err := g.cfg.Store.Meta(sctx, g.key)
	if err != nil {
		return err
	}
	var tail []persistence.Message
	if g.cfg.TailSize > 0 && meta.LastSeq > 0 {
		newest, err := g.cfg.Store.Page(sctx, g.key, 0, g.cfg.TailSize, g.notBefore())
		if err != nil {
			return err
		}
		for i := len(newest) - 1; i >= 0; i-- {
			tail = append(tail, newest[i])
		}
	}
	g.lastSeq, g.loaded = meta.LastSeq, true
	g.setTail(tail, meta.LastSeq == 0 || len(tail) < g.cfg.TailSize)
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
			g.fail(ctx, "load session", err)
			return false
		}
	}
	return true
}

func (g *grain) fail(ctx actor.Context, what string, err error) {
	g.cfg.Logger.Error(what, "tenant", g.key.Tenant, "session", g.key.Session, "err", err)
	ctx.Respond(grains.StoreFailure(what, err))
}

func (g *grain) storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(g.storeParent(), g.cfg.StoreTimeout)
}

// storeParent is the context store calls and a reply's model call
// descend from: the handled message's span, when tracing is on.
func (g *grain) storeParent() context.Context {
	if g.trace == nil {
		return context.Background()
	}
	return g.trace
}

// span starts the span of the message ctx holds: a client's request
// continues the trace its envelope carries; a finished reply continues
// its chat's.
func (g *grain) span(ctx actor.Context) (context.Context, trace.Span) {
	switch msg := ctx.Message().(type) {
	case *replyFinished:
		if msg.trace == nil {
			break
		}
		return tracing.Start(msg.trace, "session store reply")
	case *Append, *History, *Clear, *Chat, *Stop, *Follow, *Regenerate:
		return tracing.StartFrom(ctx.MessageHeader(), "session "+string(ctx.Message().(proto.Message).ProtoReflect().Descriptor().Name()))
	}
	return context.Background(), trace.SpanFromContext(context.Background())
}

// notBefore is the oldest creation time retention still shows.
func (g *grain) notBefore() time.Time {
	if g.retention.MaxAge <= 0 {
		return time.Time{}
	}
	return g.cfg.Clock.Now().Add(-g.retention.MaxAge)
}
