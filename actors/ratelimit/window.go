package ratelimit

import "time"

// The two windows every key counts in. Time inside the algorithm is in
// microseconds since the Unix epoch: fine enough that rounding never shows
// in a millisecond Retry-After, coarse enough that count × window size stays
// far inside int64 (MaxLimit × minute = 6·10^16).
const (
	minute = int64(time.Minute / time.Microsecond)
	second = int64(time.Second / time.Microsecond)
)

// MaxLimit bounds per_minute, burst and therefore every count.
const MaxLimit = 1_000_000_000

// window is a sliding window counter (the algorithm Cloudflare described
// in "How we built rate limiting capable of scaling to millions of
// domains", 2017): the count of the current fixed window, the count of the
// one before, and which fixed window is current. Fixed windows are aligned
// on multiples of their size since the Unix epoch, so the minute windows
// are calendar minutes.
//
// The number of units in the sliding window that ends at t is estimated as
//
//	prev × (size − elapsed) / size + curr
//
// where elapsed is how far t is into the current fixed window: the previous
// window's units are assumed spread evenly over it, and the part of it the
// sliding window still covers counts in proportion. Three integers per
// window, whatever the limit.
type window struct {
	index      int64 // the current fixed window is [index×size, (index+1)×size)
	prev, curr int64
}

// roll makes the fixed window holding now the current one. A clock that
// went backwards (now before the current window) changes nothing: elapsed
// is then taken as 0, the most conservative estimate.
func (w *window) roll(now, size int64) {
	idx := floorDiv(now, size)
	switch {
	case idx <= w.index:
		return
	case idx == w.index+1:
		w.prev, w.curr = w.curr, 0
	default:
		w.prev, w.curr = 0, 0
	}
	w.index = idx
}

// elapsed is how far now is into the current window, within [0, size).
func (w *window) elapsed(now, size int64) int64 {
	return min(max(now-w.index*size, 0), size-1)
}

// scaled is the estimated count at now, times size (kept scaled so that
// every comparison is exact integer arithmetic).
func (w *window) scaled(now, size int64) int64 {
	return w.prev*(size-w.elapsed(now, size)) + w.curr*size
}

// fits reports whether cost more units at now stay within limit.
func (w *window) fits(now, size, cost, limit int64) bool {
	return w.scaled(now, size)+cost*size <= limit*size
}

// remaining is floor(limit − estimate) at now, never negative.
func (w *window) remaining(now, size, limit int64) int64 {
	return max(limit*size-w.scaled(now, size), 0) / size
}

// retryAfter is the shortest wait d ≥ 0, in microseconds, after which cost
// units would fit if nothing else were counted meanwhile; w must have been
// rolled to now, and cost must not exceed limit.
//
// The estimate never grows while time passes without requests: within a
// window the previous window's weight falls, and at a boundary the estimate
// is curr on both sides. So once a check fits it keeps fitting, d is exact
// (to the microsecond), and a check against two windows waits for the
// larger of their two waits.
func (w *window) retryAfter(now, size, cost, limit int64) int64 {
	start := w.index * size
	if now < start { // the clock went backwards: wait for it to catch up
		return start - now + w.retryAfter(start, size, cost, limit)
	}
	if w.fits(now, size, cost, limit) {
		return 0
	}
	e := now - start
	if r := limit - w.curr - cost; r >= 0 {
		// Later in this window, once the previous window's weight has
		// fallen to prev × (size − e') ≤ r × size. prev > 0 here: with
		// prev == 0 the check would have fitted.
		return size - r*size/w.prev - e
	}
	// In a later window: curr becomes prev and must fall to
	// curr × (size − e'') ≤ (limit − cost) × size. curr > limit − cost ≥ 0
	// here. When cost == limit that is e'' = size: two windows on.
	return size - e + size - (limit-cost)*size/w.curr
}

// add counts cost units in the current window.
func (w *window) add(cost int64) { w.curr += cost }

// refund takes cost units back: from the current window, and what the
// current window does not hold from the previous one (the window turned
// since the units were counted). Counts never go below zero.
func (w *window) refund(cost int64) {
	take := min(cost, w.curr)
	w.curr -= take
	w.prev = max(w.prev-(cost-take), 0)
}

// end is when the current fixed window ends, in microseconds.
func (w *window) end(size int64) int64 { return (w.index + 1) * size }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
