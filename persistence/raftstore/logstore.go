package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"

	"github.com/parley-chat/parley/persistence/badgerstore"
)

// logStore is raft's LogStore and StableStore on one Badger DB written with
// SyncWrites: every StoreLogs and Set returns after an fsync, which is what
// lets the leader count an entry as stored on its disk and a follower answer
// that it has it. It is the durable record of the member; the state
// machine's own Badger DB is rebuilt from it (see fsm.go).
//
// Keys:
//
//	l<index>   one log entry; <index> is 8-byte big-endian, so entries sort
//	           by index and FirstIndex/LastIndex are one seek each
//	s<key>     one stable-store value (raft's current term, last vote…)
//
// A log value is format byte 1, then term, type, data, extensions and
// appendedAt, each varint-framed (see encodeLog).
//
// Badger is safe for concurrent use, and so is logStore.
type logStore struct {
	db     *badger.DB
	log    *slog.Logger
	stop   chan struct{}
	gcDone chan struct{}
}

var (
	_ raft.LogStore    = (*logStore)(nil)
	_ raft.StableStore = (*logStore)(nil)
)

const (
	logPrefix    = 'l'
	stablePrefix = 's'
	logFormatV1  = 1

	// logGCInterval is how often the value log is collected. Only entries
	// above Badger's value threshold (1 MiB) live there, so it is rarely
	// needed; the interval matches badgerstore.DefaultGCInterval.
	logGCInterval = 5 * time.Minute
)

// openLogStore opens (creating if needed) the log DB in dir.
func openLogStore(dir string, logger *slog.Logger) (*logStore, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		// The log is read back mostly from raft's LogCache and the
		// memtable; a small block cache and memtable keep a member's
		// footprint down (the state machine has its own Badger DB). A
		// memtable is an arena allocated whole that the Go collector
		// counts as live heap, so its size is also room the collector
		// leaves for garbage: 32 MiB → 8 MiB cut an idle node's live heap
		// by 24 MiB. The largest entry (a 1 MiB message) still fits
		// Badger's transaction limit (15%: 1.2 MiB); write splits batches.
		WithMemTableSize(8 << 20).
		WithBlockCacheSize(16 << 20).
		WithLogger(badgerstore.Logger(logger))
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open raft log in %s: %w", dir, err)
	}
	s := &logStore{db: db, log: logger, stop: make(chan struct{}), gcDone: make(chan struct{})}
	go s.gcLoop()
	return s, nil
}

// Close stops the GC loop and closes the DB. Raft must be shut down first.
func (s *logStore) Close() error {
	close(s.stop)
	<-s.gcDone
	return s.db.Close()
}

func (s *logStore) gcLoop() {
	defer close(s.gcDone)
	badgerstore.CollectValueLogs(s.db, logGCInterval, s.stop, s.log, nil)
}

func logKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{logPrefix}, index)
}

// FirstIndex implements raft.LogStore.
func (s *logStore) FirstIndex() (uint64, error) {
	return s.edgeIndex(false)
}

// LastIndex implements raft.LogStore.
func (s *logStore) LastIndex() (uint64, error) {
	return s.edgeIndex(true)
}

// edgeIndex returns the index of the first (or, reverse, the last) entry, 0
// when the log is empty.
func (s *logStore) edgeIndex(reverse bool) (uint64, error) {
	var index uint64
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := []byte{logPrefix}
		it := txn.NewIterator(badger.IteratorOptions{Reverse: reverse, Prefix: prefix})
		defer it.Close()
		seek := prefix
		if reverse {
			seek = logKey(^uint64(0))
		}
		it.Seek(seek)
		if !it.ValidForPrefix(prefix) {
			return nil
		}
		key := it.Item().Key()
		if len(key) != 9 {
			return fmt.Errorf("raft log key of %d bytes", len(key))
		}
		index = binary.BigEndian.Uint64(key[1:])
		return nil
	})
	return index, err
}

// GetLog implements raft.LogStore.
func (s *logStore) GetLog(index uint64, out *raft.Log) error {
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(logKey(index))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return raft.ErrLogNotFound
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if err := decodeLog(v, out); err != nil {
				return fmt.Errorf("raft log entry %d: %w", index, err)
			}
			out.Index = index
			return nil
		})
	})
}

// StoreLog implements raft.LogStore.
func (s *logStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

// StoreLogs implements raft.LogStore. The entries go in as few transactions
// as Badger's size limit allows, in index order, so a crash leaves a prefix
// of them.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	return s.write(len(logs), func(i int, txn *badger.Txn) error {
		return txn.Set(logKey(logs[i].Index), encodeLog(logs[i]))
	})
}

// DeleteRange implements raft.LogStore: it removes entries min..max
// inclusive (the oldest after a snapshot, the newest when a follower's
// log conflicts with the leader's).
func (s *logStore) DeleteRange(lo, hi uint64) error {
	if lo > hi {
		return nil
	}
	// Collect the keys first: the range may be sparse or partly missing.
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := []byte{logPrefix}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		end := logKey(hi)
		for it.Seek(logKey(lo)); it.ValidForPrefix(prefix); it.Next() {
			key := it.Item().Key()
			if bytes.Compare(key, end) > 0 {
				break
			}
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete raft log %d..%d: %w", lo, hi, err)
	}
	return s.write(len(keys), func(i int, txn *badger.Txn) error { return txn.Delete(keys[i]) })
}

// write runs n writes in update transactions, starting a new transaction
// whenever Badger finds the current one too big.
func (s *logStore) write(n int, op func(i int, txn *badger.Txn) error) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for i := 0; i < n; i++ {
		err := op(i, txn)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return err
			}
			txn = s.db.NewTransaction(true)
			err = op(i, txn)
		}
		if err != nil {
			return err
		}
	}
	return txn.Commit()
}

// Set implements raft.StableStore.
func (s *logStore) Set(key, val []byte) error {
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(append([]byte{stablePrefix}, key...), bytes.Clone(val))
	})
}

// Get implements raft.StableStore: a missing key reads as an empty value.
func (s *logStore) Get(key []byte) ([]byte, error) {
	var val []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append([]byte{stablePrefix}, key...))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		return err
	})
	if val == nil {
		val = []byte{}
	}
	return val, err
}

// SetUint64 implements raft.StableStore.
func (s *logStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore: a missing key reads as 0.
func (s *logStore) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil || len(val) == 0 {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("stable value %q of %d bytes, want 8", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

func encodeLog(l *raft.Log) []byte {
	var e encoder
	e.Grow(32 + len(l.Data) + len(l.Extensions))
	e.Byte(logFormatV1)
	e.Uvarint(l.Term)
	e.Byte(byte(l.Type))
	e.Bytes(l.Data)
	e.Bytes(l.Extensions)
	e.Time(l.AppendedAt)
	return e.Encoded()
}

// decodeLog fills out from v; the slices it sets are copies, since Badger
// reuses v after the call.
func decodeLog(v []byte, out *raft.Log) error {
	d := newDecoder(v)
	if d.Byte() != logFormatV1 {
		return errors.New("unknown raft log format")
	}
	out.Term = d.Uvarint()
	out.Type = raft.LogType(d.Byte())
	out.Data = bytes.Clone(d.Bytes())
	out.Extensions = bytes.Clone(d.Bytes())
	out.AppendedAt = d.Time()
	return d.Finish()
}
