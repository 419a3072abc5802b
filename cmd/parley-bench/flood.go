package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// The flood row: a tenant limited to floodPerMinute, flooded by
// floodClients concurrent clients for floodLength.
const (
	floodPerMinute = 60
	floodClients   = 64
	floodLength    = 10 * time.Second
)

// floodPhase floods the "flood" tenant with GET …/history (the cheapest
// rate-limited request) from floodClients workers, each request under a
// new X-User-Id, over every edge, for floodLength, and counts what was let
// through. The flood is started in a minute with floodLength left, so the
// whole of it falls in one fixed minute after an empty one: the sliding
// window then admits exactly floodPerMinute (docs/rate-limiting.md,
// Accuracy), and every request let through beyond that is a limit that
// did not hold (a limiter call that timed out under the open policy, a
// node that counted apart from the others).
func (b *bench) floodPhase(ctx context.Context, ns *nodes) {
	name := fmt.Sprintf("flood: %d clients for %s on a tenant limited to %d/min", floodClients, floodLength, floodPerMinute)
	if wait := untilRoomInMinute(time.Now(), floodLength+time.Second); wait > 0 {
		progress("waiting %s for the flood to fit in one minute", wait.Round(time.Second))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
	edges := ns.URLs()
	session := uuid.NewString()
	var (
		allowed, refused, failedOpen atomic.Int64
		errs                         = newErrorCounts()
		wg                           sync.WaitGroup
	)
	end := time.Now().Add(floodLength)
	for w := range floodClients {
		wg.Go(func() {
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				status, limited, err := b.floodOne(ctx, edges[(w+i)%len(edges)], session, fmt.Sprintf("flood-%d-%d", w, i))
				switch {
				case err != nil:
					errs.add(err)
				case status == http.StatusOK:
					allowed.Add(1)
					if !limited {
						failedOpen.Add(1)
					}
				case status == http.StatusTooManyRequests:
					refused.Add(1)
				default:
					errs.addKind(fmt.Sprintf("HTTP %d", status))
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	beyond := max(allowed.Load()-floodPerMinute, 0)
	row := Row{Name: name, Nodes: len(edges), Concurrency: floodClients, Count: allowed.Load() + refused.Load(),
		Throughput: float64(allowed.Load()+refused.Load()) / floodLength.Seconds(),
		Values: map[string]float64{
			"allowed": float64(allowed.Load()), "refused": float64(refused.Load()),
			"beyondLimit": float64(beyond), "failedOpen": float64(failedOpen.Load()),
		}}
	row.setErrors(errs)
	verdict := "PASS"
	if beyond > 0 {
		verdict = "FAIL"
	}
	row.Result = fmt.Sprintf("%s: %d let through beyond the limit (%d allowed, %d refused, %d unchecked)",
		verdict, beyond, allowed.Load(), refused.Load(), failedOpen.Load())
	b.add(secRateLimit, row)
}

// floodOne sends one flood request and returns its status and whether it
// carried the rate-limit headers (a 200 without them was let through
// unchecked: no limiter answered in time).
func (b *bench) floodOne(ctx context.Context, edge, session, user string) (int, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, edge+"/chat/"+session+"/history?limit=1", nil)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Authorization", "Bearer "+b.floodKey)
	req.Header.Set("X-User-Id", user)
	resp, err := b.client.http.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-RateLimit-Limit") != "", nil
}

// untilRoomInMinute is how long to wait from now until at least need is
// left in the current wall-clock minute (0 when it already is).
func untilRoomInMinute(now time.Time, need time.Duration) time.Duration {
	into := now.Sub(now.Truncate(time.Minute))
	if time.Minute-into >= need {
		return 0
	}
	return time.Minute - into + 100*time.Millisecond
}
