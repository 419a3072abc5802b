package ratelimit

import (
	"sync"
	"time"
)

// # The deny cache
//
// A scope that refused a request refuses every request like it until its
// RetryAfter has passed: the sliding window only admits again once enough
// of the previous minute has slid out. So a Limiter remembers each refusal
// it was given, on its own node, until then, and refuses a request that
// meets a remembered refusal without asking any grain. A flood of refused
// requests then costs a map lookup each instead of three grain calls (whose
// timeouts, under PolicyOpen, would let requests through), and a refused
// request for a new user or address creates no limiter state.
//
// It stays correct across nodes to within the window: every node's entry
// comes from the grain's own answer, so no node refuses after the grain
// would admit again (an entry never outlives the RetryAfter it was given),
// and a node without an entry asks the grain as before. An entry applies
// only to a check with the same limits (a reloaded tenants file that
// changes them is asked afresh) and a cost at least the refused one's.
//
// The cache is bounded (LimiterConfig.DenyCacheSize entries): when it is
// full, expired entries are dropped (at most once a second), then an
// arbitrary live one, so a flood of distinct keys costs memory in
// proportion to the bound, never to the flood.
type denyCache struct {
	max int

	mu        sync.Mutex
	entries   map[string]denial // by grain identity: tenant, scope and id
	lastPurge time.Time
}

// denial is one remembered refusal.
type denial struct {
	until   time.Time // the refusal holds before this instant
	resetAt time.Time // the Decision's reset, for the headers
	cost    int32
	// perMinute and burst are the limits the refusal was made under.
	perMinute, burst int64
}

func newDenyCache(max int) *denyCache {
	return &denyCache{max: max, entries: make(map[string]denial)}
}

// lookup returns the refusal remembered for identity that a check of cost
// against limits meets at now.
func (c *denyCache) lookup(identity string, cost int32, limits *Limits, now time.Time) (denial, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.entries[identity]
	switch {
	case !ok:
		return denial{}, false
	case !now.Before(d.until):
		delete(c.entries, identity)
		return denial{}, false
	case cost < d.cost || d.perMinute != limits.PerMinute || d.burst != limits.Burst:
		return denial{}, false
	}
	return d, true
}

// remember records a refusal of identity, holding until d.until.
func (c *denyCache) remember(identity string, d denial, now time.Time) {
	if c.max <= 0 || !now.Before(d.until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[identity]; !ok && len(c.entries) >= c.max {
		if now.Sub(c.lastPurge) >= time.Second {
			c.lastPurge = now
			for id, e := range c.entries {
				if !now.Before(e.until) {
					delete(c.entries, id)
				}
			}
		}
		for id := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, id)
		}
	}
	c.entries[identity] = d
}
