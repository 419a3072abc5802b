package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"golang.org/x/net/netutil"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/clock"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
	"github.com/parley-chat/parley/internal/tracing"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/diskspace"
	"github.com/parley-chat/parley/persistence/raftstore"
	"github.com/parley-chat/parley/persistence/sweeper"
)

// Shutdown budget: how long in-flight HTTP requests (SSE streams included)
// get to finish, then how long handing grains off and leaving may take.
const (
	httpDrainTimeout = 10 * time.Second
	// replyCutGrace is how long replies cut short get to be stored.
	replyCutGrace = 10 * time.Second
	leaveTimeout  = 15 * time.Second
	// traceFlushTimeout bounds sending the last spans to the collector.
	traceFlushTimeout = 5 * time.Second
)

// serve runs one node until SIGTERM or SIGINT, then leaves the cluster
// gracefully and returns nil. A second signal during the leave exits at
// once. SIGHUP reloads the tenants file (docs/tenants.md) and the cluster
// credentials (docs/security.md).
func serve(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogFormat, cfg.LogLevel).With("node", cfg.NodeName)

	n, err := start(cfg, logger, stdout)
	if err != nil {
		return err
	}

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	hangups := make(chan os.Signal, 1)
	signal.Notify(hangups, syscall.SIGHUP)
	defer signal.Stop(hangups)
wait:
	for {
		select {
		case <-hangups:
			n.reload(logger)
			n.security.reload(n.member, logger.With("component", "security"))
		case sig := <-signals:
			logger.Info("shutting down", "signal", sig.String())
			break wait
		case err := <-n.serveErr:
			n.stop(logger)
			return fmt.Errorf("http server: %w", err)
		}
	}
	stopped := make(chan struct{})
	go func() {
		n.stop(logger)
		close(stopped)
	}()
	// A second signal cuts the replies still running short (each is
	// stored as far as it got) and the shutdown goes on; a third exits.
	for hurried := false; ; {
		select {
		case <-stopped:
			logger.Info("stopped")
			return nil
		case sig := <-signals:
			if hurried {
				return fmt.Errorf("%s during shutdown: exiting without a clean leave", sig)
			}
			hurried = true
			logger.Warn("second signal: cutting replies in progress short", "signal", sig.String())
			close(n.hurry)
		}
	}
}

// node is a started Parley node: storage, cluster member and HTTP server.
type node struct {
	replies  *session.Replies // the replies this node's sessions are writing
	hurry    chan struct{}    // closed by a second signal: stop waiting for replies
	tenants  *tenants.Registry
	models   *tenantModels
	reloads  reloadObserver
	cfg      serveConfig
	stores   stores
	disk     *diskspace.Guard
	voters   *raftstore.Reconciler // nil without a replicated store
	security *nodeSecurity         // nil when the cluster runs in the clear
	sweeper  *sweeper.Sweeper
	member   *cluster.Node
	http     *http.Server
	serveErr chan error
	stopping atomic.Bool
	debug    *debugServer // nil without --debug-addr
	// stopTracing flushes the spans not yet exported (a no-op without
	// --otlp-endpoint).
	stopTracing func(context.Context) error
}

