package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/http/edge"
	"github.com/parley-chat/parley/internal/tracing"
	"github.com/parley-chat/parley/persistence/diskspace"
	"github.com/parley-chat/parley/persistence/raftstore"
)

// defaultMaxConnections is --max-connections: 10,000 SSE streams and room
// for the short requests beside them.
const defaultMaxConnections = 12_000

// defaultDrainTimeout is --drain-timeout: long enough for a typical
// model reply to finish. A reply may run longer (session.Config's
// ReplyTimeout bounds fallbacks and retries too); one still running when
// the drain ends is stored as far as it got.
const defaultDrainTimeout = 2 * time.Minute

// defaultLimiterMax is --limiter-max-active: about 8 MiB of live heap at
// some 2.6 KiB per active limiter on a node (docs/rate-limiting.md).
const defaultLimiterMax = 3_000

// errHelp: -h was asked for and printed.
var errHelp = errors.New("help requested")

// serveConfig is everything `parley serve` is told by flags or PARLEY_*
// variables (a flag wins over its variable).
type serveConfig struct {
	NodeName       string
	HTTPAddr       string
	GossipAddr     string
	RemoteAddr     string
	Join           []string
	DataDir        string
	TenantsFile    string
	MockTokenDelay time.Duration
	LogFormat      string
	LogLevel       string
	TrustedProxies []netip.Prefix
	Store          string
	RaftAddr       string
	RaftBootstrap  bool
	RaftDeadVoter  time.Duration
	SessionIdle    time.Duration
	DrainTimeout   time.Duration
	LimiterIdle    time.Duration
	LimiterMax     int
	Heartbeat      time.Duration
	// Bounds on what one client can hold (docs/operations.md).
	BodyReadTimeout time.Duration
	MaxConnections  int
	MinFreeDisk     diskspace.Watermark
	// The debug listener (pprof, expvar); off when DebugAddr is empty.
	DebugAddr   string
	DebugPublic bool
	// Where traces go over OTLP/HTTP; off when empty.
	OTLPEndpoint string
	Security     securityConfig // security.go
}

