package badgerstore

import (
	"github.com/parley-chat/parley/persistence"

	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Page limits: a request for fewer than one message gets one, and no page is
// larger than maxPageLimit, which bounds the memory one history request can
// pin.
const maxPageLimit = 1000

// Meta implements SessionStore.
func (s *Store) Meta(ctx context.Context, key persistence.SessionKey) (persistence.SessionMeta, error) {
	if err := persistence.ValidateSessionKey(key); err != nil {
		return persistence.SessionMeta{}, err
	}
	release, err := s.enter(ctx)
	if err != nil {
		return persistence.SessionMeta{}, err
	}
	defer release()

	var meta persistence.SessionMeta
	err = s.db.View(func(txn *badger.Txn) error {
		meta, _, err = readMeta(txn, metaKey(key))
		return err
	})
	if err != nil {
		return persistence.SessionMeta{}, fmt.Errorf("read meta of session %s: %w", sessionName(key), err)
	}
	return meta, nil
}

// Append implements SessionStore. The whole append (the LastSeq check, the
// messages, the MaxMessages trim and the new meta) is one Badger transaction.
// At most batchLimits.trimPerAppend old messages are trimmed per call (see
// its comment).
func (s *Store) Append(ctx context.Context, key persistence.SessionKey, expectedLast uint64, msgs []persistence.Message, opts persistence.AppendOptions) (persistence.SessionMeta, error) {
	if err := persistence.ValidateSessionKey(key); err != nil {
		return persistence.SessionMeta{}, err
	}
	if err := checkAppend(expectedLast, msgs, opts); err != nil {
		return persistence.SessionMeta{}, fmt.Errorf("append to session %s: %w", sessionName(key), err)
	}
	release, err := s.enter(ctx)
	if err != nil {
		return persistence.SessionMeta{}, err
	}
	defer release()

	mkey, prefix := metaKey(key), messagePrefix(key)
	var next persistence.SessionMeta
	var p pending
	err = s.updateCharged(&p, func(txn *badger.Txn) error {
		cur, _, err := readMeta(txn, mkey)
		if err != nil {
			return err
		}
		if cur.LastSeq != expectedLast {
			return fmt.Errorf("%w: last sequence is %d, expected %d", persistence.ErrSequenceConflict, cur.LastSeq, expectedLast)
		}
		if s.appendRaced != nil {
			s.appendRaced()
		}
		var d persistence.Usage
		for _, m := range msgs {
			k, v := messageKey(prefix, m.Seq), encodeMessage(m)
			d.StoredBytes += storedSize(k, len(v))
			if err := txn.Set(k, v); err != nil {
				return err
			}
		}
		next = persistence.SessionMeta{LastSeq: msgs[len(msgs)-1].Seq, FirstSeq: cur.FirstSeq}
		if next.FirstSeq == 0 {
			next.FirstSeq = msgs[0].Seq
			d.Sessions = 1
		}
		if opts.MaxMessages > 0 {
			// Stored messages are always FirstSeq..LastSeq without gaps:
			// trims and sweeps only ever remove the oldest ones.
			stored, capacity := next.LastSeq-next.FirstSeq+1, uint64(opts.MaxMessages)
			if stored > capacity {
				for range min(stored-capacity, s.limits.trimPerAppend) {
					k := messageKey(prefix, next.FirstSeq)
					n, _, err := valueLen(txn, k)
					if err != nil {
						return err
					}
					d.StoredBytes -= storedSize(k, n)
					if err := txn.Delete(k); err != nil {
						return err
					}
					next.FirstSeq++
				}
			}
		}
		if err := s.charge(&p, key.Tenant, d, opts.Quota); err != nil {
			return err
		}
		return txn.Set(mkey, encodeMeta(next))
	})
	if errors.Is(err, badger.ErrConflict) {
		// Another transaction changed the meta after this one read it.
		err = fmt.Errorf("%w: concurrent append", persistence.ErrSequenceConflict)
	}
	if err != nil {
		return persistence.SessionMeta{}, fmt.Errorf("append to session %s: %w", sessionName(key), err)
	}
	return next, nil
}

// checkAppend refuses an append that could break the session's gapless
// numbering. These are the caller's bugs, not conflicts, so they are not
// ErrSequenceConflict: retrying would not help.
func checkAppend(expectedLast uint64, msgs []persistence.Message, opts persistence.AppendOptions) error {
	if len(msgs) == 0 {
		return errors.New("no messages to append")
	}
	if opts.MaxMessages < 0 {
		return fmt.Errorf("negative MaxMessages %d", opts.MaxMessages)
	}
	if uint64(len(msgs)) > math.MaxUint64-expectedLast {
		return errors.New("sequence overflow")
	}
	for i, m := range msgs {
		if want := expectedLast + uint64(i) + 1; m.Seq != want {
			return fmt.Errorf("message %d has seq %d, want %d (consecutive after %d)", i, m.Seq, want, expectedLast)
		}
	}
	return nil
}

// Page implements SessionStore. It relies on messages being appended in
// non-decreasing CreatedAt order (they carry their grain's clock reading at
// append time), so the scan stops at the first message created before
// notBefore instead of walking the expired rest of the session.
func (s *Store) Page(ctx context.Context, key persistence.SessionKey, before uint64, limit int, notBefore time.Time) ([]persistence.Message, error) {
	if err := persistence.ValidateSessionKey(key); err != nil {
		return nil, err
	}
	release, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	limit = min(max(limit, 1), maxPageLimit)
	if before == 1 {
		return []persistence.Message{}, nil // no sequence is below 1
	}
	// A reverse Seek lands on the largest key <= its argument, so seek to
	// the newest sequence wanted, not to before itself.
	newest := uint64(math.MaxUint64)
	if before > 0 {
		newest = before - 1
	}

	prefix := messagePrefix(key)
	out := make([]persistence.Message, 0, min(limit, 128))
	err = s.db.View(func(txn *badger.Txn) error {
		// Values are read in place, not prefetched: Badger prefetches each
		// value on a goroutine of its own, which costs more than reading
		// the small values of chat messages.
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: prefix})
		defer it.Close()
		for it.Seek(messageKey(prefix, newest)); it.ValidForPrefix(prefix) && len(out) < limit; it.Next() {
			item := it.Item()
			seq, err := seqOf(prefix, item.Key())
			if err != nil {
				return err
			}
			var m persistence.Message
			if err := item.Value(func(v []byte) error {
				m, err = decodeMessage(v)
				return err
			}); err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
			if !notBefore.IsZero() && m.CreatedAt.Before(notBefore) {
				break // everything older was created earlier still
			}
			m.Seq = seq
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("page session %s: %w", sessionName(key), err)
	}
	return out, nil
}

// DeleteSession implements SessionStore. A session of more than
// batchLimits.deleteBatch messages is deleted over several transactions,
// oldest first; the last one also deletes the meta. Each of them reads the
// meta, so an Append that commits in between makes it conflict and retry, and
// a message appended before the meta is gone is deleted with the rest. If
// appends keep winning for conflictRetries attempts, DeleteSession gives up
// with ErrSequenceConflict and may be called again.
func (s *Store) DeleteSession(ctx context.Context, key persistence.SessionKey) error {
	if err := persistence.ValidateSessionKey(key); err != nil {
		return err
	}
	release, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer release()

	mkey, prefix := metaKey(key), messagePrefix(key)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var done bool
		var p pending
		err := s.updateRetrying(&p, func(txn *badger.Txn) error {
			meta, _, err := readMeta(txn, mkey)
			if err != nil {
				return err
			}
			batch := s.limits.deleteBatch
			keys := collectKeys(txn, prefix, batch+1)
			done = len(keys) <= batch
			var freed persistence.Usage
			for _, k := range keys[:min(len(keys), batch)] {
				n, _, err := valueLen(txn, k)
				if err != nil {
					return err
				}
				freed.StoredBytes -= storedSize(k, n)
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			if done && meta.FirstSeq != 0 {
				freed.Sessions = -1
			}
			if err := s.charge(&p, key.Tenant, freed, persistence.Quota{}); err != nil {
				return err
			}
			if done {
				return txn.Delete(mkey)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete session %s: %w", sessionName(key), err)
		}
		if done {
			return nil
		}
	}
}

// updateRetrying runs fn in an update transaction, again when Badger reports
// a conflict with a concurrent writer, up to conflictRetries times. fn must
// start from scratch on every call, and what it charges to p is settled
// after each attempt. A conflict that outlasts the retries is
// reported as ErrSequenceConflict: some writer kept getting there first.
func (s *Store) updateRetrying(p *pending, fn func(txn *badger.Txn) error) error {
	for attempt := 0; ; attempt++ {
		err := s.updateCharged(p, fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt == conflictRetries {
			return fmt.Errorf("%w: %d transaction conflicts in a row", persistence.ErrSequenceConflict, attempt+1)
		}
	}
}

// readMeta returns the session meta stored at key, and whether there is one.
// Reading it inside an update transaction is what makes that transaction
// conflict with any concurrent write to the session.
func readMeta(txn *badger.Txn, key []byte) (persistence.SessionMeta, bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return persistence.SessionMeta{}, false, nil
	}
	if err != nil {
		return persistence.SessionMeta{}, false, err
	}
	var meta persistence.SessionMeta
	err = item.Value(func(v []byte) error {
		meta, err = decodeMeta(v)
		return err
	})
	return meta, err == nil, err
}

// collectKeys returns copies of up to n keys under prefix, in order.
func collectKeys(txn *badger.Txn, prefix []byte, n int) [][]byte {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var keys [][]byte
	for it.Seek(prefix); it.ValidForPrefix(prefix) && len(keys) < n; it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys
}

// sessionName is the session's grain identity, tenant:session, for errors
// and logs.
func sessionName(k persistence.SessionKey) string { return k.Tenant + ":" + k.Session }
