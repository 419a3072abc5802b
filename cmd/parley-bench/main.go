// Command parley-bench measures Parley against the seed's latency targets
// (chat P50 < 200 ms and P95 < 500 ms, rate-limit check P95 < 50 ms, a
// history page of 100 messages P95 < 100 ms) and reports memory.
//
//	parley-bench [--quick] [--only flood|limiter|limiter-memory|openai|streams] [--json FILE] [--docs FILE] [--parley BIN] [--micro=false] [--keep] [--timeout D]
//
// It builds cmd/parley (unless --parley names a binary), starts the nodes
// itself on 127.0.0.1 with the mock model at 0 ms per token (and, for the
// openai provider's rows, a fake OpenAI-compatible upstream in its own
// process at 0 ms per token), drives them
// over HTTP, and stops every process it started, by its pid, also on
// Ctrl-C or an error (SIGTERM, then SIGKILL after 20 s). It prints one
// table, each row beside its target with PASS or FAIL, writes the same
// results as JSON (--json) and refreshes the results part of
// docs/benchmarks.md (--docs). `make bench` runs it; docs/benchmarks.md
// says what each row measures.
//
// Exit codes: 0 when every row with a target passed, 1 when one failed,
// 2 when the benchmark could not run or was interrupted.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/parley-chat/parley/actors/tenants"
	"github.com/parley-chat/parley/internal/harness"
)

// options are the command line.
type options struct {
	quick   bool
	only    string
	json    string
	docs    string
	parley  string
	micro   bool
	keep    bool
	timeout time.Duration
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	var o options
	fs := flag.NewFlagSet("parley-bench", flag.ContinueOnError)
	fs.StringVar(&o.only, "only", "", "run only these rows, on one node: flood (the rate-limit flood), limiter (the rate-limit rows, each beside the floor), limiter-memory (100,000 rate-limit keys), openai (the openai provider's rows, and the mock stream:true rows they are compared with) or streams (the SSE streams row, on its own node)")
	fs.BoolVar(&o.quick, "quick", false, "a 30-second subset: one node, shorter phases, no memory, SSE-streams or micro-benchmark rows")
	fs.StringVar(&o.json, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.docs, "docs", "", "refresh the results part of this Markdown file (docs/benchmarks.md)")
	fs.StringVar(&o.parley, "parley", "", "a built parley binary to run (default: go build ./cmd/parley)")
	fs.BoolVar(&o.micro, "micro", true, "also run the grain paths' go test -bench micro-benchmarks (not with --quick)")
	fs.BoolVar(&o.keep, "keep", false, "keep the nodes' logs and data dirs (the path is printed)")
	fs.DurationVar(&o.timeout, "timeout", 0, "give up after this long, stopping every node (default 8m, 2m with --quick)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.timeout == 0 {
		// Guards against a hang, well above the phases' own lengths
		// (about 4 minutes, 30 s with --quick), which bound the run.
		o.timeout = 8 * time.Minute
		if o.quick {
			o.timeout = 2 * time.Minute
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rep, err := measure(ctx, o)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("gave up after --timeout %s: %w", o.timeout, err)
		}
		fmt.Fprintf(os.Stderr, "parley-bench: %v\nEvery node it started has been stopped; nothing was written.\n", err)
		return 2
	}
	fmt.Println()
	rep.writeText(os.Stdout)
	if o.json != "" {
		if err := writeJSON(o.json, rep); err != nil {
			fmt.Fprintf(os.Stderr, "parley-bench: --json: %v\n", err)
			return 2
		}
		fmt.Printf("JSON: %s\n", o.json)
	}
	if o.docs != "" {
		if err := refreshDocs(o.docs, rep); err != nil {
			fmt.Fprintf(os.Stderr, "parley-bench: --docs: %v\n", err)
			return 2
		}
		fmt.Printf("Refreshed %s\n", o.docs)
	}
	for _, r := range rep.Rows {
		if r.failed() {
			return 1
		}
	}
	return 0
}

// The --only values of row groups: the openai provider's rows, and the
// limiter rows with the floor.
const (
	rowsProvider = "openai"
	rowsLimiter  = "limiter"
)

