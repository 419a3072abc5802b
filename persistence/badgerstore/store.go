// Package badgerstore is the persistence.Store on one Badger v4 database: what
// a node runs with --store local, and what every member of the replicated
// store (persistence/raftstore) applies its log to.
package badgerstore

// # Badger key layout
//
// Every key starts with "<tenant>:", and tenant ids never contain ':', so a
// tenant's data is exactly one key prefix. The second part names the kind of
// data, so no KV key can ever alias a session key, whatever its space or key
// text:
//
//	<tenant>:s:<session>:m              session meta (LastSeq, FirstSeq)
//	<tenant>:s:<session>:q:<seq>        one message; <seq> is 8-byte big-endian,
//	                                    so a session's messages sort by sequence
//	                                    and a newest-first page is one reverse
//	                                    prefix scan
//	<tenant>:k:<space>:<key>            one KV entry: expiresAt and the value
//
// <session> is a canonical lowercase UUID (36 bytes), <space> is [a-z]{1,32}
// and <key> is 1 to 512 bytes without NUL (it may hold ':' and '/'; the space
// ends at the first ':' after "k:", so it cannot be forged). Values are
// records of persistence/record (record.Meta, record.Message without its
// Seq, record.KVEntry), the encoding the replicated store's commands use
// too. Values written by earlier versions are hand-written formats 1 and 2
// and still read (codec.go). Times are stored in UTC and carry no monotonic
// reading.
//
// Expiry is the store's own: a KV value carries its expiresAt and Get compares
// it with the caller's now. Badger's TTL is not used, because it follows the
// wall clock while Parley's time comes from the caller (a fake clock in
// tests); expired entries are removed by Sweep.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/skl"

	"github.com/parley-chat/parley/persistence"
)

// DefaultGCInterval is how often Store reclaims value-log space when
// Options.GCInterval is zero. Values above Badger's value threshold
// (1 MiB) live in the value log, so Parley's small values rarely need it;
// five minutes keeps the cost invisible.
const DefaultGCInterval = 5 * time.Minute

// gcDiscardRatio is the share of stale data a value-log file must hold before
// a GC round rewrites it; Badger's documentation recommends 0.5.
const gcDiscardRatio = 0.5

// batchLimits bound single Badger transactions. Badger refuses a transaction
// larger than 15% of a memtable (ErrTxnTooBig: about 100,000 small entries
// with the default 64 MiB memtable); these stay well below that, so that
// deleting a huge session or catching up on a lowered MaxMessages takes
// several transactions instead of failing. Tests shrink them to reach the
// batch boundaries with little data.
type batchLimits struct {
	// deleteBatch bounds the deletes of one DeleteSession or Sweep
	// transaction, and the pieces of work one Sweep chunk collects.
	deleteBatch int
	// trimPerAppend bounds how many old messages one Append deletes to
	// honour MaxMessages. An append normally trims as many messages as it
	// adds; only a cap lowered by more than this leaves extra messages,
	// which the following appends remove.
	trimPerAppend uint64
	// sweepScanChunk bounds the keys one Sweep read transaction visits, so
	// no read snapshot stays open for a whole sweep and ctx is checked
	// between chunks.
	sweepScanChunk int
}

var defaultLimits = batchLimits{
	deleteBatch:    10_000,
	trimPerAppend:  10_000,
	sweepScanChunk: 50_000,
}

// smallMemTable is the memtable size of a Small store.
const smallMemTable = 4 << 20

// maxEntryBytes bounds what one delete adds to a Badger transaction: the
// longest key (tenant, space and a 512-byte KV key) with Badger's
// version and metas, rounded up.
const maxEntryBytes = 1024

// limitsFor returns the batch limits of a store whose memtables are
// memTable bytes: defaultLimits, with deletes cut so that no transaction
// reaches half of what Badger accepts (15% of a memtable, and that over
// the size of a skiplist node in entries).
func limitsFor(memTable int64) batchLimits {
	l := defaultLimits
	maxBatch := memTable * 15 / 100
	n := int(min(maxBatch/maxEntryBytes, maxBatch/int64(skl.MaxNodeSize)) / 2)
	l.deleteBatch = min(l.deleteBatch, n)
	l.trimPerAppend = min(l.trimPerAppend, uint64(n))
	return l
}

// conflictRetries bounds how often DeleteSession and Sweep retry a
// transaction that a concurrent Append or Put invalidated.
const conflictRetries = 16

