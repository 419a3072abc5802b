package ratelimit

import (
	"math/rand/v2"
	"testing"
)

// TestRetryAfterIsExact checks the wait the window math computes against
// the definition, on random histories: a check that did not fit fits after
// exactly retryAfter microseconds, and not one microsecond earlier.
func TestRetryAfterIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := int64(1_767_268_800) * second // 2026-01-01 12:00 UTC
	fitsAt := func(w window, at, size, cost, limit int64) bool {
		w.roll(at, size)
		return w.fits(at, size, cost, limit)
	}
	for _, size := range []int64{minute, second} {
		for range 20_000 {
			limit := 1 + rng.Int64N(50)
			if rng.IntN(10) == 0 {
				limit = 1 + rng.Int64N(MaxLimit)
			}
			w := window{index: base / size}
			now := base + rng.Int64N(2*size)
			w.roll(now, size)
			w.prev = rng.Int64N(limit + 1)
			w.curr = rng.Int64N(limit + 1)
			cost := 1 + rng.Int64N(limit)
			d := w.retryAfter(now, size, cost, limit)
			switch {
			case d < 0:
				t.Fatalf("%+v limit %d cost %d at +%d: negative wait %d", w, limit, cost, now-base, d)
			case !fitsAt(w, now+d, size, cost, limit):
				t.Fatalf("%+v limit %d cost %d at +%d: does not fit after %d µs", w, limit, cost, now-base, d)
			case d > 0 && fitsAt(w, now+d-1, size, cost, limit):
				t.Fatalf("%+v limit %d cost %d at +%d: fits before %d µs", w, limit, cost, now-base, d)
			case d > 2*size:
				t.Fatalf("%+v limit %d cost %d: wait %d beyond two windows", w, limit, cost, d)
			}
		}
	}
}

// TestTheEstimateNeverGrowsWithTime is what makes retryAfter exact: with
// no requests, the estimate only falls, across window boundaries too.
func TestTheEstimateNeverGrowsWithTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2_000 {
		w := window{index: 100, prev: rng.Int64N(1000), curr: rng.Int64N(1000)}
		at := 100*second + rng.Int64N(second)
		w.roll(at, second)
		last := w.scaled(at, second)
		for range 50 {
			at += rng.Int64N(second / 5)
			w.roll(at, second)
			if s := w.scaled(at, second); s > last {
				t.Fatalf("estimate grew from %d to %d at %d (%+v)", last, s, at, w)
			} else {
				last = s
			}
		}
	}
}

func TestCountersEncodingRoundTripsAndRefusesGarbage(t *testing.T) {
	c := counters{sustained: window{index: 29_479_480, prev: 7, curr: MaxLimit}, burst: window{index: 1_768_768_800, curr: 3}}
	got, err := decodeCounters(c.encode())
	if err != nil || got != c {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if n := len(c.encode()); n > 40 {
		t.Errorf("encoding is %d bytes", n)
	}
	for _, bad := range [][]byte{
		nil, {}, {2}, {countersVersion}, append(c.encode(), 0),
		(&counters{sustained: window{prev: -1}}).encode(),
		(&counters{burst: window{curr: MaxLimit + 1}}).encode(),
		(&counters{sustained: window{index: -1}}).encode(),
		(&counters{sustained: window{index: maxIndex}}).encode(),
	} {
		if _, err := decodeCounters(bad); err == nil {
			t.Errorf("decoded %x", bad)
		}
	}
}

// BenchmarkCountersCheck is the grain's own work per decision, without
// the messaging around it.
func BenchmarkCountersCheck(b *testing.B) {
	limits := &Limits{PerMinute: MaxLimit, Burst: MaxLimit}
	var c counters
	now := int64(1_767_268_800) * second
	for b.Loop() {
		now += 7
		if d := c.check(now, 1, limits, false); !d.Allowed {
			b.Fatal("refused")
		}
	}
}
