// Package persistence is the only way grains reach durable state. Grains see
// the narrow interfaces in this package; the first implementation is one
// Badger DB per node (persistence/badgerstore), and a replicated one
// (persistence/raftstore) stands behind the same interfaces without touching grains.
//
// Every key an implementation writes starts with the tenant id followed by
// ':', so one tenant's data is one key prefix. Tenant ids never contain ':'
// (see ValidTenantID), so no tenant's prefix is a prefix of another's.
//
// Implementations never read a clock: callers pass the times that matter
// (createdAt, expiresAt, now). Time therefore comes from whatever clock the
// caller was given, and tests drive it with a fake one.
package persistence

import (
	"context"
	"io"
	"time"
)

// Store is everything a node persists: chat sessions and expiring key-value
// entries. Implementations are safe for concurrent use.
type Store interface {
	SessionStore
	KVStore
	UsageReader
	// Sweep removes what has expired as of now: KV entries whose expiry has
	// passed, and session messages older than the tenant's retention as given
	// by retention (a retention of zero or less keeps messages forever). It is
	// called periodically by the node, never on a request's path.
	Sweep(ctx context.Context, now time.Time, retention func(tenant string) time.Duration) (SweepStats, error)
	// DeleteTenant removes every key of one tenant (an operator action).
	DeleteTenant(ctx context.Context, tenant string) error
	io.Closer
}

// SweepStats reports what one Sweep removed.
type SweepStats struct {
	Messages  int // session messages removed for age
	KVEntries int // expired key-value entries removed
	Sessions  int // sessions this sweep emptied (their LastSeq is kept)
}
