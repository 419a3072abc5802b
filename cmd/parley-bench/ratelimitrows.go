package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/http/edge"
)

// The refused rows: a tenant, "refused", limited to refusedPerMinute with a
// burst of 1, so that the first request spends its minute and every one
// after it is refused by the tenant's limit, until the window lets one
// more through about a minute later.
const refusedPerMinute = 1

// The targets of the refused rows (the speed issue's): at concurrency 32,
// at least 0.7 of the floor's refusals per second; at concurrency 1, a
// refusal within 0.5 ms at p99.
var (
	refusedManyTarget = &Target{MinFloorRatio: 0.7}
	refusedOneTarget  = &Target{P99Ms: 0.5}
)

// limiterCase is one kind of limiter row: which tenant's key, which
// X-User-Id, and what a correct answer is.
type limiterCase struct {
	name string
	// target is the row's target at concurrency conc.
	target func(conc int) *Target
	// do sends request i of worker w to edge for session and checks its
	// answer.
	do func(ctx context.Context, edge, session string, w, i int) error
}

// limiterCases are the limiter rows, in the table's order.
func (b *bench) limiterCases() []limiterCase {
	allowed := func(user func(w, i int) string) func(ctx context.Context, edge, session string, w, i int) error {
		return func(ctx context.Context, edge, session string, w, i int) error {
			msgs, h, err := b.client.history(ctx, edge, session, 1, user(w, i))
			switch {
			case err != nil:
				return err
			case h.Get("X-RateLimit-Limit") == "":
				// Limit 0: no scope's limiter answered within the
				// limiter's timeout, and the open policy let the
				// request through unchecked.
				return errors.New("no X-RateLimit-Limit header: no limiter answered in time (failed open)")
			case len(msgs) != 0:
				return errors.New("empty session has messages")
			}
			return nil
		}
	}
	seedTarget := func(int) *Target { return rateLimitTarget }
	return []limiterCase{
		{name: "rate-limit check, many keys", target: seedTarget,
			do: allowed(func(w, i int) string { return fmt.Sprintf("user-%d-%d", w, i) })},
		{name: "rate-limit check, one hot key", target: seedTarget,
			do: allowed(func(int, int) string { return "hot-user" })},
		{name: "rate-limit refused (429), one hot key",
			target: func(conc int) *Target {
				if conc == 1 {
					return refusedOneTarget
				}
				return refusedManyTarget
			},
			do: func(ctx context.Context, edgeURL, session string, w, i int) error {
				status, h, code, err := b.client.historyStatus(ctx, edgeURL, b.refusedKey, session, "hot-user")
				switch {
				case err != nil:
					return err
				case status == http.StatusOK:
					return errNotMeasured // the window let one through
				case status != http.StatusTooManyRequests || code != edge.CodeRateLimited:
					return fmt.Errorf("HTTP %d %s, want 429 %s", status, code, edge.CodeRateLimited)
				case h.Get("X-RateLimit-Limit") != fmt.Sprint(refusedPerMinute) || h.Get("X-RateLimit-Reset") == "":
					return errors.New("429 without the refusing scope's X-RateLimit headers")
				case h.Get("Retry-After") == "":
					return errors.New("429 without Retry-After")
				}
				return nil
			}},
	}
}

// rateLimitPhases time the rate-limited request: an authenticated GET of
// an empty session's history (the "check" rows, with X-User-Id varied per
// request, a new user limiter each time, or fixed, one hot key), or of a
// tenant whose limit is spent (the "refused" rows, every answer a 429),
// at concurrency 1 and 32, first on the nodes, then with the same load
// on the floor (floor.go). A node without a limiter gives "n/a" rows.
func (b *bench) rateLimitPhases(ctx context.Context, ns *nodes) {
	edges := ns.URLs()
	cases := b.limiterCases()
	_, h, err := b.client.history(ctx, edges[0], uuid.NewString(), 1, "probe")
	if err != nil || h.Get("X-RateLimit-Limit") == "" {
		result := "n/a: rate limiter not wired"
		if err != nil {
			result = "FAIL (probe: " + errorKind(err) + ")"
		}
		for _, c := range cases {
			for _, conc := range []int{1, manyWorkers} {
				b.add(secRateLimit, Row{Name: c.name, Nodes: len(edges), Concurrency: conc, Target: c.target(conc), Result: result})
			}
		}
		return
	}
	for _, c := range cases {
		for _, conc := range []int{1, manyWorkers} {
			timeoutsBefore, metricErr := b.client.metricByEdge(ctx, edges, unavailableMetric, "")
			cpuBefore, cpuErr := ns.cpuTime()
			res := b.limiterLoad(ctx, edges, c, conc, b.t)
			cpuAfter, err := ns.cpuTime()
			cpuErr = cmp.Or(cpuErr, err)
			timeoutsAfter, err := b.client.metricByEdge(ctx, edges, unavailableMetric, "")
			row := latencyRow(c.name, len(edges), conc, res, 0, c.target(conc))
			// What the nodes spent on a request, whatever the machine's
			// other work and the load generator cost: steadier than the
			// throughput on a shared machine.
			if cpuErr == nil && res.sent > 0 {
				row.setValue("nodeCPUMicrosPerRequest", float64((cpuAfter-cpuBefore).Microseconds())/float64(res.sent))
			}
			if b.floor != nil && ctx.Err() == nil {
				row.compareWithFloor(b.limiterLoad(ctx, []string{b.floor.URL()}, c, conc, b.t.floor()))
			}
			if res.other > 0 {
				row.Result += "; " + plural(res.other, "request") + " let through by the window, not measured"
			}
			// A scope whose limiter does not answer within the limiter's
			// timeout is let through (open policy); the client sees it
			// only when every scope timed out, the node counts each.
			if err = cmp.Or(metricErr, err); err != nil {
				row.Result += "; " + unavailableMetric + ": " + errorKind(err)
			} else if n := sum(timeoutsAfter) - sum(timeoutsBefore); n > 0 {
				row.Result += "; " + plural(int64(n), "scope check") + " timed out and failed open"
				row.setValue("scopeChecksTimedOut", n)
			}
			b.add(secRateLimit, row)
		}
	}
}

// limiterLoad runs case c at concurrency conc over edges, each worker on
// a session of its own, with the phase lengths of t.
func (b *bench) limiterLoad(ctx context.Context, edges []string, c limiterCase, conc int, t timings) loadResult {
	sessions := newSessions(conc, 1)
	return load{
		conc: conc, warmup: t.warmup, measure: t.window(conc), series: []string{"check"},
		do: func(ctx context.Context, w, i int) ([]time.Duration, error) {
			start := time.Now()
			err := c.do(ctx, edges[(w+i)%len(edges)], sessions[w][0], w, i)
			if err != nil {
				return nil, err
			}
			return []time.Duration{time.Since(start)}, nil
		},
	}.run(ctx)
}
