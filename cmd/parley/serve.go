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

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
)

// Shutdown budget: how long in-flight HTTP requests (SSE streams included)
// get to finish, then how long handing grains off and leaving may take.
const (
	httpDrainTimeout = 10 * time.Second
	leaveTimeout     = 15 * time.Second
)

// serve runs one node until SIGTERM or SIGINT, then leaves the cluster
// gracefully and returns nil. A second signal during the leave exits at
// once.
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
	select {
	case sig := <-signals:
		logger.Info("shutting down", "signal", sig.String())
	case err := <-n.serveErr:
		n.stop(logger)
		return fmt.Errorf("http server: %w", err)
	}
	stopped := make(chan struct{})
	go func() {
		n.stop(logger)
		close(stopped)
	}()
	select {
	case <-stopped:
		logger.Info("stopped")
		return nil
	case sig := <-signals:
		return fmt.Errorf("%s during shutdown: exiting without a clean leave", sig)
	}
}

// node is a started Parley node: storage, cluster member and HTTP server.
type node struct {
	stores   stores
	voters   *voterReconciler // nil without a replicated store
	sweeper  *session.Sweeper
	member   *cluster.Node
	http     *http.Server
	serveErr chan error
	stopping atomic.Bool
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
	registry, err := loadTenants(cfg, stdout)
	if err != nil {
		return nil, err
	}
	metrics := edge.NewMetrics()
	// Every tenant's model now, so that a missing API key stops the node
	// before anything started.
	models, err := registry.Models(model.Mock{TokenDelay: cfg.MockTokenDelay}, model.ChainConfig{Observer: metrics}, nil)
	if err != nil {
		return nil, usageError{fmt.Errorf("--tenants: %w", err)}
	}
	st, err := openStores(cfg, logger.With("component", "storage"))
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = st.close() })
	store := st.sessions

	// The limiter needs the cluster member, which needs the session kind:
	// replies charge their tokens through it once it exists.
	var limiterRef atomic.Pointer[ratelimit.Limiter]
	sessions, err := session.NewKind(session.Config{
		Store:       store,
		Retention:   registry.Retention,
		Models:      models,
		OnUsage:     edge.ChargeTokens(registry, limiterRef.Load, logger.With("component", "ratelimit")),
		Prompt:      registry.Prompt,
		OnActivate:  func() { metrics.GrainActivated(session.Kind) },
		IdleTimeout: cfg.SessionIdle,
		Logger:      logger.With("component", "session"),
	})
	if err != nil {
		return nil, err
	}
	sweeper := session.StartSweeper(session.SweeperConfig{Store: store, Retention: registry.Retention, Logger: logger.With("component", "sweep")})
	undo = append(undo, sweeper.Stop)

	cacheKind, err := cache.NewKind(cache.Config{Store: store, Logger: logger.With("component", "cache")})
	if err != nil {
		return nil, err
	}

	limiterKind, err := ratelimit.NewKind(ratelimit.Config{Store: st.limits, Logger: logger.With("component", "ratelimit")})
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
	member, err := cluster.Start(ccfg)
	if err != nil {
		return nil, usageError{err}
	}
	undo = append(undo, func() {
		ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
		defer cancel()
		_ = member.Shutdown(ctx)
	})

	limiter, err := ratelimit.NewLimiter(member, ratelimit.LimiterConfig{Observer: metrics, Logger: logger.With("component", "ratelimit")})
	if err != nil {
		return nil, err
	}
	limiterRef.Store(limiter)
	cacheClient := cache.NewClient(member)
	cacheClient.Observer = metrics
	n := &node{stores: st, sweeper: sweeper, member: member, serveErr: make(chan error, 1)}
	if rs := st.replicated(); rs != nil {
		n.voters = startVoterReconciler(rs, member, cfg.RaftDeadVoter, logger.With("component", "raft"))
	}
	handler, err := edge.New(edge.Config{
		NodeName:    cfg.NodeName,
		Health:      n,
		Tenants:     registry,
		Grains:      member,
		System:      member.System(),
		Metrics:     metrics,
		Cache:       cacheClient,
		RateLimiter: edge.NewRateLimiter(limiter, cfg.TrustedProxies),
		Logger:      logger.With("component", "http"),
	})
	if err != nil {
		return nil, err
	}
	n.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := n.http.Serve(httpListener); !errors.Is(err, http.ErrServerClosed) {
			n.serveErr <- err
		}
	}()
	logger.Info("parley node started", "http", httpListener.Addr().String(), "gossip", member.GossipAddr(), "remote", member.RemoteAddr(),
		"store", cfg.Store, "raft", ccfg.RaftAddr, "dataDir", cfg.DataDir, "join", cfg.Join)
	return n, nil
}

// stop is the graceful shutdown: stop taking requests (readyz turns 503 at
// once, in-flight requests finish), passivate this node's grains and leave
// gossip, then close storage.
func (n *node) stop(logger *slog.Logger) {
	n.stopping.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), httpDrainTimeout)
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
	n.voters.stop()
	if rs := n.stores.replicated(); rs != nil {
		// Hand leadership over first: writes then wait for one hand-off
		// instead of an election timeout. The node stays a voter, as it
		// is expected back (a restart); see voterReconciler.
		if err := rs.TransferLeadership(); err != nil {
			logger.Warn("handing raft leadership over", "err", err)
		}
	}
	if err := n.stores.close(); err != nil {
		logger.Error("closing storage", "err", err)
	}
}

// Ready implements edge.Health: the node has joined the cluster and its
// storage is open.
func (n *node) Ready() error {
	if n.stopping.Load() {
		return errors.New("shutting down")
	}
	return n.member.Ready()
}

// Voters implements edge.Voters: the replicated store's voters, none with
// the node-local store.
func (n *node) Voters() []string {
	if rs := n.stores.replicated(); rs != nil {
		return rs.Voters()
	}
	return nil
}

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
