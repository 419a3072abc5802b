package persistence

import (
	"errors"
	"fmt"
)

// Quota bounds what one tenant keeps in a store. Each write carries the
// tenant's quota (from the tenants file), so the store, and on the
// replicated store every member's state machine, decides from the write
// alone whether it fits: every member reaches the same answer. A zero
// field means no limit.
//
// What counts: StoredBytes is the bytes of the tenant's session messages
// and cache entries (key and value as stored); Sessions is the tenant's
// sessions that hold at least one message; CacheEntries is its entries in
// SpaceCache. Entries of other spaces (the rate limiter's counters) are
// the node's own bookkeeping and count against nothing.
type Quota struct {
	MaxStoredBytes  int64
	MaxSessions     int64
	MaxCacheEntries int64
}

// Usage is what one tenant holds, in the units of Quota.
type Usage struct {
	StoredBytes  int64
	Sessions     int64
	CacheEntries int64
}

// Add returns u plus d.
func (u Usage) Add(d Usage) Usage {
	return Usage{StoredBytes: u.StoredBytes + d.StoredBytes, Sessions: u.Sessions + d.Sessions, CacheEntries: u.CacheEntries + d.CacheEntries}
}

// Neg returns -u.
func (u Usage) Neg() Usage {
	return Usage{StoredBytes: -u.StoredBytes, Sessions: -u.Sessions, CacheEntries: -u.CacheEntries}
}

// Growth splits u into what it adds (grow) and what it gives back
// (shrink, all fields zero or negative).
func (u Usage) Growth() (grow, shrink Usage) {
	split := func(v int64, g, s *int64) {
		if v > 0 {
			*g = v
		} else {
			*s = v
		}
	}
	split(u.StoredBytes, &grow.StoredBytes, &shrink.StoredBytes)
	split(u.Sessions, &grow.Sessions, &shrink.Sessions)
	split(u.CacheEntries, &grow.CacheEntries, &shrink.CacheEntries)
	return grow, shrink
}

// The names of the quotas, as the tenants file spells them; a
// *QuotaError's Quota is one of them.
const (
	QuotaStoredBytes  = "maxStoredBytes"
	QuotaSessions     = "maxSessions"
	QuotaCacheEntries = "maxCacheEntries"
)

// Check returns a *QuotaError naming the first quota that used plus grow
// passes, considering only the fields grow increases: a write that gives
// room back, or keeps a usage as it is, always fits, even over a quota
// lowered since.
func (q Quota) Check(used, grow Usage) error {
	over := func(name string, limit, used, grow int64) error {
		if limit > 0 && grow > 0 && used+grow > limit {
			return &QuotaError{Quota: name, Limit: limit, Used: used}
		}
		return nil
	}
	return errors.Join(
		over(QuotaStoredBytes, q.MaxStoredBytes, used.StoredBytes, grow.StoredBytes),
		over(QuotaSessions, q.MaxSessions, used.Sessions, grow.Sessions),
		over(QuotaCacheEntries, q.MaxCacheEntries, used.CacheEntries, grow.CacheEntries),
	)
}

// QuotaError is a write refused because it would pass a tenant's quota.
// errors.Is(err, ErrQuotaExceeded) holds for it.
type QuotaError struct {
	Quota string // QuotaStoredBytes, QuotaSessions or QuotaCacheEntries
	Limit int64  // the quota
	Used  int64  // the usage before the write
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%s: %s is %d, %d used", ErrQuotaExceeded, e.Quota, e.Limit, e.Used)
}

// Unwrap returns ErrQuotaExceeded.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// ExceededQuota returns the name of the quota err reports as exceeded, or
// "" when err is not a quota refusal.
func ExceededQuota(err error) string {
	var qe *QuotaError
	if errors.As(err, &qe) {
		return qe.Quota
	}
	return ""
}

// PutOptions bound what Put keeps.
type PutOptions struct {
	// Quota is the tenant's; the zero Quota admits everything.
	Quota Quota
}

// UsageReader is a store that accounts each tenant's usage. Both stores
// implement it; the node reads it for /metrics.
type UsageReader interface {
	// Usage returns what tenant holds now. It never blocks on a write
	// and may be called from any goroutine.
	Usage(tenant string) (Usage, error)
}
