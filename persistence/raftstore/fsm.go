package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// fsm is the state machine raft drives: a badgerstore.Store in
// Dir/fsm, written only by raft's FSM goroutine, in log order. Because every
// member runs the same badgerstore.Store code on the same commands in the same
// order, every member's copy ends up the same, and the conditional append is
// decided inside Apply: of two appends with the same expectedLast, the one
// later in the log fails with persistence.ErrSequenceConflict on every
// member.
//
// The Badger DB is opened with NoSync and thrown away at every Open: the raft
// log (fsynced) and raft's snapshots are the durable record, and raft
// rebuilds the state machine from them (restore the newest snapshot, then
// apply the log after it). Nothing here has to survive a crash.
//
// Snapshots are physical checkpoints of the Badger directory (see
// checkpoint.go): badgerstore.Store offers no consistent read of raw keys and
// values, and its public API cannot recreate a session whose oldest messages
// were trimmed, so a logical dump could not be restored. Taking one closes
// the DB for a moment (Snapshot runs on the FSM goroutine, so no Apply
// runs meanwhile, and reads wait on mu).
//
// Concurrency: raft calls Apply, Snapshot and Restore from its FSM goroutine
// only, never concurrently; Persist and Release run on another goroutine.
// Reads (query) run on callers' goroutines under mu's read lock.
type fsm struct {
	dir     string // the Badger DB
	workDir string // checkpoints waiting for Persist, restores being unpacked
	log     *slog.Logger

	// mu guards store. Readers and Apply hold it for reading while they use
	// the store; Snapshot and Restore hold it for writing while they close
	// and reopen it.
	mu sync.RWMutex
	// store is nil after the DB failed to reopen; the member then answers
	// ErrUnavailable until it is restarted (which rebuilds the DB).
	store *badgerstore.Store

	seq       atomic.Uint64 // names checkpoint and restore directories
	lastPause atomic.Int64  // how long the last Snapshot held applies and reads, in ns
}

var _ raft.FSM = (*fsm)(nil)

// stateMemTable is the memtable size of the state machine's Badger DB. A
// memtable is an arena allocated whole; Badger's 64 MiB ones made most of
// an idle node's heap. 16 MiB takes the largest write (a 1 MiB message
// and its keys) well inside Badger's transaction limit (15%).
const stateMemTable = 16 << 20

// openFSM removes whatever state machine a previous run left in root and
// opens an empty one.
func openFSM(root string, logger *slog.Logger) (*fsm, error) {
	f := &fsm{
		dir:     filepath.Join(root, "fsm"),
		workDir: filepath.Join(root, "fsm-work"),
		log:     logger,
	}
	for _, dir := range []string{f.dir, f.workDir} {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("clear state machine dir: %w", err)
		}
	}
	if err := os.MkdirAll(f.workDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state machine work dir: %w", err)
	}
	store, err := f.openStore()
	if err != nil {
		return nil, err
	}
	f.store = store
	return f, nil
}

func (f *fsm) openStore() (*badgerstore.Store, error) {
	return badgerstore.Open(badgerstore.Options{Dir: f.dir, NoSync: true, Logger: f.log, MemTableSize: stateMemTable})
}

// close closes the Badger DB; raft must be shut down first.
func (f *fsm) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.store == nil {
		return nil
	}
	err := f.store.Close()
	f.store = nil
	return err
}