// Options configures Open. The zero value of every field but Dir
// is the production choice.
type Options struct {
	// Dir is the data directory (--data-dir). It is created if missing and
	// locked while the store is open. Required unless InMemory.
	Dir string
	// InMemory keeps everything in memory and writes nothing to disk, for
	// tests. Dir must be empty.
	InMemory bool
	// NoSync acknowledges writes before they reach the disk. Off by default:
	// every Append, Put and delete returns only after an fsync. A SIGKILL
	// alone loses nothing either way (the kernel still holds the written
	// pages), but a kernel crash or power loss would lose acknowledged
	// messages under NoSync.
	NoSync bool
	// Logger receives the store's and Badger's own lines (Badger's
	// Info and Debug lines at Debug). Nil means slog.Default().
	Logger *slog.Logger
	// GCInterval is how often value-log garbage collection runs. Zero means
	// DefaultGCInterval. Unused when InMemory.
	GCInterval time.Duration
	// Small sizes Badger for a few hundred thousand small entries that
	// live minutes, the rate-limit counter store, instead of Badger's
	// defaults, which suit the sessions: 4 MiB memtables (not 64 MiB),
	// at most 2 in memory (not 5), a 4 MiB block cache (not 256 MiB),
	// and two compactors (Badger's minimum, not 4); values over 64 KiB
	// (not 1 MiB) go to the value log. A memtable is an arena allocated whole,
	// so each default one is 64 MiB more live heap and, through the
	// collector's pacing, as much again of garbage the node keeps
	// resident.
	Small bool
	// MemTableSize, when not zero (and not Small), is the size of each
	// memtable instead of Badger's 64 MiB, with at most 3 in memory and a
	// block cache of twice its size. The replicated store's state machine
	// uses 16 MiB (raftstore): a node's baseline heap, and with it the
	// garbage the collector lets accumulate, shrinks by about 100 MiB.
	// It must leave room for the largest write: 15% of it is Badger's
	// transaction limit.
	MemTableSize int64

	// afterGC, when set (by tests), is called after every GC round.
	afterGC func()
}

// Validate reports the first field that makes o unusable.
func (o Options) Validate() error {
	switch {
	case o.InMemory && o.Dir != "":
		return errors.New("persistence: Options.Dir must be empty when InMemory is set")
	case !o.InMemory && o.Dir == "":
		return errors.New("persistence: Options.Dir is required unless InMemory is set")
	case o.GCInterval < 0:
		return fmt.Errorf("persistence: Options.GCInterval is negative (%s)", o.GCInterval)
	}
	return nil
}

// Store is the Store of a single node: one Badger DB holding every
// tenant's sessions and KV entries. It is safe for concurrent use.
//
// Conditional appends rest on Badger's optimistic transactions: every write
// that touches a session reads the session's meta key in the same
// transaction, so of two transactions that both saw the same LastSeq only the
// first to commit succeeds; the other gets badger.ErrConflict, which the
// store reports as ErrSequenceConflict.
type Store struct {
	db  *badger.DB
	log *slog.Logger

	// mu guards closed. Every method holds it for reading while it uses db,
	// so Close (which takes it for writing) never closes the DB under a
	// running transaction.
	mu     sync.RWMutex
	closed bool

	limits  batchLimits
	usage   usageBook     // every tenant's usage (usage.go)
	stop    chan struct{} // closed by Close; stops the GC loop
	gcDone  chan struct{} // closed when the GC loop has returned
	afterGC func()

	// appendRaced, when set (by tests), runs inside Append's transaction
	// after the LastSeq check, where a concurrent writer would strike.
	appendRaced func()
}

var _ persistence.Store = (*Store)(nil)