// bench is one run: where its files are, the clients, what it measured.
type bench struct {
	t       timings
	bin     string
	dir     string
	tenants string
	client  *client // the bench tenant's: the mock model
	// provider is the client of the tenant whose model is upstream.
	provider *client
	upstream *upstream
	// floodKey is the API key of the "flood" tenant (flood.go).
	floodKey string
	// refusedKey is the API key of the "refused" tenant, whose limit the
	// refused rows find spent (ratelimitrows.go).
	refusedKey string
	// floor is the in-process reference the limiter rows are compared
	// with (floor.go).
	floor   *floor
	rows    []Row
	skipped []string
	// stopped is closed on Ctrl-C or the timeout: a row measured after it
	// is cut short and dropped.
	stopped <-chan struct{}
}

// measure runs every phase. A node that cannot start, Ctrl-C or the
// timeout end it with an error; every node is stopped before it returns.
func measure(ctx context.Context, o options) (Report, error) {
	started := time.Now()
	machine := thisMachine()
	root, err := harness.ModuleRoot(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("run parley-bench inside the parley module (make bench does): %w", err)
	}
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return Report{}, err
	}
	if o.keep {
		progress("keeping the nodes' logs and data in %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	b := &bench{t: fullTimings, dir: dir, bin: o.parley, stopped: ctx.Done()}
	if o.quick {
		b.t = quickTimings
	}
	if b.bin == "" {
		b.bin = filepath.Join(dir, "parley")
		progress("building cmd/parley")
		if err := harness.Build(ctx, root, b.bin); err != nil {
			return Report{}, err
		}
	}
	b.upstream = startUpstream()
	defer b.upstream.Close()
	key, providerKey, err := b.writeTenants(b.upstream.BaseURL())
	if err != nil {
		return Report{}, err
	}
	b.client = &client{http: newHTTPClient(), key: key}
	if b.floor, err = startFloor(b.tenants); err != nil {
		return Report{}, fmt.Errorf("the floor: %w", err)
	}
	defer b.floor.Close()
	b.provider = &client{http: b.client.http, key: providerKey}

	// phases run in order until one is interrupted: a phase cut short
	// measures nothing worth showing.
	phases := func(fs ...func()) {
		for _, f := range fs {
			if ctx.Err() != nil {
				return
			}
			f()
		}
	}
	chats := func(ns *nodes) {
		for _, stream := range []bool{true, false} {
			for _, conc := range []int{1, manyWorkers} {
				phases(func() { b.chatPhase(ctx, ns, stream, conc) })
			}
		}
	}
	providerRows := func(ns *nodes) {
		for _, conc := range []int{1, manyWorkers} {
			phases(func() { b.providerPhase(ctx, ns, conc) })
		}
	}
	if o.only != "" {
		return b.measureOnly(ctx, o, started, machine)
	}
	err = b.onNodes(ctx, 1, func(ns *nodes) {
		if !o.quick {
			// First, while the node is fresh: its resident set has not
			// yet grown to what the loaded phases need.
			phases(func() {
				b.memoryPhase(ctx, ns)
				b.add(secMemory, passivatedRow(nil))
			})
		}
		// The rows that start many rate-limit keys come last: the node
		// then passivates thousands of limiters, work that would land
		// in the rows after them.
		phases(
			func() { chats(ns) },
			func() { b.historyPhases(ctx, ns) },
			func() { providerRows(ns) },
			func() { b.rateLimitPhases(ctx, ns) },
			func() {
				if !o.quick {
					b.floodPhase(ctx, ns)
				}
			},
		)
	})
	if err != nil {
		return Report{}, err
	}
	if o.quick {
		b.skipped = append(b.skipped, "--quick: the 3-node, flood, memory, SSE-streams and micro-benchmark rows")
	} else {
		if err := b.onNodes(ctx, 3, chats); err != nil {
			return Report{}, err
		}
		// What mutual TLS and gossip encryption cost: the same rows on a
		// cluster without them.
		if err := b.onNodesWith(ctx, nodeSpec{n: 3, plaintext: true}, chats); err != nil {
			return Report{}, err
		}
		// What replication costs a chat: the same rows on one node
		// without it.
		err := b.onNodesWith(ctx, nodeSpec{n: 1, localStore: true}, func(ns *nodes) {
			for _, conc := range []int{1, manyWorkers} {
				phases(func() { b.chatPhase(ctx, ns, false, conc) })
			}
		})
		if err != nil {
			return Report{}, err
		}
		phases(func() { b.streamsPhase(ctx) })
		phases(func() { b.limiterMemoryPhase(ctx) })
		if o.micro {
			phases(func() { b.microPhases(ctx, root) })
		} else {
			b.skipped = append(b.skipped, "--micro=false: the go test -bench rows")
		}
	}
	return b.report(ctx, started, machine, o)
}

// report gathers the rows measured, grouped by section, unless the run was
// interrupted.
func (b *bench) report(ctx context.Context, started time.Time, machine Machine, o options) (Report, error) {
	if ctx.Err() != nil {
		return Report{}, context.Cause(ctx)
	}
	slices.SortStableFunc(b.rows, func(x, y Row) int { return int(x.section) - int(y.section) })
	rep := Report{
		Date: started.UTC(), Machine: machine, Quick: o.quick, Selection: o.only,
		DurationSeconds: time.Since(started).Seconds(), Rows: b.rows, Skipped: b.skipped,
	}
	rep.Verdict = rep.verdict()
	return rep, nil
}

// measureOnly runs the rows --only names, on one node.
func (b *bench) measureOnly(ctx context.Context, o options, started time.Time, machine Machine) (Report, error) {
	phase, ok := map[string]func(context.Context) error{
		"flood":          func(ctx context.Context) error { return b.onNodes(ctx, 1, func(ns *nodes) { b.floodPhase(ctx, ns) }) },
		"limiter-memory": func(ctx context.Context) error { b.limiterMemoryPhase(ctx); return nil },
		"streams":        func(ctx context.Context) error { b.streamsPhase(ctx); return nil },
		// The limiter rows and the floor they are compared with.
		rowsLimiter: func(ctx context.Context) error {
			return b.onNodes(ctx, 1, func(ns *nodes) { b.rateLimitPhases(ctx, ns) })
		},
		// The provider's rows, and the mock stream:true rows they are
		// compared with, on the same node, each provider phase right
		// after the mock phase of its concurrency: on a shared machine
		// the load moves within a minute, and the ratio should compare
		// phases run under the same load.
		rowsProvider: func(ctx context.Context) error {
			return b.onNodes(ctx, 1, func(ns *nodes) {
				for _, conc := range []int{1, manyWorkers} {
					b.chatPhase(ctx, ns, true, conc)
					b.providerPhase(ctx, ns, conc)
				}
			})
		},
	}[o.only]
	if !ok {
		return Report{}, fmt.Errorf("--only %q: want flood, limiter, limiter-memory, openai or streams", o.only)
	}
	if err := phase(ctx); err != nil {
		return Report{}, err
	}
	b.skipped = append(b.skipped, "--only "+o.only+": every other row")
	return b.report(ctx, started, machine, o)
}

// onNodes starts n nodes at 0 ms per token, runs f, and stops them.
func (b *bench) onNodes(ctx context.Context, n int, f func(*nodes)) error {
	return b.onNodesWith(ctx, nodeSpec{n: n}, f)
}

// onNodesWith starts the nodes spec.n and spec.localStore ask for, runs f,
// and stops them.
func (b *bench) onNodesWith(ctx context.Context, spec nodeSpec, f func(*nodes)) error {
	ns, err := b.start(ctx, spec)
	if err != nil {
		return err
	}
	defer func() {
		progress("stopping %d node(s)", spec.n)
		ns.stop()
	}()
	f(ns)
	return context.Cause(ctx)
}

// startNodes starts n nodes whose mock model waits tokenDelay per token.
func (b *bench) startNodes(ctx context.Context, n int, tokenDelay time.Duration) (*nodes, error) {
	return b.start(ctx, nodeSpec{n: n, tokenDelay: tokenDelay})
}

// start starts the nodes of spec, filling in the binary, a fresh data
// dir and the tenants file.
func (b *bench) start(ctx context.Context, spec nodeSpec) (*nodes, error) {
	store := "replicated store"
	if spec.localStore {
		store = "node-local store"
	}
	if spec.n > 1 {
		store += map[bool]string{false: ", mutual TLS", true: ", no TLS"}[spec.plaintext]
	}
	progress("starting %d node(s), %s, --mock-token-delay %s", spec.n, store, spec.tokenDelay)
	dir, err := os.MkdirTemp(b.dir, fmt.Sprintf("%dnodes-", spec.n))
	if err != nil {
		return nil, err
	}
	spec.bin, spec.dir, spec.tenants = b.bin, dir, b.tenants
	ns, err := startNodes(ctx, spec)
	if err != nil {
		return nil, err
	}
	for _, p := range ns.Nodes {
		progress("  %s pid %d, http %s", p.Name, p.Pid(), p.HTTP)
	}
	return ns, nil
}

// add records a row of section sec and shows it at once.
func (b *bench) add(sec section, r Row) {
	select {
	case <-b.stopped:
		return
	default:
	}
	r.section = sec
	b.rows = append(b.rows, r)
	b.show(r)
}

// replace swaps the row of the same name for r.
func (b *bench) replace(r Row) {
	for i := range b.rows {
		if b.rows[i].Name == r.Name {
			b.rows[i] = r
			b.show(r)
			return
		}
	}
	b.add(r.section, r)
}

func (b *bench) show(r Row) {
	lat := ""
	if r.Latency != nil {
		lat = fmt.Sprintf(" p50 %s p95 %s p99 %s,", fmtMs(r.Latency.P50Ms), fmtMs(r.Latency.P95Ms), fmtMs(r.Latency.P99Ms))
	}
	progress("  %s (nodes %d, concurrency %d): n %d,%s errors %d: %s", r.Name, r.Nodes, r.Concurrency, r.Count, lat, r.Errors, r.Result)
}

// writeTenants writes a tenants file with two tenants whose limits are far
// above what the bench sends: "bench", on the mock model, and
// "bench-openai", whose model is the openai provider at upstreamURL. It
// returns their new API keys.
func (b *bench) writeTenants(upstreamURL string) (key, providerKey string, err error) {
	newKey := func() (string, error) {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return "", err
		}
		return "bench-" + hex.EncodeToString(raw), nil
	}
	if key, err = newKey(); err != nil {
		return "", "", err
	}
	if providerKey, err = newKey(); err != nil {
		return "", "", err
	}
	if b.floodKey, err = newKey(); err != nil {
		return "", "", err
	}
	if b.refusedKey, err = newKey(); err != nil {
		return "", "", err
	}
	const limit = 100_000_000
	tenant := func(id, key string, perMinute int) map[string]any {
		return map[string]any{
			"id":      id,
			"apiKeys": []any{map[string]any{"id": "bench", "hash": tenants.HashKey(key)}},
			"rateLimit": map[string]any{
				"perMinute": perMinute, "burst": perMinute,
				"user": map[string]any{"perMinute": limit}, "ip": map[string]any{"perMinute": limit},
			},
		}
	}
	provider := tenant(providerTenant, providerKey, limit)
	provider["model"] = map[string]any{"provider": "openai", "baseURL": upstreamURL, "name": providerModel}
	file := map[string]any{"tenants": []any{tenant("bench", key, limit), provider, tenant("flood", b.floodKey, floodPerMinute),
		tenant("refused", b.refusedKey, refusedPerMinute)}}
	body, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return "", "", err
	}
	b.tenants = filepath.Join(b.dir, "tenants.json")
	return key, providerKey, os.WriteFile(b.tenants, body, 0o600)
}

var startTime = time.Now()

// progress reports on stderr, with the time since the start.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(startTime).Seconds(), fmt.Sprintf(format, args...))
}
