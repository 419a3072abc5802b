package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 2 minutes, three significant digits.
const (
	histMinMicros = 1
	histMaxMicros = int64(2 * time.Minute / time.Microsecond)
	histDigits    = 3
	// requestTimeout bounds one request, so a stuck reply is an error in
	// its row instead of a hung benchmark.
	requestTimeout = 30 * time.Second
)

// newHistogram is a latency histogram in microseconds.
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
}

// newHTTPClient keeps a pooled connection per worker: the default
// transport keeps only two idle connections per host, so 32 workers would
// pay a TCP handshake on most requests.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// load is one measured phase: conc workers each calling do in a loop.
// With total == 0 they run for warmup + measure and only requests started
// after the warm-up are recorded; with total > 0 they share total calls,
// all recorded, stopping early at measure.
type load struct {
	conc    int
	warmup  time.Duration
	measure time.Duration
	total   int
	// series names the latencies do returns, in order ("first token",
	// "done").
	series []string
	// do makes request iter of worker, checks its answer and returns one
	// latency per series, or an error (counted, never recorded), or
	// errNotMeasured.
	do func(ctx context.Context, worker, iter int) ([]time.Duration, error)
}

// errNotMeasured is what do returns for a correct answer of another kind
// than the phase measures (a request the limit let through, in a phase of
// refusals): counted in loadResult.other, neither a sample nor an error.
var errNotMeasured = errors.New("answer of another kind than measured")

// loadResult is what a phase measured.
type loadResult struct {
	hists   []*hdrhistogram.Histogram // one per series
	ok      int64                     // recorded, successful requests
	other   int64                     // recorded answers of another kind (errNotMeasured)
	sent    int64                     // every request made, warm-up and errors included
	errs    errorCounts
	elapsed time.Duration // the recorded window
}

// throughput is successful recorded requests per second.
func (r loadResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// run drives the phase. It returns early, with what it has, when ctx is
// done.
func (l load) run(ctx context.Context) loadResult {
	start := time.Now()
	measureFrom := start.Add(l.warmup)
	end := measureFrom.Add(l.measure)
	if l.total > 0 {
		measureFrom = start
	}
	var (
		mu    sync.Mutex
		res   = loadResult{hists: make([]*hdrhistogram.Histogram, len(l.series))}
		next  atomic.Int64
		wg    sync.WaitGroup
		errs  = newErrorCounts()
		lastT atomic.Int64 // end of the last recorded request (total mode)
		sent  atomic.Int64
	)
	for i := range res.hists {
		res.hists[i] = newHistogram()
	}
	for w := range l.conc {
		wg.Go(func() {
			hists := make([]*hdrhistogram.Histogram, len(l.series))
			for i := range hists {
				hists[i] = newHistogram()
			}
			var ok, other int64
			for i := 0; ; i++ {
				iter := i
				if l.total > 0 {
					iter = int(next.Add(1) - 1)
					if iter >= l.total {
						break
					}
				}
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					break
				}
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				lats, err := l.do(rctx, w, iter)
				cancel()
				sent.Add(1)
				if errors.Is(err, errNotMeasured) {
					if !t0.Before(measureFrom) {
						other++
					}
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						errs.add(err)
					}
					continue
				}
				if t0.Before(measureFrom) {
					continue
				}
				for s, d := range lats {
					_ = hists[s].RecordValue(max(d.Microseconds(), histMinMicros))
				}
				ok++
				lastT.Store(time.Now().UnixNano())
			}
			mu.Lock()
			defer mu.Unlock()
			for s := range hists {
				res.hists[s].Merge(hists[s])
			}
			res.ok += ok
			res.other += other
		})
	}
	wg.Wait()
	res.errs = errs
	res.sent = sent.Load()
	res.elapsed = min(time.Since(measureFrom), end.Sub(measureFrom))
	if l.total > 0 && lastT.Load() > 0 {
		res.elapsed = time.Unix(0, lastT.Load()).Sub(start)
	}
	return res
}

// errorCounts counts errors by kind. Kinds are short and never hold a
// session id, so they group.
type errorCounts struct {
	mu *sync.Mutex
	m  map[string]int64
}

func newErrorCounts() errorCounts { return errorCounts{mu: &sync.Mutex{}, m: map[string]int64{}} }

func (e errorCounts) add(err error) { e.addKind(errorKind(err)) }

func (e errorCounts) addKind(kind string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[kind]++
}

// merge adds o's counts to e.
func (e errorCounts) merge(o errorCounts) {
	for k, n := range o.snapshot() {
		e.mu.Lock()
		e.m[k] += n
		e.mu.Unlock()
	}
}

func (e errorCounts) total() int64 {
	var n int64
	for _, v := range e.snapshot() {
		n += v
	}
	return n
}

func (e errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// errorKind drops the URL a transport error carries (it names a port that
// changes every run).
func errorKind(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out after " + requestTimeout.String()
	}
	s := err.Error()
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}
