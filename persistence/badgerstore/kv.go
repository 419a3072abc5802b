package badgerstore

import (
	"github.com/parley-chat/parley/persistence"

	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Get implements KVStore. An entry past its expiry but not yet swept is a
// miss, exactly like one that was never written.
func (s *Store) Get(ctx context.Context, key persistence.KVKey, now time.Time) ([]byte, time.Time, bool, error) {
	if err := persistence.ValidateKVKey(key); err != nil {
		return nil, time.Time{}, false, err
	}
	release, err := s.enter(ctx)
	if err != nil {
		return nil, time.Time{}, false, err
	}
	defer release()

	var (
		value     []byte
		expiresAt time.Time
		found     bool
	)
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(kvKey(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			stored, exp, err := decodeKV(v)
			if err != nil {
				return err
			}
			if expired(exp, now) {
				return nil
			}
			// v is only valid inside this callback; the caller owns the copy.
			value, expiresAt, found = append([]byte{}, stored...), exp, true
			return nil
		})
	})
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("get %s %s: %w", key.Tenant, key.Space, err)
	}
	return value, expiresAt, found, nil
}

// Put implements KVStore. encodeKV copies value, so the caller may reuse it.
// A cache entry reads the value it replaces, for its size, so two Puts of
// one key conflict; the loser is tried again.
func (s *Store) Put(ctx context.Context, key persistence.KVKey, value []byte, expiresAt time.Time, opts persistence.PutOptions) error {
	return s.writeKV(ctx, "put", key, func(txn *badger.Txn, k []byte, p *pending) error {
		v := encodeKV(value, expiresAt)
		if key.Space == persistence.SpaceCache {
			old, found, err := valueLen(txn, k)
			if err != nil {
				return err
			}
			d := persistence.Usage{StoredBytes: storedSize(k, len(v))}
			if found {
				d.StoredBytes -= storedSize(k, old)
			} else {
				d.CacheEntries = 1
			}
			if err := s.charge(p, key.Tenant, d, opts.Quota); err != nil {
				return err
			}
		}
		return txn.Set(k, v)
	})
}

// Delete implements KVStore.
func (s *Store) Delete(ctx context.Context, key persistence.KVKey) error {
	return s.writeKV(ctx, "delete", key, func(txn *badger.Txn, k []byte, p *pending) error {
		if key.Space == persistence.SpaceCache {
			old, found, err := valueLen(txn, k)
			if err != nil {
				return err
			}
			if found {
				if err := s.charge(p, key.Tenant, persistence.Usage{StoredBytes: -storedSize(k, old), CacheEntries: -1}, persistence.Quota{}); err != nil {
					return err
				}
			}
		}
		return txn.Delete(k)
	})
}

// writeKV validates key and applies one write to it in its own transaction.
func (s *Store) writeKV(ctx context.Context, op string, key persistence.KVKey, write func(txn *badger.Txn, k []byte, p *pending) error) error {
	if err := persistence.ValidateKVKey(key); err != nil {
		return err
	}
	release, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer release()

	var p pending
	if err := s.updateRetrying(&p, func(txn *badger.Txn) error { return write(txn, kvKey(key), &p) }); err != nil {
		return fmt.Errorf("%s %s %s: %w", op, key.Tenant, key.Space, err)
	}
	return nil
}