// start brings a node up in dependency order. Anything wrong with how it
// was run (a port in use, a locked data dir) is a usageError, and whatever
// had started is stopped again.
func start(cfg serveConfig, logger *slog.Logger, stdout io.Writer) (_ *node, err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	// Claim every port before starting anything, so that a port in use
	// is reported by the flag that names it and nothing half-starts.
	httpListener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, usageError{fmt.Errorf("--http-addr %s: %w", cfg.HTTPAddr, portError(err))}
	}
	undo = append(undo, func() { _ = httpListener.Close() })
	var debugListener net.Listener
	if cfg.DebugAddr != "" {
		if debugListener, err = net.Listen("tcp", cfg.DebugAddr); err != nil {
			return nil, usageError{fmt.Errorf("--debug-addr %s: %w", cfg.DebugAddr, portError(err))}
		}
		undo = append(undo, func() { _ = debugListener.Close() })
	}
	if err := checkFree("gossip-addr", cfg.GossipAddr, true); err != nil {
		return nil, err
	}
	if err := checkFree("remote-addr", cfg.RemoteAddr, false); err != nil {
		return nil, err
	}
	if cfg.Store == storeReplicated {
		if err := checkFree("raft-addr", cfg.RaftAddr, false); err != nil {
			return nil, err
		}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, usageError{fmt.Errorf("--data-dir: %w", err)}
	}
	sec, err := loadSecurity(cfg, logger)
	if err != nil {
		return nil, err
	}
	stopTracing := func(context.Context) error { return nil }
	if cfg.OTLPEndpoint != "" {
		if stopTracing, err = tracing.Setup(context.Background(), cfg.OTLPEndpoint, "parley", cfg.NodeName); err != nil {
			return nil, usageError{fmt.Errorf("--otlp-endpoint: %w", err)}
		}
		undo = append(undo, func() { _ = stopTracing(context.Background()) })
	}
	registry, err := loadTenants(cfg, stdout)
	if err != nil {
		return nil, err
	}
	metrics := edge.NewMetrics()
	// Every tenant's model now, so that a missing API key stops the node
	// before anything started.
	models := &tenantModels{mock: model.Mock{TokenDelay: cfg.MockTokenDelay}, chain: model.ChainConfig{Observer: metrics}}
	if err := models.build(registry); err != nil {
		return nil, usageError{fmt.Errorf("--tenants: %w", err)}
	}
	st, err := openStores(cfg, sec, logger.With("component", "storage"))
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = st.close() })
	store := st.sessions
	if tracing.Enabled() {
		store = persistence.Traced(store)
	}

	metrics.WatchUsage(registry.IDs, registry.Quota, store)
	replies := session.NewReplies()
	// The limiter needs the cluster member, which needs the session kind:
	// replies charge their tokens through it once it exists.
	var limiterRef atomic.Pointer[ratelimit.Limiter]
	sessions, err := session.NewKind(session.Config{
		Replies:     replies,
		Store:       store,
		Retention:   registry.Retention,
		Models:      models.For,
		OnUsage:     edge.ChargeTokens(registry, limiterRef.Load, logger.With("component", "ratelimit")),
		Prompt:      registry.Prompt,
		OnActivate:  func() { metrics.GrainActivated(session.Kind) },
		IdleTimeout: cfg.SessionIdle,
		Logger:      logger.With("component", "session"),
	})
	if err != nil {
		return nil, err
	}
	sweeper := st.startSweeper(clock.Real, registry.Retention, logger.With("component", "sweep"))
	undo = append(undo, sweeper.Stop)

	cacheKind, err := cache.NewKind(cache.Config{Store: store, Quota: registry.Quota, Logger: logger.With("component", "cache")})
	if err != nil {
		return nil, err
	}

	// The limiter kind is made before the cluster that counts its
	// activations starts; until then no limiter is running anyway.
	var memberRef atomic.Pointer[cluster.Node]
	var crowded func() bool
	if cfg.LimiterMax > 0 {
		crowded = func() bool {
			m := memberRef.Load()
			return m != nil && m.ActiveGrains(ratelimit.Kind) > cfg.LimiterMax
		}
	}
	limiterKind, err := ratelimit.NewKind(ratelimit.Config{Store: st.limits, IdleTimeout: cfg.LimiterIdle, Crowded: crowded, Logger: logger.With("component", "ratelimit")})
	if err != nil {
		return nil, err
	}

	ccfg := cluster.DefaultConfig()
	ccfg.NodeName = cfg.NodeName
	ccfg.GossipAddr = cfg.GossipAddr
	ccfg.RemoteAddr = cfg.RemoteAddr
	ccfg.HTTPAddr = httpListener.Addr().String()
	if rs := st.replicated(); rs != nil {
		ccfg.RaftAddr = rs.RaftAddr()
	}
	ccfg.Join = cfg.Join
	ccfg.Logger = logger
	ccfg.Kinds = []*protocluster.Kind{sessions, cacheKind, limiterKind}
	sec.apply(&ccfg)
	member, err := cluster.Start(ccfg)
	if err != nil {
		return nil, usageError{err}
	}
	undo = append(undo, func() {
		ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
		defer cancel()
		_ = member.Shutdown(ctx)
	})

	memberRef.Store(member)
	metrics.WatchGrains([]string{session.Kind, cache.Kind, ratelimit.Kind}, member.ActiveGrains)

	limiter, err := ratelimit.NewLimiter(member, ratelimit.LimiterConfig{Observer: metrics, Logger: logger.With("component", "ratelimit")})
	if err != nil {
		return nil, err
	}
	limiterRef.Store(limiter)
	cacheClient := cache.NewClient(member)
	cacheClient.Observer = metrics
	n := &node{replies: replies, hurry: make(chan struct{}), tenants: registry, models: models, reloads: metrics, cfg: cfg, stores: st, sweeper: sweeper, member: member, serveErr: make(chan error, 1),
		security: sec, stopTracing: stopTracing, disk: diskspace.NewGuard(diskspace.Statfs{Dir: cfg.DataDir}, cfg.MinFreeDisk, logger.With("component", "disk"))}
	if rs := st.replicated(); rs != nil {
		n.voters = startVoterReconciler(rs, member, cfg.RaftDeadVoter, logger.With("component", "raft"))
	}
	handler, err := edge.New(edge.Config{
		NodeName:        cfg.NodeName,
		Health:          n,
		Tenants:         registry,
		Sessions:        session.NewClient(member, member.System()),
		Metrics:         metrics,
		Models:          models.For,
		Cache:           cacheClient,
		RateLimiter:     edge.NewRateLimiter(limiter),
		TrustedProxies:  cfg.TrustedProxies,
		Heartbeat:       cfg.Heartbeat,
		Draining:        n.stopping.Load,
		Disk:            n.disk,
		BodyReadTimeout: cfg.BodyReadTimeout,
		Logger:          logger.With("component", "http"),
	})
	if err != nil {
		return nil, err
	}
	// No ReadTimeout or WriteTimeout: the edge bounds each body's arrival
	// (--body-read-timeout) and a stream lasts as long as its reply.
	n.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    edge.ServerMaxHeaderBytes(edge.Config{}),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	limited := netutil.LimitListener(httpListener, cfg.MaxConnections)
	go func() {
		if err := n.http.Serve(limited); !errors.Is(err, http.ErrServerClosed) {
			n.serveErr <- err
		}
	}()
	if debugListener != nil {
		n.debug = startDebug(debugListener, logger.With("component", "debug"))
	}
	logger.Info("parley node started", "http", httpListener.Addr().String(), "gossip", member.GossipAddr(), "remote", member.RemoteAddr(),
		"store", cfg.Store, "raft", ccfg.RaftAddr, "dataDir", cfg.DataDir, "join", cfg.Join, "tls", sec != nil)
	return n, nil
}

