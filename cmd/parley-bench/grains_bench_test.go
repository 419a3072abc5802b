package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// The grain paths' micro-benchmarks that need no package's internals:
// each calls a grain through Node.Request on a one-node cluster, the way
// the HTTP edge does, over an on-disk Badger store with SyncWrites (as
// `parley serve` opens it). make bench runs them with -benchtime=1000x:
//
//	go test -run '^$' -bench . -benchmem ./cmd/parley-bench/

// grainNode starts a one-node cluster hosting the session and cache kinds
// over a fresh on-disk store.
func grainNode(b *testing.B) *cluster.Node {
	b.Helper()
	store, err := badgerstore.Open(badgerstore.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	c := testkit.NewCluster(b, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
		sessions, err := session.NewKind(session.Config{Store: store, Logger: cfg.Logger})
		if err != nil {
			b.Fatal(err)
		}
		caches, err := cache.NewKind(cache.Config{Store: store, Logger: cfg.Logger})
		if err != nil {
			b.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, sessions, caches)
	}))
	return c.Node(0)
}

// appendTo stores one message in the session through its grain.
func appendTo(b *testing.B, node *cluster.Node, identity, role, content string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := node.Request(ctx, identity, session.Kind, &session.Append{Role: role, Content: content, TokenCount: 10})
	if _, ok := res.(*session.Appended); err != nil || !ok {
		b.Fatalf("append: %v %v", res, err)
	}
}

// BenchmarkSessionAppend is one message appended through the ChatSession
// grain: validation, the conditional Badger write with fsync, the tail.
// POST /chat does two per reply.
func BenchmarkSessionAppend(b *testing.B) {
	node := grainNode(b)
	identity, _ := session.Identity("bench", uuid.NewString())
	appendTo(b, node, identity, "user", "activate")
	for b.Loop() {
		appendTo(b, node, identity, "user", "a typical chat line of a few words")
	}
}

// BenchmarkSessionHistory100 is one page of the newest 100 messages of a
// 150-message session through its grain (GET /chat/{id}/history?limit=100).
func BenchmarkSessionHistory100(b *testing.B) {
	node := grainNode(b)
	identity, _ := session.Identity("bench", uuid.NewString())
	for i := range 150 {
		appendTo(b, node, identity, "assistant", fmt.Sprintf("message %d: a typical chat line of a few words", i))
	}
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := node.Request(ctx, identity, session.Kind, &session.History{Limit: 100})
		cancel()
		if page, ok := res.(*session.Page); err != nil || !ok || len(page.Messages) != 100 {
			b.Fatalf("history: %v %v", res, err)
		}
	}
}

// BenchmarkCacheGet is a cache hit through cache.Client, which the edge
// calls for GET /cache/{key} and for every chat's model config.
func BenchmarkCacheGet(b *testing.B) {
	node := grainNode(b)
	c := cache.NewClient(node)
	ctx := context.Background()
	if _, err := c.Put(ctx, "bench", "parley/model", []byte(`{"name":"mock"}`), time.Hour); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, ok, err := c.Get(ctx, "bench", "parley/model"); err != nil || !ok {
			b.Fatalf("get: ok %v, err %v", ok, err)
		}
	}
}