// Apply implements raft.FSM: it carries out one committed command and
// returns its result (a result value) to the Apply future on the leader.
// It never looks at a caller's context or clock: each member must reach the
// same outcome.
func (f *fsm) Apply(l *raft.Log) any {
	c, err := decodeCommand(l.Data)
	if err != nil {
		f.log.Error("raft log entry cannot be decoded; every member skips it", "index", l.Index, "err", err)
		return result{err: fmt.Errorf("entry %d: %w", l.Index, err)}
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.store == nil {
		return result{err: errStateMachineDown}
	}
	r := execute(f.store, c)
	if r.err != nil && !errors.Is(r.err, persistence.ErrSequenceConflict) && !errors.Is(r.err, persistence.ErrInvalidKey) && !errors.Is(r.err, persistence.ErrQuotaExceeded) {
		// Either the caller's mistake (an append whose sequence numbers
		// do not follow expectedLast), which every member refuses alike,
		// or a failure of this member's disk, after which its copy may
		// differ from the others' until it is restarted. badgerstore.Store does
		// not tell the two apart (docs/durability.md, What is left).
		f.log.Warn("committed command failed", "op", c.op.String(), "index", l.Index, "err", r.err)
	}
	return r
}

// errStateMachineDown: the state machine's DB could not be reopened.
var errStateMachineDown = fmt.Errorf("%w: state machine closed after a failure; restart the member", ErrUnavailable)

// execute carries out c against store.
func execute(store *badgerstore.Store, c command) result {
	ctx := context.Background() // a command always runs to its end, on every member
	var r result
	switch c.op {
	case opAppend:
		r.meta, r.err = store.Append(ctx, c.session, c.expectedLast, c.msgs, persistence.AppendOptions{MaxMessages: c.maxMessages, Quota: c.quota})
	case opDeleteSession:
		r.err = store.DeleteSession(ctx, c.session)
	case opPut:
		r.err = store.Put(ctx, c.kv, c.value, c.expiresAt, persistence.PutOptions{Quota: c.quota})
	case opDelete:
		r.err = store.Delete(ctx, c.kv)
	case opSweep:
		if !c.leaderNow.IsZero() && c.now.After(c.leaderNow.Add(MaxSweepLead)) {
			// Decided from the command alone, so every member refuses
			// alike and the copies stay the same.
			r.err = fmt.Errorf("%w: sweep at %s, leader's clock %s", ErrSweepAhead, c.now.UTC().Format(time.RFC3339), c.leaderNow.UTC().Format(time.RFC3339))
			break
		}
		r.stats, r.err = store.Sweep(ctx, c.now, func(tenant string) time.Duration { return c.retention[tenant] })
	case opDeleteTenant:
		r.err = store.DeleteTenant(ctx, c.tenant)
	default:
		r.err = fmt.Errorf("unknown %s", c.op)
	}
	return r
}

// query answers q from this member's copy. The caller decides whether that
// copy is recent enough (read.go).
func (f *fsm) query(ctx context.Context, q query) result {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.store == nil {
		return result{err: errStateMachineDown}
	}
	var r result
	switch q.kind {
	case queryMeta:
		r.meta, r.err = f.store.Meta(ctx, q.session)
	case queryPage:
		r.msgs, r.err = f.store.Page(ctx, q.session, q.before, q.limit, q.notBefore)
	case queryGet:
		r.value, r.exp, r.found, r.err = f.store.Get(ctx, q.kv, q.now)
	default:
		r.err = fmt.Errorf("unknown query %d", q.kind)
	}
	return r
}

// usage returns what tenant holds in this member's copy.
func (f *fsm) usage(tenant string) (persistence.Usage, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.store == nil {
		return persistence.Usage{}, errStateMachineDown
	}
	return f.store.Usage(tenant)
}

// tenants returns every tenant that has data in this member's copy.
func (f *fsm) tenants(ctx context.Context) ([]string, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.store == nil {
		return nil, errStateMachineDown
	}
	var out []string
	seen := make(map[string]bool)
	err := f.store.ScanKeys(ctx, "", func(key []byte) error {
		for i, b := range key {
			if b != ':' {
				continue
			}
			if !seen[string(key[:i])] {
				seen[string(key[:i])] = true
				out = append(out, string(key[:i]))
			}
			break
		}
		return nil
	})
	return out, err
}

// scanKeys calls fn with every key of this member's copy, for tests that
// compare copies.
func (f *fsm) scanKeys(ctx context.Context, fn func(key []byte) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.store == nil {
		return errStateMachineDown
	}
	return f.store.ScanKeys(ctx, "", fn)
}

// Snapshot implements raft.FSM: it checkpoints the Badger directory while
// no Apply can run, and leaves the copying into raft's snapshot store to
// Persist.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.store == nil {
		return nil, errStateMachineDown
	}
	start := time.Now()
	if err := f.store.Close(); err != nil {
		f.log.Warn("closing the state machine for a snapshot failed", "err", err)
	}
	dst := filepath.Join(f.workDir, fmt.Sprintf("snapshot-%d", f.seq.Add(1)))
	cpErr := checkpoint(f.dir, dst)
	store, err := f.openStore()
	if err != nil {
		f.store = nil
		f.log.Error("state machine could not be reopened after a snapshot; restart the member", "err", err)
		_ = os.RemoveAll(dst)
		return nil, fmt.Errorf("reopen state machine: %w", err)
	}
	f.store = store
	if cpErr != nil {
		_ = os.RemoveAll(dst)
		return nil, fmt.Errorf("checkpoint state machine: %w", cpErr)
	}
	took := time.Since(start)
	f.lastPause.Store(int64(took))
	f.log.Debug("state machine checkpointed", "took", took)
	return &fsmSnapshot{dir: dst}, nil
}

// lastCheckpoint returns how long the last Snapshot kept applies and reads
// waiting.
func (f *fsm) lastCheckpoint() time.Duration { return time.Duration(f.lastPause.Load()) }

// Restore implements raft.FSM: it replaces this member's copy with the
// snapshot's. Raft closes rc.
func (f *fsm) Restore(rc io.ReadCloser) error {
	start := time.Now()
	tmp := filepath.Join(f.workDir, fmt.Sprintf("restore-%d", f.seq.Add(1)))
	if err := readCheckpoint(rc, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("unpack snapshot: %w", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.store != nil {
		if err := f.store.Close(); err != nil {
			f.log.Warn("closing the state machine for a restore failed", "err", err)
		}
		f.store = nil
	}
	// If this member dies before the rename, the next Open starts from an
	// empty state machine anyway.
	if err := os.RemoveAll(f.dir); err != nil {
		return fmt.Errorf("remove old state machine: %w", err)
	}
	if err := os.Rename(tmp, f.dir); err != nil {
		return fmt.Errorf("move restored state machine in place: %w", err)
	}
	store, err := f.openStore()
	if err != nil {
		f.log.Error("restored state machine could not be opened; restart the member", "err", err)
		return fmt.Errorf("open restored state machine: %w", err)
	}
	f.store = store
	f.log.Debug("state machine restored from a snapshot", "took", time.Since(start))
	return nil
}

// fsmSnapshot is a checkpoint directory waiting to be written into raft's
// snapshot store.
type fsmSnapshot struct{ dir string }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeCheckpoint(sink, s.dir); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() { _ = os.RemoveAll(s.dir) }