// stop is the graceful shutdown: stop taking requests (readyz turns 503 at
// once, in-flight requests finish), passivate this node's grains and leave
// gossip, then close storage.
func (n *node) stop(logger *slog.Logger) {
	n.stopping.Store(true)
	deadline := n.drainReplies(logger)
	// Requests in flight (streams of replies other nodes write among
	// them) get the rest of the drain, and at least httpDrainTimeout.
	ctx, cancel := context.WithDeadline(context.Background(), later(deadline, time.Now().Add(httpDrainTimeout)))
	if err := n.http.Shutdown(ctx); err != nil {
		logger.Warn("in-flight requests cut off", "err", err)
		_ = n.http.Close()
	}
	cancel()
	ctx, cancel = context.WithTimeout(context.Background(), leaveTimeout)
	if err := n.member.Leave(ctx); err != nil {
		logger.Warn("leave incomplete", "err", err)
	}
	cancel()
	n.sweeper.Stop()
	n.voters.Stop()
	if rs := n.stores.replicated(); rs != nil {
		// Hand leadership over first: writes then wait for one hand-off
		// instead of an election timeout. The node stays a voter, as it
		// is expected back (a restart); see raftstore.Reconciler.
		if err := rs.TransferLeadership(); err != nil {
			logger.Warn("handing raft leadership over", "err", err)
		}
	}
	if err := n.stores.close(); err != nil {
		logger.Error("closing storage", "err", err)
	}
	n.debug.stop()
	ctx, cancel = context.WithTimeout(context.Background(), traceFlushTimeout)
	if err := n.stopTracing(ctx); err != nil {
		logger.Warn("flushing traces", "err", err)
	}
	cancel()
}

