package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/parley-chat/parley/persistence/badgerstore"
)

// # Reading a member's own disk

// DiskCopy is what one member's disk holds, rebuilt without raft: read it
// through the embedded badgerstore.Store (Page, Meta, Get…), then Close it.
type DiskCopy struct {
	*badgerstore.Store
	machine *fsm
	root    string
}

// ReadDisk rebuilds the state held on the disk of the member whose
// Config.Dir is dir, alone: it restores the member's newest snapshot, then
// applies every command of its log after it, as a restart would, but
// without starting raft, reaching any peer or needing a quorum. The member
// must not be running (its log DB is locked while it is); dir is not
// written, beyond what opening the log DB itself does. The copy lives in a
// temporary directory that Close removes.
//
// It answers "what survives on this machine": after a crash of the whole
// cluster, or to check that a member's disk holds every write it
// acknowledged (tests/crash_test.go). Every entry in the log is applied,
// as hashicorp/raft's RecoverCluster does, so the copy may also hold a
// write the member logged but never knew to be committed, one whose client
// was told it failed.
func ReadDisk(dir string, logger *slog.Logger) (_ *DiskCopy, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft")); err != nil {
		return nil, fmt.Errorf("read raft member disk %s: %w", dir, err)
	}
	root, err := os.MkdirTemp("", "parley-raft-disk-")
	if err != nil {
		return nil, err
	}
	var machine *fsm
	defer func() {
		if err != nil {
			if machine != nil {
				_ = machine.close()
			}
			_ = os.RemoveAll(root)
		}
	}()
	if machine, err = openFSM(root, logger.With("component", "raft-fsm")); err != nil {
		return nil, err
	}

	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetained, newHCLog(logger, "raft-snapshot"))
	if err != nil {
		return nil, fmt.Errorf("open raft snapshots in %s: %w", dir, err)
	}
	var after uint64 // the last index the snapshot holds
	metas, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("list raft snapshots in %s: %w", dir, err)
	}
	if len(metas) > 0 {
		_, rc, err := snaps.Open(metas[0].ID) // newest first
		if err != nil {
			return nil, fmt.Errorf("open snapshot %s: %w", metas[0].ID, err)
		}
		err = machine.Restore(rc)
		_ = rc.Close()
		if err != nil {
			return nil, fmt.Errorf("restore snapshot %s: %w", metas[0].ID, err)
		}
		after = metas[0].Index
	}

	logs, err := openLogStore(filepath.Join(dir, "raft"), logger.With("component", "raft-log"))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, logs.Close()) }()
	first, err := logs.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return nil, err
	}
	for i := max(first, after+1); i <= last && i > 0; i++ {
		var entry raft.Log
		if err := logs.GetLog(i, &entry); err != nil {
			return nil, fmt.Errorf("raft log entry %d: %w", i, err)
		}
		if entry.Type == raft.LogCommand {
			machine.Apply(&entry)
		}
	}
	if machine.store == nil {
		return nil, errStateMachineDown
	}
	return &DiskCopy{Store: machine.store, machine: machine, root: root}, nil
}

// Close closes the copy and removes it.
func (d *DiskCopy) Close() error {
	return errors.Join(d.machine.close(), os.RemoveAll(d.root))
}