// envName maps a flag name to its environment variable: node-name →
// PARLEY_NODE_NAME.
func envName(flagName string) string {
	return "PARLEY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseServeFlags reads flags, then fills what they left unset from the
// environment, and validates the result.
func parseServeFlags(args []string, stderr io.Writer) (serveConfig, error) {
	var (
		c       serveConfig
		join    string
		proxies string
	)
	fs := flag.NewFlagSet("parley serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.NodeName, "node-name", "", "unique node name in the cluster (default: host name and gossip port)")
	fs.StringVar(&c.HTTPAddr, "http-addr", cluster.DefaultConfig().HTTPAddr, "host:port the HTTP API listens on")
	fs.StringVar(&c.GossipAddr, "gossip-addr", cluster.DefaultConfig().GossipAddr, "IP:port for memberlist gossip (TCP and UDP)")
	fs.StringVar(&c.RemoteAddr, "remote-addr", cluster.DefaultConfig().RemoteAddr, "IP:port for Proto.Actor remoting (gRPC)")
	fs.StringVar(&join, "join", "", "comma-separated gossip addresses of seed nodes; retried until one answers")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory of this node's Badger database")
	fs.StringVar(&c.TenantsFile, "tenants", "", "tenants file (JSON)")
	fs.DurationVar(&c.MockTokenDelay, "mock-token-delay", model.DefaultMock().TokenDelay, "delay between tokens of the mock model")
	fs.DurationVar(&c.SessionIdle, "session-idle-timeout", session.DefaultConfig().IdleTimeout, "passivate a chat session after this long without requests")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", defaultDrainTimeout, "on SIGTERM, how long replies in progress may take to finish before they are cut short and stored as far as they got")
	fs.DurationVar(&c.LimiterIdle, "limiter-idle-timeout", ratelimit.DefaultConfig().IdleTimeout, "passivate a rate limiter (one per tenant, user and IP) after this long without requests")
	fs.IntVar(&c.LimiterMax, "limiter-max-active", defaultLimiterMax, "above this many rate limiters on the node, a limiter writes its counters after 250 ms and passivates once they are written and it has been idle 250 ms (0: no bound)")
	fs.DurationVar(&c.Heartbeat, "sse-heartbeat", edge.DefaultConfig().Heartbeat, "interval of SSE ': ping' comments while a stream is idle")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.Store, "store", storeReplicated, "session and cache storage: replicated (raft over every node, docs/durability.md) or local (this node's disk only)")
	fs.StringVar(&c.RaftAddr, "raft-addr", raftstore.DefaultConfig().BindAddr, "IP:port of this node's replicated-store member: raft traffic and forwarded writes (bind it privately)")
	fs.BoolVar(&c.RaftBootstrap, "raft-bootstrap", false, "start a new replicated store with this node as its only voter (others join as voters); implied without --join")
	fs.DurationVar(&c.RaftDeadVoter, "raft-dead-voter-timeout", 2*time.Minute, "remove a voter that has been out of the cluster this long, while at least 3 voters stay")
	fs.DurationVar(&c.BodyReadTimeout, "body-read-timeout", edge.DefaultConfig().BodyReadTimeout, "how long a request body may take to arrive after its headers (408 past it)")
	c.MinFreeDisk, _ = diskspace.ParseWatermark(diskspace.DefaultWatermark)
	fs.Var(watermarkValue{&c.MinFreeDisk}, "min-free-disk", "free space the data dir's filesystem keeps: below it writes get 507 and /readyz is 503; a size (512MiB), a share (5%), or a comma list whose smallest wins; 0 for none")
	fs.IntVar(&c.MaxConnections, "max-connections", defaultMaxConnections, "HTTP connections this node holds at once (SSE streams included); more wait in the listen backlog")
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "host:port of a listener serving net/http/pprof and expvar (off when empty; loopback only unless --debug-addr-public)")
	fs.BoolVar(&c.DebugPublic, "debug-addr-public", false, "allow --debug-addr on a non-loopback address")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", "", "URL of an OTLP/HTTP collector that receives the node's traces, such as http://127.0.0.1:4318 (off when empty)")
	c.Security.register(fs)
	fs.StringVar(&proxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed for the client IP")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "Usage: parley serve [flags]\n\nFlags (each also read from the PARLEY_* variable shown):")
			fs.VisitAll(func(f *flag.Flag) {
				fmt.Fprintf(stderr, "  --%s (%s)\n    \t%s (default %q)\n", f.Name, envName(f.Name), f.Usage, f.DefValue)
			})
			return c, errHelp
		}
		return c, usageError{err}
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Errorf("serve takes no arguments, got %q", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || set[f.Name] || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = usageError{fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	for _, s := range strings.Split(join, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Join = append(c.Join, s)
		}
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return c, usageError{fmt.Errorf("--trusted-proxies: %q is not a CIDR such as 10.0.0.0/8", p)}
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	if c.NodeName == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(c.GossipAddr)
		c.NodeName = fmt.Sprintf("%s-%s", host, port)
	}
	return c, c.validate()
}

// validate names the flag at fault.
func (c serveConfig) validate() error {
	bad := func(name, format string, args ...any) error {
		return usageError{fmt.Errorf("--%s: %s", name, fmt.Sprintf(format, args...))}
	}
	for _, a := range []struct{ name, addr string }{{"http-addr", c.HTTPAddr}, {"gossip-addr", c.GossipAddr}, {"remote-addr", c.RemoteAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return bad(a.name, "%q is not host:port", a.addr)
		}
	}
	for _, seed := range c.Join {
		if _, _, err := net.SplitHostPort(seed); err != nil {
			return bad("join", "%q is not host:port", seed)
		}
	}
	if c.DataDir == "" {
		return bad("data-dir", "is empty")
	}
	switch c.Store {
	case storeReplicated:
		if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
			return bad("raft-addr", "%q is not host:port", c.RaftAddr)
		}
	case storeLocal:
	default:
		return bad("store", "%q is not replicated or local", c.Store)
	}
	if c.RaftDeadVoter <= 0 {
		return bad("raft-dead-voter-timeout", "%s is not positive", c.RaftDeadVoter)
	}
	if c.DrainTimeout <= 0 {
		return bad("drain-timeout", "%s is not positive", c.DrainTimeout)
	}
	if c.SessionIdle <= 0 {
		return bad("session-idle-timeout", "%s is not positive", c.SessionIdle)
	}
	if c.LimiterIdle <= 0 {
		return bad("limiter-idle-timeout", "%s is not positive", c.LimiterIdle)
	}
	if c.LimiterMax < 0 {
		return bad("limiter-max-active", "%d is negative", c.LimiterMax)
	}
	if c.Heartbeat <= 0 {
		return bad("sse-heartbeat", "%s is not positive", c.Heartbeat)
	}
	if c.BodyReadTimeout <= 0 {
		return bad("body-read-timeout", "%s is not positive", c.BodyReadTimeout)
	}
	if c.MaxConnections < 1 {
		return bad("max-connections", "%d is not positive", c.MaxConnections)
	}
	if c.DebugAddr != "" {
		if err := checkDebugAddr(c.DebugAddr, c.DebugPublic); err != nil {
			return bad("debug-addr", "%v", err)
		}
	}
	if c.OTLPEndpoint != "" {
		if err := tracing.CheckEndpoint(c.OTLPEndpoint); err != nil {
			return bad("otlp-endpoint", "%v", err)
		}
	}
	if c.MockTokenDelay < 0 {
		return bad("mock-token-delay", "%s is negative", c.MockTokenDelay)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("log-format", "%q is not text or json", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log-level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if err := c.checkSecurity(); err != nil {
		return err
	}
	if c.TenantsFile != "" {
		f, err := os.Open(c.TenantsFile)
		if err != nil {
			return bad("tenants", "%v", err)
		}
		_ = f.Close()
	}
	return nil
}

// watermarkValue is --min-free-disk as a flag.Value.
type watermarkValue struct{ w *diskspace.Watermark }

func (v watermarkValue) String() string {
	if v.w == nil {
		return ""
	}
	return v.w.String()
}

func (v watermarkValue) Set(s string) error {
	w, err := diskspace.ParseWatermark(s)
	if err != nil {
		return err
	}
	*v.w = w
	return nil
}
