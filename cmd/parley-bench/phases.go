package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/session"
)

// Concurrency of the loaded rows, the issue's.
const (
	manyWorkers = 32
	// chatSessions: the chat workers rotate over at least this many
	// sessions between them, at least 3 each (one reply per session at a
	// time, so no two workers share one), so that even a single worker's
	// requests reach every owner.
	chatSessions      = 12
	sessionsPerWorker = 3
	// historyMessages fill one history page: 50 chats of user + reply.
	historyMessages = 100
	// activeSessions is the memory row's count.
	activeSessions = 10_000
	// streamsOpen is the SSE row's count; streamTokenDelay keeps each of
	// them open about 20 s (the mock reply is about 20 tokens), longer
	// than opening them all takes, so every one is open at the peak.
	streamsOpen      = 10_000
	streamTokenDelay = time.Second
	heartbeat        = 15 * time.Second // the edge's default; serve has no flag
	// unavailableMetric counts the scope checks a limiter did not answer
	// in time.
	unavailableMetric = "parley_ratelimit_unavailable_total"
	// activationsMetric counts the session grains a node activated.
	activationsMetric = "parley_grain_activations_total"
)

// sessionKindLabel selects the ChatSession series of activationsMetric.
var sessionKindLabel = fmt.Sprintf("kind=%q", session.Kind)

// timings are a run's phase lengths.
type timings struct {
	warmup          time.Duration // unrecorded, before each recorded window
	one             time.Duration // recorded window at concurrency 1
	many            time.Duration // recorded window at concurrency 32
	historySessions int           // sessions seeded with a page of 100 messages
}

var (
	fullTimings  = timings{warmup: time.Second, one: 3 * time.Second, many: 5 * time.Second, historySessions: manyWorkers}
	quickTimings = timings{warmup: 300 * time.Millisecond, one: time.Second, many: 1500 * time.Millisecond, historySessions: 8}
)

// floor is the phase lengths of a limiter row's run on the floor: half
// of the node's, at most, after a warm-up of 300 ms. The floor holds no
// state worth warming (a token bucket per key) and its figures settle
// fast, and the six runs on it must not push make bench past 5 minutes.
func (t timings) floor() timings {
	t.warmup = min(t.warmup, 300*time.Millisecond)
	t.one, t.many = t.one/2, t.many/2
	return t
}

func (t timings) window(conc int) time.Duration {
	if conc == 1 {
		return t.one
	}
	return t.many
}

// newSessions returns workers × per fresh session ids.
func newSessions(workers, per int) [][]string {
	out := make([][]string, workers)
	for w := range out {
		for range per {
			out[w] = append(out[w], uuid.NewString())
		}
	}
	return out
}