// drainReplies waits, while the node still serves (new chats get 503),
// for the replies its sessions are writing to end and be stored, up to
// --drain-timeout or a second signal; then it cuts those still running
// short, so each is stored as far as it got and its stream ends with an
// error. It returns the drain's deadline (now, when hurried).
func (n *node) drainReplies(logger *slog.Logger) time.Time {
	n.replies.Drain()
	deadline := time.Now().Add(n.cfg.DrainTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	go func() {
		select {
		case <-n.hurry:
			cancel()
		case <-ctx.Done():
		}
	}()
	if running := n.replies.Running(); running > 0 {
		logger.Info("draining: waiting for the replies in progress", "replies", running, "timeout", n.cfg.DrainTimeout)
	}
	if n.replies.Wait(ctx) == nil {
		return deadline
	}
	logger.Warn("draining: cutting replies short; each is stored as far as it got", "replies", n.replies.Running())
	n.replies.Cut()
	wait, cancelWait := context.WithTimeout(context.Background(), replyCutGrace)
	defer cancelWait()
	if err := n.replies.Wait(wait); err != nil {
		logger.Error("draining: replies not stored in time", "replies", n.replies.Running())
	}
	return time.Now()
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Ready implements edge.Health: the node is not draining, has joined the
// cluster, and can write (canWrite).
func (n *node) Ready() error {
	if n.stopping.Load() {
		return errors.New("shutting down")
	}
	if err := n.member.Ready(); err != nil {
		return err
	}
	var store leaderless
	if rs := n.stores.replicated(); rs != nil {
		store = rs
	}
	return canWrite(store, n.disk)
}

// storeLeaderGrace is how long a member of the replicated store may know
// no raft leader (an election, or waiting to be added) before the node
// reports that it cannot write.
const storeLeaderGrace = 5 * time.Second

// leaderless is the part of *raftstore.Store readiness asks.
type leaderless interface {
	LeaderlessFor() time.Duration
}

// canWrite says why the node cannot take writes, or nil: its replicated
// store (nil with --store local) has known no leader for longer than
// storeLeaderGrace, which is what a lost quorum looks like from a member,
// or its disk is below the watermark.
func canWrite(store leaderless, disk edge.DiskSpace) error {
	if store != nil {
		if d := store.LeaderlessFor(); d > storeLeaderGrace {
			return fmt.Errorf("replicated store: no raft leader known for %s: no quorum of voters reachable", d.Round(time.Second))
		}
	}
	if err := disk.Check(); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	return nil
}

// Voters implements edge.Voters: the replicated store's voters, none with
// the node-local store.
func (n *node) Voters() []string {
	if rs := n.stores.replicated(); rs != nil {
		return rs.Voters()
	}
	return nil
}

// ClusterTLS implements edge.ClusterSecurity.
func (n *node) ClusterTLS() bool { return n.security != nil }

// Members implements edge.Health.
func (n *node) Members() any { return n.member.Members() }

// checkFree reports, as a usageError naming the flag, whether addr is
// already taken (TCP, and UDP too for gossip).
func checkFree(flagName, addr string, udp bool) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError{fmt.Errorf("--%s %s: %w", flagName, addr, portError(err))}
	}
	_ = l.Close()
	if udp {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return usageError{fmt.Errorf("--%s %s (udp): %w", flagName, addr, portError(err))}
		}
		_ = pc.Close()
	}
	return nil
}

// portError shortens "listen tcp 127.0.0.1:8080: bind: address already in
// use" to its cause.
func portError(err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return errors.New("port already in use")
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return errors.New("address not available on this machine")
	}
	return err
}
