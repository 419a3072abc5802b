package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/cluster"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// cacheCluster starts n in-process nodes hosting Cache grains, each with
// its own in-memory Badger store, and returns a Client per node. The stores
// close after the nodes have stopped.
func cacheCluster(t *testing.T, n int) ([]*cache.Client, []*badgerstore.Store) {
	t.Helper()
	stores := make([]*badgerstore.Store, n)
	for i := range stores {
		stores[i] = testkit.OpenStore(t, "")
	}
	c := testkit.NewCluster(t, n, testkit.WithConfig(func(i int, cfg *cluster.Config) {
		kind, err := cache.NewKind(cache.Config{Store: stores[i], Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Kinds = append(cfg.Kinds, kind)
	}))
	clients := make([]*cache.Client, n)
	for i := range clients {
		clients[i] = cache.NewClient(c.Node(i))
	}
	return clients, stores
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, c *cache.Client, tenant, key, value string, ttl time.Duration) time.Time {
	t.Helper()
	exp, err := c.Put(callCtx(t), tenant, key, []byte(value), ttl)
	if err != nil {
		t.Fatalf("put %s %q: %v", tenant, key, err)
	}
	return exp
}

// mustGet returns the entry, or "" after a miss.
func mustGet(t *testing.T, c *cache.Client, tenant, key string) (string, time.Time) {
	t.Helper()
	value, exp, ok, err := c.Get(callCtx(t), tenant, key)
	if err != nil {
		t.Fatalf("get %s %q: %v", tenant, key, err)
	}
	if !ok {
		return "", time.Time{}
	}
	return string(value), exp
}

func TestEveryNodeReadsTheLatestWriteAtOnce(t *testing.T) {
	t.Parallel()
	clients, _ := cacheCluster(t, 3)
	// Twelve keys, so that each node owns some and writes travel in every
	// direction.
	for k := range 12 {
		key := fmt.Sprintf("key-%d", k)
		writer := clients[k%3]
		exp := mustPut(t, writer, "acme", key, "v1", 0)
		for i, c := range clients {
			if v, got := mustGet(t, c, "acme", key); v != "v1" || !got.Equal(exp) {
				t.Fatalf("%s: node %d read %q expiring %s right after the put, want v1 expiring %s", key, i, v, got, exp)
			}
		}
		mustPut(t, clients[(k+1)%3], "acme", key, "v2", time.Minute)
		for i, c := range clients {
			if v, _ := mustGet(t, c, "acme", key); v != "v2" {
				t.Fatalf("%s: node %d read %q right after the overwrite", key, i, v)
			}
		}
		if err := clients[(k+2)%3].Delete(callCtx(t), "acme", key); err != nil {
			t.Fatal(err)
		}
		for i, c := range clients {
			if v, _ := mustGet(t, c, "acme", key); v != "" {
				t.Fatalf("%s: node %d read %q right after the delete", key, i, v)
			}
		}
	}
}

func TestTenantsNeverSeeEachOthersEntries(t *testing.T) {
	t.Parallel()
	clients, stores := cacheCluster(t, 3)
	tenants := []string{"acme", "other"}
	keys := []string{
		"x", "other:cache:x", "acme:cache:x", "other:k:cache:x", "a/b", "../x", "../../other/x",
		"a:b:c", ":", "ключ", "🔑", strings.Repeat("k", cache.MaxKeyBytes),
	}
	want := map[string]string{} // raw store key → value it must hold
	for i, key := range keys {
		for j, tenant := range tenants {
			value := tenant + " owns " + key
			mustPut(t, clients[(i+j)%3], tenant, key, value, 0)
			want[tenant+":k:cache:"+key] = value
		}
	}
	for _, tenant := range tenants {
		for _, key := range keys {
			for n, c := range clients {
				if v, _ := mustGet(t, c, tenant, key); v != tenant+" owns "+key {
					t.Fatalf("%s reads %q under %q from node %d", tenant, v, key, n)
				}
			}
		}
	}
	for _, key := range []string{"a\x00b", "\x00", strings.Repeat("k", cache.MaxKeyBytes+1)} {
		if _, err := clients[0].Put(callCtx(t), "acme", key, []byte("v"), 0); !errors.Is(err, cache.ErrInvalidKey) {
			t.Fatalf("put under %q: %v, want ErrInvalidKey", key, err)
		}
	}

	// On disk, every entry sits under its own tenant's prefix, once.
	seen := 0
	for i, s := range stores {
		err := s.ScanKeys(context.Background(), "", func(raw []byte) error {
			if _, ok := want[string(raw)]; !ok {
				return fmt.Errorf("store %d holds unexpected key %q", i, raw)
			}
			seen++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen != len(want) {
		t.Fatalf("stores hold %d entries, want %d", seen, len(want))
	}

	// One tenant deleting every key leaves the other's.
	for _, key := range keys {
		if err := clients[1].Delete(callCtx(t), "acme", key); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range keys {
		if v, _ := mustGet(t, clients[2], "acme", key); v != "" {
			t.Fatalf("acme still reads %q under %q", v, key)
		}
		if v, _ := mustGet(t, clients[0], "other", key); v != "other owns "+key {
			t.Fatalf("after acme's deletes other reads %q under %q", v, key)
		}
	}
}

func TestEntrySurvivesARestartWithItsExpiry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := testkit.NewFakeClock(time.Time{})
	// run starts a one-node cluster on dir, calls f with a Client, and
	// stops the node and closes the store before returning.
	run := func(f func(c *cache.Client)) {
		store, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: testkit.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		c := testkit.NewCluster(t, 1, testkit.WithConfig(func(_ int, cfg *cluster.Config) {
			kind, err := cache.NewKind(cache.Config{Store: store, Clock: clk, Logger: cfg.Logger})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Kinds = append(cfg.Kinds, kind)
		}))
		defer c.StopNode(0)
		f(cache.NewClient(c.Node(0)))
	}

	var stored time.Time
	run(func(c *cache.Client) { stored = mustPut(t, c, "acme", "session/42", "kept", 2*time.Hour) })
	clk.Advance(time.Hour)
	run(func(c *cache.Client) {
		if v, exp := mustGet(t, c, "acme", "session/42"); v != "kept" || !exp.Equal(stored) {
			t.Fatalf("after the restart: %q expiring %s, want kept expiring %s", v, exp, stored)
		}
		// The expiry read from disk still holds.
		clk.Advance(time.Hour)
		if v, _ := mustGet(t, c, "acme", "session/42"); v != "" {
			t.Fatalf("at its expiry the restored entry still reads %q", v)
		}
	})
}