// Open opens (creating if needed) the Badger DB described by opts and
// starts its value-log GC loop. A data directory already open in another
// process (or in this one) is refused with an error that says so.
func Open(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	interval := opts.GCInterval
	if interval == 0 {
		interval = DefaultGCInterval
	}

	bopts := badger.DefaultOptions(opts.Dir).
		WithInMemory(opts.InMemory).
		WithSyncWrites(!opts.NoSync).
		WithLogger(badgerLogger{logger.With("component", "badger")})
	limits := defaultLimits
	if opts.Small {
		bopts = bopts.
			WithMemTableSize(smallMemTable).
			WithNumMemtables(2).
			WithNumLevelZeroTables(2).
			WithNumLevelZeroTablesStall(8).
			WithBlockCacheSize(4 << 20).
			WithNumCompactors(2).         // Badger's minimum
			WithValueThreshold(64 << 10). // under a batch's 15% of a memtable
			WithValueLogFileSize(64 << 20)
		limits = limitsFor(smallMemTable)
	} else if opts.MemTableSize > 0 {
		bopts = bopts.
			WithMemTableSize(opts.MemTableSize).
			WithNumMemtables(3).
			WithBlockCacheSize(2 * opts.MemTableSize)
		limits = limitsFor(opts.MemTableSize)
	}
	db, err := badger.Open(bopts)
	if err != nil {
		// Badger reports a held flock as "Cannot acquire directory lock on
		// ... Another process is using this Badger database".
		if strings.Contains(err.Error(), "Another process is using this Badger database") {
			return nil, fmt.Errorf("data dir %s is in use by another parley process: %w", opts.Dir, err)
		}
		return nil, fmt.Errorf("open badger in %s: %w", opts.Dir, err)
	}

	s := &Store{
		db:      db,
		log:     logger,
		limits:  limits,
		stop:    make(chan struct{}),
		gcDone:  make(chan struct{}),
		afterGC: opts.afterGC,
	}
	if err := s.loadUsage(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open badger in %s: %w", opts.Dir, err)
	}
	if opts.InMemory {
		close(s.gcDone) // there is no value log to collect
	} else {
		go s.gcLoop(interval)
	}
	return s, nil
}

// Close stops the GC loop and closes the DB, waiting for running calls to
// finish first. It is safe to call more than once; later calls return nil.
// Every other method returns ErrClosed afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	close(s.stop)
	<-s.gcDone
	if err := s.saveUsage(); err != nil {
		// The next Open counts the usage again.
		s.log.Warn("saving usage failed", "err", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close badger: %w", err)
	}
	return nil
}

// enter checks ctx and the closed flag and holds the store open until the
// returned release is called.
func (s *Store) enter(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, persistence.ErrClosed
	}
	return s.mu.RUnlock, nil
}

// gcLoop runs value-log GC every interval until Close.
func (s *Store) gcLoop(interval time.Duration) {
	defer close(s.gcDone)
	CollectValueLogs(s.db, interval, s.stop, s.log, s.afterGC)
}

// CollectValueLogs runs value-log GC on db every interval until stop is
// closed, for every Badger DB Parley opens, calling afterRound (if set)
// after each round. A round repeats RunValueLogGC until a call rewrites
// nothing, as Badger's documentation advises, because one call rewrites
// at most one file; a failure is logged at Warn.
func CollectValueLogs(db *badger.DB, interval time.Duration, stop <-chan struct{}, logger *slog.Logger, afterRound func()) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			collectValueLog(db, stop, logger)
			if afterRound != nil {
				afterRound()
			}
		}
	}
}

func collectValueLog(db *badger.DB, stop <-chan struct{}, logger *slog.Logger) {
	for rewrites := 0; ; rewrites++ {
		select {
		case <-stop:
			return
		default:
		}
		err := db.RunValueLogGC(gcDiscardRatio)
		switch {
		case err == nil:
			continue
		case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
			if rewrites > 0 {
				logger.Debug("value log GC done", "rewrites", rewrites)
			}
		default:
			logger.Warn("value log GC failed", "rewrites", rewrites, "err", err)
		}
		return
	}
}

// Logger routes Badger's printf-style logger into slog, for every
// Badger DB Parley opens. Badger logs every table opened and every
// compaction at Info; those become Debug so that a healthy node is quiet.
func Logger(logger *slog.Logger) badger.Logger { return badgerLogger{logger} }

type badgerLogger struct{ logger *slog.Logger }

func (l badgerLogger) Errorf(f string, args ...any)   { l.log(slog.LevelError, f, args) }
func (l badgerLogger) Warningf(f string, args ...any) { l.log(slog.LevelWarn, f, args) }
func (l badgerLogger) Infof(f string, args ...any)    { l.log(slog.LevelDebug, f, args) }
func (l badgerLogger) Debugf(f string, args ...any)   { l.log(slog.LevelDebug, f, args) }

func (l badgerLogger) log(level slog.Level, f string, args []any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, level) {
		return // Badger's debug lines are many; skip formatting them
	}
	l.logger.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(f, args...)))
}

var _ badger.Logger = badgerLogger{}
