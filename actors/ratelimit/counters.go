package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// counters is everything one key keeps: a sliding minute for the sustained
// limit and a sliding second for the burst limit, six integers in all.
// Both are always counted, so a burst limit added to a tenant later starts
// from the truth.
type counters struct {
	sustained window // size minute
	burst     window // size second
}

// check decides whether cost units may be spent at now (microseconds since
// the Unix epoch) under l, and counts them if so, or anyway with charge
// (units already used). cost and l must have passed checkRequest.
func (c *counters) check(now, cost int64, l *Limits, charge bool) *Decision {
	c.sustained.roll(now, minute)
	c.burst.roll(now, second)
	allowed := c.sustained.fits(now, minute, cost, l.PerMinute) &&
		(l.Burst == 0 || c.burst.fits(now, second, cost, l.Burst))
	d := &Decision{Allowed: allowed, Limit: l.PerMinute}
	if allowed {
		c.sustained.add(cost)
		c.burst.add(cost)
		d.ResetAtUnix = c.sustained.end(minute) / second
	} else {
		wait := c.sustained.retryAfter(now, minute, cost, l.PerMinute)
		if l.Burst > 0 {
			wait = max(wait, c.burst.retryAfter(now, second, cost, l.Burst))
		}
		d.RetryAfterMillis = ceilDiv(wait, 1000)
		d.ResetAtUnix = ceilDiv(now+wait, second)
		if charge {
			c.sustained.add(cost)
			c.burst.add(cost)
		}
	}
	d.Remaining = c.sustained.remaining(now, minute, l.PerMinute)
	return d
}

// refund gives back cost units in both windows (see window.refund).
func (c *counters) refund(now, cost int64) {
	c.sustained.roll(now, minute)
	c.burst.roll(now, second)
	c.sustained.refund(cost)
	c.burst.refund(cost)
}

// checkLimits refuses limits out of range.
func checkLimits(l *Limits) error {
	switch {
	case l == nil:
		return fmt.Errorf("%w: no limits", ErrBadRequest)
	case l.PerMinute < 1 || l.PerMinute > MaxLimit:
		return fmt.Errorf("%w: perMinute %d is not 1 to %d", ErrBadRequest, l.PerMinute, MaxLimit)
	case l.Burst < 0 || l.Burst > MaxLimit:
		return fmt.Errorf("%w: burst %d is not 0 to %d", ErrBadRequest, l.Burst, MaxLimit)
	}
	return nil
}

// checkRequest validates a Check and returns its cost (0 means 1). A cost
// above a limit could never be allowed, so it is refused as malformed
// rather than answered with a wait that never ends.
func checkRequest(cost int32, l *Limits, charge bool) (int64, error) {
	if err := checkLimits(l); err != nil {
		return 0, err
	}
	c, err := checkCost(cost)
	switch {
	case err != nil:
		return 0, err
	case charge:
		return c, nil
	case c > l.PerMinute:
		return 0, fmt.Errorf("%w: cost %d exceeds perMinute %d", ErrBadRequest, c, l.PerMinute)
	case l.Burst > 0 && c > l.Burst:
		return 0, fmt.Errorf("%w: cost %d exceeds burst %d", ErrBadRequest, c, l.Burst)
	}
	return c, nil
}

// checkCost returns a Check's or Refund's cost: 0 means 1.
func checkCost(cost int32) (int64, error) {
	switch {
	case cost < 0:
		return 0, fmt.Errorf("%w: cost %d is negative", ErrBadRequest, cost)
	case cost == 0:
		return 1, nil
	}
	return int64(cost), nil
}

// countersVersion is the first byte of the stored encoding.
const countersVersion = 1

// encode is the stored form: a version byte and six varints (at most
// 61 bytes, typically under 20).
func (c *counters) encode() []byte {
	b := make([]byte, 0, 1+6*binary.MaxVarintLen64)
	b = append(b, countersVersion)
	for _, v := range []int64{c.sustained.index, c.sustained.prev, c.sustained.curr, c.burst.index, c.burst.prev, c.burst.curr} {
		b = binary.AppendVarint(b, v)
	}
	return b
}

// maxIndex bounds index × size in stored counters, so that nothing read
// back can overflow the window arithmetic.
const maxIndex = 1 << 62

var errBadCounters = errors.New("unreadable stored counters")

func decodeCounters(b []byte) (counters, error) {
	if len(b) == 0 || b[0] != countersVersion {
		return counters{}, fmt.Errorf("%w: not version %d", errBadCounters, countersVersion)
	}
	b = b[1:]
	var v [6]int64
	for i := range v {
		x, n := binary.Varint(b)
		if n <= 0 {
			return counters{}, fmt.Errorf("%w: field %d", errBadCounters, i)
		}
		v[i], b = x, b[n:]
	}
	if len(b) != 0 {
		return counters{}, fmt.Errorf("%w: %d trailing bytes", errBadCounters, len(b))
	}
	if v[0] < 0 || v[0] > maxIndex/minute || v[3] < 0 || v[3] > maxIndex/second {
		return counters{}, fmt.Errorf("%w: window index out of range", errBadCounters)
	}
	for _, count := range []int64{v[1], v[2], v[4], v[5]} {
		if count < 0 || count > MaxLimit {
			return counters{}, fmt.Errorf("%w: count %d out of range", errBadCounters, count)
		}
	}
	return counters{
		sustained: window{index: v[0], prev: v[1], curr: v[2]},
		burst:     window{index: v[3], prev: v[4], curr: v[5]},
	}, nil
}

// ceilDiv is a/b rounded up, for a ≥ 0 and b > 0.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