// chatPhase measures POST /chat (stream:true or false) at concurrency conc
// over every edge of ns, round robin, and over sessions of each worker's
// own, whose owners the placement spreads over the nodes. Afterwards every session's last reply must read back from its
// history exactly as received.
func (b *bench) chatPhase(ctx context.Context, ns *nodes, stream bool, conc int) {
	edges := ns.URLs()
	per := max(sessionsPerWorker, chatSessions/conc)
	sessions := newSessions(conc, per)
	last := make([][]reply, conc)
	for w := range last {
		last[w] = make([]reply, per)
	}
	placedBefore, placedErr := b.client.metricByEdge(ctx, edges, activationsMetric, sessionKindLabel)
	series := []string{"done"}
	if stream {
		series = []string{"first token", "done"}
	}
	res := load{
		conc: conc, warmup: b.t.warmup, measure: b.t.window(conc), series: series,
		do: func(ctx context.Context, w, i int) ([]time.Duration, error) {
			// Each round over its sessions moves every session to the
			// next edge, so each session is reached through every edge.
			k := i % per
			edge := edges[(w+i+i/per)%len(edges)]
			msg := fmt.Sprintf("bench %d %d", w, i)
			if stream {
				ttft, total, r, _, err := b.client.chatStream(ctx, edge, sessions[w][k], msg)
				if err != nil {
					return nil, err
				}
				last[w][k] = r
				return []time.Duration{ttft, total}, nil
			}
			total, r, err := b.client.chatWhole(ctx, edge, sessions[w][k], msg)
			if err != nil {
				return nil, err
			}
			last[w][k] = r
			return []time.Duration{total}, nil
		},
	}.run(ctx)
	for w := range last {
		for k, r := range last[w] {
			if r.messageID == "" || ctx.Err() != nil {
				continue
			}
			if err := b.client.checkStored(ctx, edges[k%len(edges)], sessions[w][k], r); err != nil {
				res.errs.add(err)
			}
		}
	}
	// Where the placement put this phase's sessions: each node counts the
	// session grains it activated.
	spread := ""
	placedAfter, err := b.client.metricByEdge(ctx, edges, activationsMetric, sessionKindLabel)
	if err = cmp.Or(placedErr, err); err != nil {
		spread = "; sessions by node: " + errorKind(err)
	} else if len(edges) > 1 {
		var counts []string
		for i := range edges {
			counts = append(counts, fmt.Sprint(placedAfter[i]-placedBefore[i]))
		}
		spread = "; sessions by node " + strings.Join(counts, "/")
	}
	n := len(edges)
	add := func(name string, s int) {
		if ns.localStore {
			name += ", node-local store (no replication)"
		}
		if ns.plaintext {
			name += ", without TLS"
		}
		row := latencyRow(name, n, conc, res, s, chatTarget)
		row.Result += spread
		b.add(secChat, row)
	}
	if stream {
		add("chat stream:true, first token", 0)
		add("chat stream:true, done", 1)
	} else {
		add("chat stream:false", 0)
	}
}

func sum(vs []float64) float64 {
	var t float64
	for _, v := range vs {
		t += v
	}
	return t
}

