package raftstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// BenchmarkAppend measures one acknowledged append of one message: on the
// single-node Badger store (fsync per write) for reference, on a one-member
// group, and on a three-member group in this process, through the leader
// and through a follower (which forwards to the leader). Parallel runs many
// sessions at once, where raft commits several appends with one fsync.
//
//	go test -run '^$' -bench Append -benchtime 2s ./persistence/raftstore/
func BenchmarkAppend(b *testing.B) {
	b.Run("badger-sync", func(b *testing.B) {
		s, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir(), Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		benchAppend(b, s)
	})
	b.Run("raft-1-node", func(b *testing.B) {
		c := newTestCluster(b, 1, benchConfig)
		benchAppend(b, c.store(0))
	})
	b.Run("raft-3-nodes-via-leader", func(b *testing.B) {
		c := newTestCluster(b, 3, benchConfig)
		benchAppend(b, c.store(c.waitLeader()))
	})
	b.Run("raft-3-nodes-via-follower", func(b *testing.B) {
		c := newTestCluster(b, 3, benchConfig)
		benchAppend(b, c.store(c.follower()))
	})
	b.Run("raft-3-nodes-parallel", func(b *testing.B) {
		c := newTestCluster(b, 3, benchConfig)
		s := c.store(c.waitLeader())
		var next atomic.Int64
		b.SetParallelism(8) // 16 writers on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			key := session(int(next.Add(1)))
			for last := uint64(0); pb.Next(); last++ {
				appendOne(b, s, key, last, "m")
			}
		})
	})
}

// BenchmarkMeta measures one linearizable read, and one read of the
// single-node Badger store for reference.
func BenchmarkMeta(b *testing.B) {
	b.Run("badger", func(b *testing.B) {
		s, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir(), Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		key := session(1)
		if _, err := s.Append(context.Background(), key, 0, []persistence.Message{msg(1, "m1")}, persistence.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.Meta(context.Background(), key); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		name  string
		nodes int
		via   func(c *testCluster) int
	}{
		{"raft-1-node", 1, func(*testCluster) int { return 0 }},
		{"raft-3-nodes-via-leader", 3, (*testCluster).waitLeader},
		{"raft-3-nodes-via-follower", 3, (*testCluster).follower},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := newTestCluster(b, tc.nodes, benchConfig)
			s := c.store(tc.via(c))
			key := session(1)
			appendOne(b, s, key, 0, "m1")
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Meta(context.Background(), key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSnapshot measures a state machine snapshot of a store holding
// 10,000 messages of 200 bytes: the checkpoint (while applies and reads
// wait) and the copy into raft's snapshot store.
func BenchmarkSnapshot(b *testing.B) {
	c := newTestCluster(b, 1, benchConfig)
	s := c.store(0)
	content := strings.Repeat("x", 200)
	for i := range 100 {
		key := session(i)
		msgs := make([]persistence.Message, 100)
		for j := range msgs {
			msgs[j] = persistence.Message{Seq: uint64(j + 1), ID: fmt.Sprint(j), Role: persistence.RoleUser, Content: content, CreatedAt: t0}
		}
		if _, err := s.Append(context.Background(), key, 0, msgs, persistence.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var last uint64
	var paused time.Duration
	b.ResetTimer()
	for b.Loop() {
		appendOne(b, s, session(1000), last, "m") // something new to snapshot
		last++
		if err := s.Snapshot(); err != nil {
			b.Fatal(err)
		}
		paused += s.fsm.lastCheckpoint()
	}
	b.ReportMetric(float64(paused.Microseconds())/float64(b.N), "µs-paused/op")
}

// benchConfig keeps benchmarks from snapshotting on their own.
func benchConfig(cfg *Config) {
	cfg.SnapshotThreshold = 1 << 30
	cfg.ApplyTimeout = 10 * time.Second
}

func benchAppend(b *testing.B, s persistence.Store) {
	key := session(1)
	var last uint64
	for b.Loop() {
		if _, err := s.Append(context.Background(), key, last, []persistence.Message{msg(last+1, "m")}, persistence.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		last++
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
