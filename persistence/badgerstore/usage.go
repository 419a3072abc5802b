package badgerstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/parley-chat/parley/persistence"
)

// # Quotas and usage
//
// The store keeps each tenant's usage (persistence.Usage) in memory, in a
// usageBook, and changes it with every write that changes what the tenant
// holds: a write's growth is reserved inside its transaction, before the
// commit, and refused with a *persistence.QuotaError when the write's
// quota does not admit it; what a write gives back is released once it
// has committed. So concurrent writes of one tenant never pass its quota
// together, and a failed commit hands its reservation back.
//
// The book is not written with every transaction (one key per tenant
// would make all of a tenant's writes conflict with each other): Close
// writes it under usageKey, and Open reads it back and deletes it, so a
// store that was not closed (a crash) has no book and Open rebuilds it by
// reading every key once. The replicated store's state machine closes its
// DB for every snapshot, so each snapshot carries the book of the data it
// holds.
//
// Sizes are the bytes stored: the key plus the encoded value.

// usageKey holds the usage book of a closed store. It starts with NUL,
// which no tenant id can, so no tenant prefix, scan or sweep meets it.
var usageKey = []byte("\x00usage")

// usageBook is every tenant's usage. Safe for concurrent use.
type usageBook struct {
	mu sync.Mutex
	by map[string]persistence.Usage
}

func (b *usageBook) get(tenant string) persistence.Usage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.by[tenant]
}

// reserve adds grow to tenant's usage if q admits it.
func (b *usageBook) reserve(tenant string, grow persistence.Usage, q persistence.Quota) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := q.Check(b.by[tenant], grow); err != nil {
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
	b.addLocked(tenant, grow)
	return nil
}

func (b *usageBook) add(tenant string, d persistence.Usage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addLocked(tenant, d)
}

func (b *usageBook) addLocked(tenant string, d persistence.Usage) {
	u := b.by[tenant].Add(d)
	if u == (persistence.Usage{}) {
		delete(b.by, tenant)
		return
	}
	b.by[tenant] = u
}

func (b *usageBook) drop(tenant string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.by, tenant)
}

// Usage implements persistence.UsageReader.
func (s *Store) Usage(tenant string) (persistence.Usage, error) {
	if err := persistence.ValidateTenant(tenant); err != nil {
		return persistence.Usage{}, err
	}
	return s.usage.get(tenant), nil
}

var _ persistence.UsageReader = (*Store)(nil)

// pending is what one write operation reserved and gave back, per
// tenant, until it is settled.
type pending struct {
	grown, shrunk map[string]persistence.Usage
}

// charge reserves the growth of d for tenant under q and remembers what
// d gives back.
func (s *Store) charge(p *pending, tenant string, d persistence.Usage, q persistence.Quota) error {
	if d == (persistence.Usage{}) {
		return nil
	}
	grow, shrink := d.Growth()
	if err := s.usage.reserve(tenant, grow, q); err != nil {
		return err
	}
	if p.grown == nil {
		p.grown, p.shrunk = make(map[string]persistence.Usage), make(map[string]persistence.Usage)
	}
	p.grown[tenant] = p.grown[tenant].Add(grow)
	p.shrunk[tenant] = p.shrunk[tenant].Add(shrink)
	return nil
}

// settle ends a transaction's charges: a committed one (err == nil) keeps
// its growth and gives back what it freed, a failed one returns its
// reservations.
func (s *Store) settle(p *pending, err error) {
	if err != nil {
		for tenant, g := range p.grown {
			s.usage.add(tenant, g.Neg())
		}
	} else {
		for tenant, sh := range p.shrunk {
			s.usage.add(tenant, sh)
		}
	}
	*p = pending{}
}

// updateCharged runs fn in an update transaction and settles what it
// charged to p.
func (s *Store) updateCharged(p *pending, fn func(txn *badger.Txn) error) error {
	err := s.db.Update(fn)
	s.settle(p, err)
	return err
}

// storedSize is what one stored key and value count against StoredBytes.
func storedSize(key []byte, valueLen int) int64 { return int64(len(key) + valueLen) }

// valueLen returns the length of the value stored at key, and whether
// there is one.
func valueLen(txn *badger.Txn, key []byte) (int, bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var n int
	err = item.Value(func(v []byte) error { n = len(v); return nil })
	return n, err == nil, err
}

// cacheTenant returns the tenant of a key of a SpaceCache entry; ok is
// false for every other key.
func cacheTenant(key []byte) (tenant string, ok bool) {
	tenant, kind, ok := splitKey(key)
	if !ok || kind != 'k' || !bytes.HasPrefix(key[len(tenant)+3:], []byte(persistence.SpaceCache+":")) {
		return "", false
	}
	return tenant, true
}

// loadUsage fills the book: from usageKey when the store was closed
// cleanly (deleting it, so that a crash from now on makes the next Open
// count again), else by reading every key.
func (s *Store) loadUsage() error {
	s.usage.by = make(map[string]persistence.Usage)
	var saved []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(usageKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		saved, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("read usage: %w", err)
	}
	if saved != nil {
		if err := json.Unmarshal(saved, &s.usage.by); err == nil {
			return s.db.Update(func(txn *badger.Txn) error { return txn.Delete(usageKey) })
		}
		s.log.Warn("stored usage unreadable; counting it again", "err", err)
	}
	s.usage.by, err = countUsage(s.db)
	return err
}

// countUsage returns every tenant's usage as the keys stored in db add
// up.
func countUsage(db *badger.DB) (map[string]persistence.Usage, error) {
	by := make(map[string]persistence.Usage)
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := item.Key()
			tenant, kind, ok := splitKey(key)
			if !ok {
				continue
			}
			var d persistence.Usage
			err := item.Value(func(v []byte) error {
				switch {
				case kind == 'k':
					if _, cache := cacheTenant(key); cache {
						d = persistence.Usage{StoredBytes: storedSize(key, len(v)), CacheEntries: 1}
					}
				case kind == 's':
					prefix, isMessage := splitSessionKey(key, tenant)
					switch {
					case prefix == nil:
					case isMessage:
						d.StoredBytes = storedSize(key, len(v))
					default:
						meta, err := decodeMeta(v)
						if err != nil {
							return err
						}
						if meta.FirstSeq != 0 {
							d.Sessions = 1
						}
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("count usage of tenant %s: %w", tenant, err)
			}
			if d != (persistence.Usage{}) {
				by[tenant] = by[tenant].Add(d)
			}
		}
		return nil
	})
	return by, err
}

// saveUsage writes the book under usageKey, for the next Open.
func (s *Store) saveUsage() error {
	s.usage.mu.Lock()
	b, err := json.Marshal(s.usage.by)
	s.usage.mu.Unlock()
	if err != nil {
		return err
	}
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(usageKey, b) })
}