// historyPhases seed sessions with 100 messages each (50 stream:false
// chats), then time GET …/history?limit=100, checking each page holds 100
// messages, newest (an assistant reply) first.
func (b *bench) historyPhases(ctx context.Context, ns *nodes) {
	edges := ns.URLs()
	sessions := newSessions(b.t.historySessions, 1)
	seedErrs := newErrorCounts()
	var wg sync.WaitGroup
	for w := range sessions {
		wg.Go(func() {
			for i := range historyMessages / 2 {
				if ctx.Err() != nil {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				_, _, err := b.client.chatWhole(rctx, edges[(w+i)%len(edges)], sessions[w][0], fmt.Sprintf("history %d", i))
				cancel()
				if err != nil {
					seedErrs.add(fmt.Errorf("seeding: %w", err))
				}
			}
		})
	}
	wg.Wait()
	for _, conc := range []int{1, manyWorkers} {
		res := load{
			conc: conc, warmup: b.t.warmup, measure: b.t.window(conc), series: []string{"page"},
			do: func(ctx context.Context, w, i int) ([]time.Duration, error) {
				start := time.Now()
				msgs, _, err := b.client.history(ctx, edges[(w+i)%len(edges)], sessions[(w+i)%len(sessions)][0], historyMessages, "")
				d := time.Since(start)
				switch {
				case err != nil:
					return nil, err
				case len(msgs) != historyMessages:
					return nil, fmt.Errorf("page of %d messages, want %d", len(msgs), historyMessages)
				case msgs[0].Role != "assistant" || msgs[len(msgs)-1].Role != "user":
					return nil, errors.New("page is not newest first")
				}
				return []time.Duration{d}, nil
			},
		}.run(ctx)
		res.errs.merge(seedErrs)
		seedErrs = newErrorCounts() // counted once, in the first row
		b.add(secHistory, latencyRow(fmt.Sprintf("history page of %d", historyMessages), len(edges), conc, res, 0, historyTarget))
	}
}

// memoryPhase warms a fresh node up with 1,000 sessions, reads its
// resident set, activates 10,000 new sessions (one stream:false chat each:
// a user message and a reply) and reads it again. The latencies are of a
// new session's first chat.
func (b *bench) memoryPhase(ctx context.Context, ns *nodes) {
	const name = "memory: 10,000 active sessions"
	p := ns.Nodes[0]
	firstChat := func(ctx context.Context, w, i int) ([]time.Duration, error) {
		d, _, err := b.client.chatWhole(ctx, p.URL(""), uuid.NewString(), "hi")
		return []time.Duration{d}, err
	}
	warm := load{conc: manyWorkers, total: activeSessions / 10, measure: time.Minute, series: []string{"first chat"}, do: firstChat}.run(ctx)
	before, err := rssBytes(p.Pid())
	if err != nil {
		b.add(secMemory, Row{Name: name, Nodes: 1, Result: "FAIL (" + err.Error() + ")"})
		return
	}
	res := load{conc: manyWorkers, total: activeSessions, measure: 2 * time.Minute, series: []string{"first chat"}, do: firstChat}.run(ctx)
	after, err := rssBytes(p.Pid())
	res.errs.merge(warm.errs)
	row := Row{Name: name, Nodes: 1, Concurrency: manyWorkers, Count: res.ok,
		Latency: latencyOf(res.hists[0]), Throughput: res.throughput()}
	row.setErrors(res.errs)
	switch {
	case err != nil:
		row.Result = "FAIL (" + err.Error() + ")"
	case res.ok == 0:
		row.Result = "FAIL (no session activated)"
	default:
		per := float64(after-before) * activeSessions / float64(res.ok)
		row.Result = fmt.Sprintf("RSS %+.1f MiB per 10,000 (%s → %s)", per/(1<<20), fmtBytes(float64(before)), fmtBytes(float64(after)))
		row.Values = map[string]float64{"rssBeforeBytes": float64(before), "rssAfterBytes": float64(after), "rssBytesPer10000": per}
	}
	b.add(secMemory, row)
}

// streamsPhase starts a node whose model waits 1 s per token, opens 10,000
// SSE streams on it at once and holds each to its end (about 20 s),
// sampling the node's resident set every 250 ms, and counts what every
// stream delivered: tokens, heartbeat comments, done events, and how many
// streams were open at once at most.
func (b *bench) streamsPhase(ctx context.Context) {
	name := fmt.Sprintf("SSE: %d streams held open, %.0f s per token", streamsOpen, streamTokenDelay.Seconds())
	fail := func(err error) { b.add(secStreams, Row{Name: name, Nodes: 1, Result: "FAIL (" + err.Error() + ")"}) }
	// Both ends hold a descriptor per stream: the bench's client here and
	// the node, which inherits this process's limit when it starts.
	if err := raiseFileLimit(streamsOpen + streamsSpareFiles); err != nil {
		fail(err)
		return
	}
	ns, err := b.startNodes(ctx, 1, streamTokenDelay)
	if err != nil {
		fail(err)
		return
	}
	defer ns.stop()
	p := ns.Nodes[0]
	before, err := rssBytes(p.Pid())
	if err != nil {
		fail(err)
		return
	}

	var peak atomic.Int64
	peak.Store(before)
	sampling, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-t.C:
				if rss, err := rssBytes(p.Pid()); err == nil && rss > peak.Load() {
					peak.Store(rss)
				}
			}
		}
	})

	var (
		tokens, comments, done, wantTokens atomic.Int64
		lastFirstToken                     atomic.Int64
		open, mostOpen                     atomic.Int64
		errs                               = newErrorCounts()
		wg                                 sync.WaitGroup
		mu                                 sync.Mutex
		hist                               = newHistogram()
	)
	// At most streamsStarting chats are being started at once: a node
	// starts a few hundred a second, and 10,000 asked at the same instant
	// would wait past the grain call's timeout. A slot is freed once the
	// stream's headers arrived (the node started the reply).
	starting := make(chan struct{}, streamsStarting)
	start := time.Now()
	for i := range streamsOpen {
		msg := fmt.Sprintf("stream %d", i)
		wantTokens.Add(int64(len(model.Tokens(expectedReply(msg)))))
		select {
		case starting <- struct{}{}:
		case <-ctx.Done():
		}
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			// A stream counts as open from its first token to its end.
			opened := false
			release := sync.OnceFunc(func() { <-starting })
			defer release()
			ttft, total, _, st, err := b.client.chatStreamWith(rctx, p.URL(""), uuid.NewString(), msg, streamHooks{
				opened: release,
				token: func(index int, _ time.Time) {
					if index == 0 {
						opened = true
						for n := open.Add(1); ; {
							m := mostOpen.Load()
							if n <= m || mostOpen.CompareAndSwap(m, n) {
								break
							}
						}
					}
				},
			})
			if opened {
				open.Add(-1)
			}
			tokens.Add(int64(st.tokens))
			comments.Add(int64(st.comments))
			if err != nil {
				errs.add(err)
				return
			}
			done.Add(1)
			mu.Lock()
			_ = hist.RecordValue(max(total.Microseconds(), histMinMicros))
			mu.Unlock()
			for at := start.Add(ttft).UnixNano(); ; {
				prev := lastFirstToken.Load()
				if at <= prev || lastFirstToken.CompareAndSwap(prev, at) {
					break
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopSampling()
	sampler.Wait()

	row := Row{Name: name, Nodes: 1, Concurrency: streamsOpen, Count: done.Load(), Latency: latencyOf(hist)}
	row.setErrors(errs)
	grew := float64(peak.Load() - before)
	allOpen := time.Unix(0, lastFirstToken.Load()).Sub(start)
	pings := "pings: none"
	if n := comments.Load(); n > 0 {
		pings = fmt.Sprintf("%d heartbeat pings", n)
	}
	var short []string
	if n := done.Load(); n < streamsOpen {
		short = append(short, fmt.Sprintf("%d streams not done", streamsOpen-n))
	}
	if n, want := tokens.Load(), wantTokens.Load(); n < want {
		short = append(short, fmt.Sprintf("%d tokens not delivered", want-n))
	}
	if n := mostOpen.Load(); n < streamsOpen {
		short = append(short, fmt.Sprintf("never all %d open at once", streamsOpen))
	}
	row.Result = fmt.Sprintf("RSS %s → peak %s (%+.1f MiB, %s per stream); %d/%d done; %d/%d tokens; %d open at once at most; %s (one per %s); every first token within %.1f s",
		fmtBytes(float64(before)), fmtBytes(float64(peak.Load())), grew/(1<<20), fmtBytes(grew/streamsOpen),
		done.Load(), streamsOpen, tokens.Load(), wantTokens.Load(), mostOpen.Load(), pings, fmt.Sprintf("%.0f s", heartbeat.Seconds()), allOpen.Seconds())
	if len(short) > 0 {
		row.Result = "FAIL (" + strings.Join(short, ", ") + "): " + row.Result
	}
	row.Values = map[string]float64{
		"rssBeforeBytes": float64(before), "rssPeakBytes": float64(peak.Load()),
		"tokensDelivered": float64(tokens.Load()), "tokensExpected": float64(wantTokens.Load()),
		"heartbeats": float64(comments.Load()), "streamsDone": float64(done.Load()), "streamsOpenAtOnce": float64(mostOpen.Load()),
		"rssBytesPerStream":     grew / streamsOpen,
		"allFirstTokensSeconds": allOpen.Seconds(), "phaseSeconds": elapsed.Seconds(),
	}
	b.add(secStreams, row)
}

// streamsStarting is how many of the SSE row's chats are being started at
// once, at most.
const streamsStarting = 64

// streamsSpareFiles are the descriptors the SSE row needs besides one per
// stream: the node's listeners, store files and cluster connections, and
// the bench's own.
const streamsSpareFiles = 2_000

// raiseFileLimit raises this process's soft RLIMIT_NOFILE to at least
// want, up to the hard limit, so that it and every process it starts
// after (they inherit it) can hold that many descriptors. It fails when
// the hard limit is lower.
func raiseFileLimit(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the file limit: %w", err)
	}
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		return fmt.Errorf("the hard file limit is %d descriptors, under the %d the row needs (raise it: ulimit -Hn)", lim.Max, want)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the file limit to %d: %w", lim.Cur, err)
	}
	return nil
}
