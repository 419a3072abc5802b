package raftstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/parley-chat/parley/actors/testkit"
)

func openTestLogStore(t *testing.T, dir string) *logStore {
	t.Helper()
	s, err := openLogStore(dir, testkit.NewLogger(t))
	if err != nil {
		t.Fatalf("openLogStore: %v", err)
	}
	return s
}

func TestLogStore(t *testing.T) {
	dir := t.TempDir()
	s := openTestLogStore(t, dir)

	if first, last := mustIndexes(t, s); first != 0 || last != 0 {
		t.Fatalf("empty log: first %d, last %d", first, last)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1 + i/5, Type: raft.LogCommand, Data: []byte{byte(i)}, Extensions: []byte("x"), AppendedAt: t0.Add(time.Duration(i))})
	}
	if err := s.StoreLogs(logs[:9]); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
	if err := s.StoreLog(logs[9]); err != nil {
		t.Fatalf("StoreLog: %v", err)
	}
	if first, last := mustIndexes(t, s); first != 1 || last != 10 {
		t.Fatalf("first %d, last %d; want 1, 10", first, last)
	}
	var got raft.Log
	if err := s.GetLog(7, &got); err != nil {
		t.Fatalf("GetLog(7): %v", err)
	}
	want := logs[6]
	if got.Index != 7 || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) ||
		!bytes.Equal(got.Extensions, want.Extensions) || !got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("GetLog(7) = %+v, want %+v", got, *want)
	}
	if err := s.GetLog(11, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(11): %v, want ErrLogNotFound", err)
	}

	// Compaction removes the oldest, a conflict the newest.
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatalf("DeleteRange(1, 3): %v", err)
	}
	if err := s.DeleteRange(9, 20); err != nil {
		t.Fatalf("DeleteRange(9, 20): %v", err)
	}
	if first, last := mustIndexes(t, s); first != 4 || last != 8 {
		t.Fatalf("after deletes: first %d, last %d; want 4, 8", first, last)
	}

	// The stable store: missing keys read as empty and 0.
	if v, err := s.Get([]byte("missing")); err != nil || len(v) != 0 {
		t.Fatalf("Get(missing) = %q, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("missing")); err != nil || v != 0 {
		t.Fatalf("GetUint64(missing) = %d, %v", v, err)
	}
	if err := s.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}

	// Everything survives a reopen, and log and stable keys stay apart.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openTestLogStore(t, dir)
	defer func() { _ = s.Close() }()
	if first, last := mustIndexes(t, s); first != 4 || last != 8 {
		t.Fatalf("after reopen: first %d, last %d; want 4, 8", first, last)
	}
	if v, err := s.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get(k) after reopen = %q, %v", v, err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64 after reopen = %d, %v", v, err)
	}
}

func TestLogStoreSplitsLargeBatches(t *testing.T) {
	s := openTestLogStore(t, t.TempDir())
	defer func() { _ = s.Close() }()
	// 64 entries of 512 KiB, beyond one Badger transaction of a 32 MiB memtable.
	big := bytes.Repeat([]byte("x"), 512<<10)
	var logs []*raft.Log
	for i := uint64(1); i <= 64; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: big})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
	if first, last := mustIndexes(t, s); first != 1 || last != 64 {
		t.Fatalf("first %d, last %d; want 1, 64", first, last)
	}
	if err := s.DeleteRange(1, 64); err != nil {
		t.Fatalf("DeleteRange: %v", err)
	}
	if first, last := mustIndexes(t, s); first != 0 || last != 0 {
		t.Fatalf("after deleting all: first %d, last %d", first, last)
	}
}

func mustIndexes(t *testing.T, s *logStore) (uint64, uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatalf("FirstIndex: %v", err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatalf("LastIndex: %v", err)
	}
	return first, last
}
