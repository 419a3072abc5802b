package testkit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/parley-chat/parley/cluster"
)

// ConvergeTimeout bounds WaitConverged when the test passes 0. It is far
// above the failure-detection time of the test configuration (about 1 s),
// and above the time a member that a CPU-starved machine wrongly declared
// failed takes to refute it and be counted again (seen to pass 15 s with
// three test suites running at once on two cores), so only a real fault
// reaches it. A passing test waits no longer for it.
const ConvergeTimeout = 30 * time.Second

// Cluster is an in-process Parley cluster for tests: N cluster.Nodes on
// real memberlist gossip and real Proto.Actor remoting, each bound to
// 127.0.0.1 on free ports. Nodes are numbered from 0 in the order they
// started; a stopped or killed node keeps its number and its slot reads nil.
// Every node still running when the test ends is stopped gracefully.
type Cluster struct {
	t     testing.TB
	opts  clusterOptions
	mu    sync.Mutex
	nodes []*cluster.Node
	seed  string
}

// ClusterOption configures NewCluster.
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	kinds     []func() *protocluster.Kind
	configure []func(i int, c *cluster.Config)
}

// WithKinds registers grain kinds on every node. Each function is called
// once per node, since a kind is bound to the node it is registered on.
func WithKinds(kinds ...func() *protocluster.Kind) ClusterOption {
	return func(o *clusterOptions) { o.kinds = append(o.kinds, kinds...) }
}

// WithConfig adjusts node i's configuration before it starts (after the
// test defaults are applied).
func WithConfig(f func(i int, c *cluster.Config)) ClusterOption {
	return func(o *clusterOptions) { o.configure = append(o.configure, f) }
}

// NewCluster starts n nodes, waits until each sees all n in its topology,
// and returns. Node 0 is the seed the others join.
func NewCluster(t testing.TB, n int, opts ...ClusterOption) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	for _, o := range opts {
		o(&c.opts)
	}
	logger := NewLogger(t)
	c.opts.configure = append([]func(int, *cluster.Config){func(_ int, cfg *cluster.Config) { cfg.Logger = logger.With("node", cfg.NodeName) }}, c.opts.configure...)
	t.Cleanup(c.stopAll)

	c.AddNodes(n)
	c.WaitConverged(0)
	return c
}

// TestConfig is the configuration NewCluster gives node i: free ports on
// 127.0.0.1 and a failure detector tuned for one machine (a dead node is
// noticed in one to two seconds).
func TestConfig(i int) cluster.Config {
	cfg := cluster.DefaultConfig()
	cfg.ClusterName = "testkit"
	cfg.NodeName = fmt.Sprintf("node-%d", i)
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.RemoteAddr = "127.0.0.1:0"
	cfg.ProbeInterval = 300 * time.Millisecond
	// A probe timeout and a suspicion long enough that a machine loaded
	// by parallel test binaries does not evict a live member.
	cfg.ProbeTimeout = 200 * time.Millisecond
	cfg.SuspicionMult = 3
	cfg.GossipInterval = 50 * time.Millisecond
	cfg.JoinRetryMax = 200 * time.Millisecond
	return cfg
}

// AddNodes starts k more nodes that join the cluster (the first node ever
// started is the seed), in parallel, and returns their numbers. It does not
// wait for convergence.
func (c *Cluster) AddNodes(k int) []int {
	c.t.Helper()
	c.mu.Lock()
	first := len(c.nodes)
	c.nodes = append(c.nodes, make([]*cluster.Node, k)...)
	c.mu.Unlock()

	ids := make([]int, k)
	for j := range ids {
		ids[j] = first + j
	}
	added := slices.Clone(ids)
	start := func(i int) error {
		node, err := cluster.Start(c.config(i))
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		c.mu.Lock()
		c.nodes[i] = node
		if c.seed == "" {
			c.seed = node.GossipAddr()
		}
		c.mu.Unlock()
		return nil
	}
	// The seed must be up before anyone can join it.
	if c.seedAddr() == "" {
		if err := start(ids[0]); err != nil {
			c.t.Fatalf("testkit: %v", err)
		}
		ids = ids[1:]
	}
	errs := make(chan error, len(ids))
	for _, i := range ids {
		go func() { errs <- start(i) }()
	}
	for range ids {
		if err := <-errs; err != nil {
			c.t.Fatalf("testkit: %v", err)
		}
	}
	return added
}

func (c *Cluster) seedAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seed
}

func (c *Cluster) config(i int) cluster.Config {
	cfg := TestConfig(i)
	for _, k := range c.opts.kinds {
		cfg.Kinds = append(cfg.Kinds, k())
	}
	if seed := c.seedAddr(); seed != "" {
		cfg.Join = []string{seed}
	}
	for _, f := range c.opts.configure {
		f(i, &cfg)
	}
	return cfg
}

// Node returns node i; the test fails if it was stopped or killed.
func (c *Cluster) Node(i int) *cluster.Node {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) || c.nodes[i] == nil {
		c.t.Fatalf("testkit: node %d is not running", i)
	}
	return c.nodes[i]
}

// Nodes returns the running nodes, in number order.
func (c *Cluster) Nodes() []*cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*cluster.Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// StopNode makes node i leave gracefully (announce, passivate its grains,
// stop) and waits until it has.
func (c *Cluster) StopNode(i int) {
	c.t.Helper()
	n := c.take(i)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Leave(ctx); err != nil {
		c.t.Fatalf("testkit: stop node %d: %v", i, err)
	}
}

// KillNode stops node i abruptly, as SIGKILL would: no leave is announced
// and the others find out through the failure detector.
func (c *Cluster) KillNode(i int) {
	c.t.Helper()
	c.take(i).Kill()
}

func (c *Cluster) take(i int) *cluster.Node {
	c.t.Helper()
	n := c.Node(i)
	c.mu.Lock()
	c.nodes[i] = nil
	c.mu.Unlock()
	return n
}

// WaitConverged waits until every running node is ready and its topology
// holds exactly the running nodes (timeout 0 means ConvergeTimeout), and
// fails the test otherwise.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	if timeout <= 0 {
		timeout = ConvergeTimeout
	}
	Eventually(c.t, timeout, c.converged)
}

// converged returns nil when all running nodes agree on membership.
func (c *Cluster) converged() error {
	nodes := c.Nodes()
	var want []string
	for _, n := range nodes {
		want = append(want, n.ID())
	}
	slices.Sort(want)
	for _, n := range nodes {
		if err := n.Ready(); err != nil {
			return fmt.Errorf("%s: %w", n.Name(), err)
		}
		got := n.TopologyIDs()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s sees members %v, want %v", n.Name(), got, want)
		}
	}
	return nil
}

// stopAll stops every running node at once (each leave takes a couple of
// seconds inside Proto.Actor, so they run in parallel).
func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	for i, n := range c.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.Leave(ctx); err != nil {
				c.t.Errorf("testkit: stop node %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}
