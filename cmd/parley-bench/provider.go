package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parley-chat/parley/actors/model"
	"github.com/parley-chat/parley/actors/model/openaitest"
)

// The openai provider's rows: what a reply costs when it comes through
// the OpenAI-compatible provider rather than from the mock. The upstream
// is openaitest's fake, in this process, writing the mock's reply at 0 ms
// per token, so that the difference is the provider path alone: the
// request to the upstream, its SSE parsed by the SDK, and each delta
// turned into a token event.
const (
	// providerTenant is the tenant whose model is the fake upstream.
	providerTenant = "bench-openai"
	// providerModel is the model name the tenant asks the upstream for.
	providerModel = "bench-fake"
	// mockStreamDone is the mock row the provider's chats are compared with.
	mockStreamDone = "chat stream:true, done"
)

// Issue 17's targets: chats per second at least 80% of the mock's, and
// under 1 ms added per token (upstream chunk written → token event read),
// p99.
var (
	providerChatTarget  = &Target{MinMockRatio: 0.8}
	providerTokenTarget = &Target{P99Ms: 1}
)

// upstream is the fake OpenAI-compatible server the provider tenant's
// model points at. It answers each chat with the mock's reply to the
// chat's message, token for token, and notes when it began writing each
// delta, by message (every chat of the provider rows sends its own).
type upstream struct {
	*openaitest.Server
	mu      sync.Mutex
	written map[string][]time.Time
}

// startUpstream starts the fake on 127.0.0.1; the caller closes it.
func startUpstream() *upstream {
	u := &upstream{written: map[string][]time.Time{}}
	u.Server = openaitest.Start(openaitest.Hooks{
		Reply:   func(req openaitest.ChatRequest) []string { return model.Tokens(expectedReply(req.LastUser())) },
		Written: u.wrote,
		Forget:  true,
	})
	return u
}

func (u *upstream) wrote(req openaitest.ChatRequest, index int, at time.Time) {
	msg := req.LastUser()
	u.mu.Lock()
	defer u.mu.Unlock()
	w := u.written[msg]
	for len(w) <= index {
		w = append(w, time.Time{})
	}
	w[index] = at
	u.written[msg] = w
}

// take returns when each delta of the reply to msg was written, and
// forgets them.
func (u *upstream) take(msg string) []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	w := u.written[msg]
	delete(u.written, msg)
	return w
}

// providerPhase measures stream:true chats of the provider tenant at
// concurrency conc, as chatPhase does the mock's (the same sessions per
// worker, edges in turn, every reply checked and read back from history),
// and adds two rows: the chats, with their chats per second as a share of
// the mock row's of the same nodes and concurrency, and the time each
// token took from the upstream's write to the client's read.
func (b *bench) providerPhase(ctx context.Context, ns *nodes, conc int) {
	edges := ns.URLs()
	per := max(sessionsPerWorker, chatSessions/conc)
	sessions := newSessions(conc, per)
	last := make([][]reply, conc)
	for w := range last {
		last[w] = make([]reply, per)
	}
	var (
		mu    sync.Mutex
		added = newHistogram()
		// first is the first token's alone: no token of its reply is
		// queued before it.
		first = newHistogram()
	)
	// Requests started in the warm-up are not recorded by load; their
	// tokens are left out the same way.
	measureFrom := time.Now().Add(b.t.warmup)
	res := load{
		conc: conc, warmup: b.t.warmup, measure: b.t.window(conc), series: []string{"first token", "done"},
		do: func(ctx context.Context, w, i int) ([]time.Duration, error) {
			k := i % per
			edge := edges[(w+i+i/per)%len(edges)]
			msg := fmt.Sprintf("provider %d %d %d", conc, w, i)
			recorded := time.Now().After(measureFrom)
			var read []time.Time
			ttft, total, r, _, err := b.provider.chatStreamEach(ctx, edge, sessions[w][k], msg, func(_ int, at time.Time) {
				read = append(read, at)
			})
			written := b.upstream.take(msg)
			if err != nil {
				return nil, err
			}
			if len(written) != len(read) {
				return nil, fmt.Errorf("the upstream wrote %d deltas, the client read %d tokens", len(written), len(read))
			}
			last[w][k] = r
			if recorded {
				mu.Lock()
				for j := range read {
					_ = added.RecordValue(max(read[j].Sub(written[j]).Microseconds(), histMinMicros))
				}
				if len(read) > 0 {
					_ = first.RecordValue(max(read[0].Sub(written[0]).Microseconds(), histMinMicros))
				}
				mu.Unlock()
			}
			return []time.Duration{ttft, total}, nil
		},
	}.run(ctx)
	for w := range last {
		for k, r := range last[w] {
			if r.messageID == "" || ctx.Err() != nil {
				continue
			}
			if err := b.provider.checkStored(ctx, edges[k%len(edges)], sessions[w][k], r); err != nil {
				res.errs.add(err)
			}
		}
	}

	n := len(edges)
	chats := latencyRow("chat stream:true, done, openai provider (fake upstream)", n, conc, res, 1, providerChatTarget)
	if mock, ok := b.throughputOf(mockStreamDone, n, conc); ok && mock > 0 {
		ratio := chats.Throughput / mock
		chats.Values = map[string]float64{"mockThroughputPerSec": mock, "mockRatio": ratio}
		chats.judge()
		chats.Result += fmt.Sprintf("; %.2f× the mock's %.0f req/s", ratio, mock)
	} else {
		chats.judge()
	}
	b.add(secChat, chats)

	tokens := Row{
		Name: "openai provider: upstream chunk → SSE token", Nodes: n, Concurrency: conc,
		Count: added.TotalCount(), Latency: latencyOf(added), Target: providerTokenTarget,
	}
	tokens.setErrors(res.errs)
	tokens.judge()
	tokens.Result += "; n is tokens"
	if l := latencyOf(first); l != nil {
		tokens.Result += fmt.Sprintf("; first token alone p50 %s p99 %s", fmtMs(l.P50Ms), fmtMs(l.P99Ms))
		tokens.Values = map[string]float64{"firstTokenP50Ms": l.P50Ms, "firstTokenP99Ms": l.P99Ms}
	}
	b.add(secChat, tokens)
}

// throughputOf is the req/s of the row measured so far with this name,
// node count and concurrency.
func (b *bench) throughputOf(name string, nodes, conc int) (float64, bool) {
	for _, r := range b.rows {
		if r.Name == name && r.Nodes == nodes && r.Concurrency == conc {
			return r.Throughput, true
		}
	}
	return 0, false
}
