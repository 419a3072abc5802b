package badgerstore

import (
	"github.com/parley-chat/parley/persistence"

	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Sweep implements Store. It walks the whole key space once, in chunks of at
// most batchLimits.sweepScanChunk keys, each read in its own short read
// transaction:
//
//   - a KV entry expired as of now is queued for deletion;
//   - for a session, only its oldest message is read: if it is older than
//     the tenant's retention the session is queued, and either way the scan
//     then jumps to the next session, so a sweep reads one message per
//     session, not the whole history.
//
// The queue (at most batchLimits.deleteBatch entries) is then applied in
// update transactions that re-check every entry, because a Put or an Append
// may have refreshed it since the scan, and that read the session meta, so
// that a concurrent Append conflicts instead of being lost. A swept session
// keeps its meta with its LastSeq (so the sequence never goes back) and
// FirstSeq set to the oldest message left, or 0 when none is;
// SweepStats.Sessions counts the sessions this sweep emptied.
//
// A session whose transactions keep conflicting with appends, and an entry
// whose value cannot be decoded, are logged and left in place rather than
// failing the sweep for every other tenant; the busy session is retried by
// the next sweep. ctx is checked between chunks and sessions.
func (s *Store) Sweep(ctx context.Context, now time.Time, retention func(tenant string) time.Duration) (persistence.SweepStats, error) {
	cutoffs := make(map[string]time.Time) // zero: the tenant keeps messages
	cutoffOf := func(tenant string) time.Time {
		c, ok := cutoffs[tenant]
		if !ok {
			if r := retention(tenant); r > 0 {
				c = now.Add(-r)
			}
			cutoffs[tenant] = c
		}
		return c
	}

	var stats persistence.SweepStats
	var start []byte
	for {
		release, err := s.enter(ctx)
		if err != nil {
			return stats, err
		}
		start, err = s.sweepChunk(ctx, start, now, cutoffOf, &stats)
		release()
		if err != nil {
			return stats, fmt.Errorf("sweep: %w", err)
		}
		if start == nil {
			return stats, nil
		}
	}
}

// sweepWork is what one scan chunk found to delete.
type sweepWork struct {
	kv       [][]byte       // keys of expired KV entries
	sessions []sessionSweep // sessions whose oldest message is past retention
	next     []byte         // where the next chunk starts; nil at the end
}

type sessionSweep struct {
	key    persistence.SessionKey
	cutoff time.Time // messages created before it go
}

func (s *Store) sweepChunk(ctx context.Context, start []byte, now time.Time, cutoffOf func(string) time.Time, stats *persistence.SweepStats) ([]byte, error) {
	var work sweepWork
	if err := s.db.View(func(txn *badger.Txn) error {
		var err error
		work, err = s.scanForSweep(txn, start, now, cutoffOf)
		return err
	}); err != nil {
		return nil, err
	}

	if len(work.kv) > 0 {
		n, err := s.sweepKV(work.kv, now)
		stats.KVEntries += n
		if err != nil {
			return nil, err
		}
	}
	for _, sw := range work.sessions {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		removed, emptied, err := s.sweepSession(sw)
		stats.Messages += removed
		if emptied {
			stats.Sessions++
		}
		switch {
		case errors.Is(err, persistence.ErrSequenceConflict):
			// Appends kept winning: the session is busy right now. Its aged
			// messages are hidden from pages by notBefore and wait for the
			// next sweep.
			s.log.Debug("sweep skipped a busy session", "tenant", sw.key.Tenant, "session", sw.key.Session, "err", err)
			continue
		case errors.Is(err, errCorrupt):
			s.log.Error("sweep skipped a session with a corrupt message", "tenant", sw.key.Tenant, "session", sw.key.Session, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	return work.next, nil
}

// scanForSweep reads keys from start on (the beginning when nil) until the
// end, s.limits.sweepScanChunk keys, or s.limits.deleteBatch pieces of work.
func (s *Store) scanForSweep(txn *badger.Txn, start []byte, now time.Time, cutoffOf func(string) time.Time) (sweepWork, error) {
	limits := s.limits
	var work sweepWork
	it := txn.NewIterator(badger.IteratorOptions{}) // keys only; values on demand
	defer it.Close()

	scanned := 0
	for it.Seek(start); it.Valid(); {
		key := it.Item().Key()
		if scanned == limits.sweepScanChunk || len(work.kv)+len(work.sessions) == limits.deleteBatch {
			work.next = bytes.Clone(key)
			break
		}
		scanned++

		tenant, kind, ok := splitKey(key)
		switch {
		case ok && kind == 'k':
			var exp time.Time
			err := it.Item().Value(func(v []byte) error {
				var err error
				_, exp, err = decodeKV(v)
				return err
			})
			switch {
			case errors.Is(err, errCorrupt):
				s.log.Error("sweep skipped a corrupt KV entry", "tenant", tenant, "err", err)
			case err != nil:
				return work, fmt.Errorf("kv entry of tenant %s: %w", tenant, err)
			case expired(exp, now):
				work.kv = append(work.kv, bytes.Clone(key))
			}
			it.Next()

		case ok && kind == 's':
			prefix, isMessage := splitSessionKey(key, tenant)
			if prefix == nil {
				it.Next() // not a key this code writes; leave it alone
				continue
			}
			cutoff := cutoffOf(tenant)
			if !cutoff.IsZero() && isMessage {
				// The first message key after the meta is the session's
				// oldest message.
				session := string(prefix[len(tenant)+len(":s:") : len(prefix)-1])
				var created time.Time
				err := it.Item().Value(func(v []byte) error {
					var err error
					created, err = messageCreatedAt(v)
					return err
				})
				switch {
				case errors.Is(err, errCorrupt):
					s.log.Error("sweep skipped a session with a corrupt message", "tenant", tenant, "session", session, "err", err)
				case err != nil:
					return work, fmt.Errorf("message of session %s:%s: %w", tenant, session, err)
				case created.Before(cutoff):
					work.sessions = append(work.sessions, sessionSweep{key: persistence.SessionKey{Tenant: tenant, Session: session}, cutoff: cutoff})
				}
			}
			if cutoff.IsZero() || isMessage {
				it.Seek(sessionEnd(prefix))
			} else {
				it.Next() // from the meta to the oldest message
			}

		default:
			it.Next()
		}
	}
	return work, nil
}

// sweepKV deletes the entries of keys that are still expired as of now and
// returns how many it deleted.
func (s *Store) sweepKV(keys [][]byte, now time.Time) (int, error) {
	var deleted int
	var p pending
	err := s.updateRetrying(&p, func(txn *badger.Txn) error {
		deleted = 0
		for _, k := range keys {
			item, err := txn.Get(k)
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue // deleted since the scan
			}
			if err != nil {
				return err
			}
			var (
				exp  time.Time
				size int64
			)
			if err := item.Value(func(v []byte) error {
				size = storedSize(k, len(v))
				_, exp, err = decodeKV(v)
				return err
			}); err != nil {
				return err
			}
			if !expired(exp, now) {
				continue // put again since the scan
			}
			if err := txn.Delete(k); err != nil {
				return err
			}
			if tenant, ok := cacheTenant(k); ok {
				if err := s.charge(&p, tenant, persistence.Usage{StoredBytes: -size, CacheEntries: -1}, persistence.Quota{}); err != nil {
					return err
				}
			}
			deleted++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}

// sweepSession deletes the session's messages created before sw.cutoff,
// oldest first, in transactions of at most limits.deleteBatch deletes, and
// moves FirstSeq past them. It reports how many it removed and whether that left
// the session without messages.
func (s *Store) sweepSession(sw sessionSweep) (int, bool, error) {
	var removed int
	mkey, mprefix := metaKey(sw.key), messagePrefix(sw.key)
	for {
		var (
			batch int
			left  bool // a message remains after this transaction
			more  bool // more aged messages remain after this transaction
		)
		var p pending
		err := s.updateRetrying(&p, func(txn *badger.Txn) error {
			meta, found, err := readMeta(txn, mkey)
			if err != nil {
				return err
			}
			var keys [][]byte
			var oldestLeft uint64
			var size int64
			keys, oldestLeft, more, size, err = agedMessages(txn, mprefix, sw.cutoff, s.limits.deleteBatch)
			if err != nil {
				return err
			}
			batch, left = len(keys), oldestLeft != 0
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			freed := persistence.Usage{StoredBytes: -size}
			if found && len(keys) > 0 && meta.FirstSeq != 0 && oldestLeft == 0 {
				freed.Sessions = -1
			}
			if err := s.charge(&p, sw.key.Tenant, freed, persistence.Quota{}); err != nil {
				return err
			}
			if !found || len(keys) == 0 {
				return nil // nothing aged since the scan, or messages without a meta
			}
			meta.FirstSeq = oldestLeft
			return txn.Set(mkey, encodeMeta(meta))
		})
		if err != nil {
			return removed, false, fmt.Errorf("session %s: %w", sessionName(sw.key), err)
		}
		removed += batch
		if !more {
			return removed, removed > 0 && !left, nil
		}
	}
}

// agedMessages returns the keys of the session's oldest messages created
// before cutoff, at most batch of them, with the sequence of the
// oldest message that stays (0 when none does), whether more aged
// messages remain past the batch, and the stored size of the keys.
func agedMessages(txn *badger.Txn, prefix []byte, cutoff time.Time, batch int) (keys [][]byte, oldestLeft uint64, more bool, size int64, err error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		seq, err := seqOf(prefix, item.Key())
		if err != nil {
			return nil, 0, false, 0, err
		}
		var (
			created time.Time
			n       int64
		)
		if err := item.Value(func(v []byte) error {
			n = storedSize(item.Key(), len(v))
			created, err = messageCreatedAt(v)
			return err
		}); err != nil {
			return nil, 0, false, 0, fmt.Errorf("message %d: %w", seq, err)
		}
		if !created.Before(cutoff) {
			return keys, seq, false, size, nil
		}
		if len(keys) == batch {
			return keys, seq, true, size, nil
		}
		keys = append(keys, item.KeyCopy(nil))
		size += n
	}
	return keys, 0, false, size, nil
}

// DeleteTenant implements Store with Badger's DropPrefix, which removes the
// tenant's keys from the memtables and every level at once. It pauses all
// writes of the node while it runs, which is acceptable for a rare operator
// action and much faster than deleting a large tenant key by key.
func (s *Store) DeleteTenant(ctx context.Context, tenant string) error {
	if err := persistence.ValidateTenant(tenant); err != nil {
		return err
	}
	release, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer release()

	if err := s.db.DropPrefix(tenantPrefix(tenant)); err != nil {
		return fmt.Errorf("delete tenant %s: %w", tenant, err)
	}
	s.usage.drop(tenant)
	return nil
}

// splitKey returns the tenant of a stored key and the byte naming its kind
// ('s' for sessions, 'k' for KV); ok is false for a key of another shape.
func splitKey(key []byte) (tenant string, kind byte, ok bool) {
	i := bytes.IndexByte(key, ':')
	if i <= 0 || len(key) < i+3 || key[i+2] != ':' {
		return "", 0, false
	}
	return string(key[:i]), key[i+1], true
}

// splitSessionKey returns the session prefix "<tenant>:s:<session>:" of a
// session key and whether the key is a message (rather than the meta); the
// prefix is nil if the key has neither shape.
func splitSessionKey(key []byte, tenant string) (prefix []byte, isMessage bool) {
	const uuidLen = 36
	n := len(tenant) + len(":s:") + uuidLen + 1
	if len(key) <= n || key[n-1] != ':' {
		return nil, false
	}
	switch rest := key[n:]; {
	case len(rest) == 1 && rest[0] == 'm':
		return key[:n], false
	case len(rest) == 2+8 && rest[0] == 'q' && rest[1] == ':':
		return key[:n], true
	}
	return nil, false
}

// sessionEnd returns the smallest key after every key under the session
// prefix: the prefix with its final ':' replaced by the next byte, ';'.
func sessionEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	end[len(end)-1] = ':' + 1
	return end
}

// ScanKeys calls fn with every stored key that starts with prefix (all keys
// when prefix is empty), in key order. It is for operators and tests that
// inspect what is on disk (docs/sessions.md); the slice is valid only
// during the call.
func (s *Store) ScanKeys(ctx context.Context, prefix string, fn func(key []byte) error) error {
	release, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer release()
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(it.Item().Key()); err != nil {
				return err
			}
		}
		return nil
	})
}
