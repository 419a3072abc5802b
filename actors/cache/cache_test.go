package cache_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/cache"
	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// env is one grain-level test's world: an actor system, an in-memory
// Badger store seen through a recordingStore, a fake clock and a probe.
type env struct {
	t      *testing.T
	system *actor.ActorSystem
	badger *badgerstore.Store
	store  *recordingStore
	clock  *testkit.FakeClock
	probe  *testkit.Probe
	props  *actor.Props
}

// newEnv gives keys an idle timeout of a year, so that tests moving the
// clock by hours see no passivation; the passivation test sets its own.
func newEnv(t *testing.T) *env {
	return newEnvIdle(t, 365*24*time.Hour)
}

func newEnvIdle(t *testing.T, idle time.Duration) *env {
	t.Helper()
	badger := testkit.OpenStore(t, "")
	e := &env{t: t, system: testkit.NewActorSystem(t), badger: badger, store: &recordingStore{KVStore: badger}, clock: testkit.NewFakeClock(time.Time{})}
	e.probe = testkit.NewProbe(t, e.system)
	var err error
	e.props, err = cache.Props(cache.Config{Store: e.store, Clock: e.clock, IdleTimeout: idle, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// spawn activates the tenant's key, with the identity Identity builds.
func (e *env) spawn(tenant, key string) *actor.PID {
	e.t.Helper()
	identity, err := cache.Identity(tenant, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return testkit.SpawnGrain(e.t, e.system, e.props, cache.Kind, identity)
}

func ask[T any](e *env, pid *actor.PID, msg any) T {
	e.t.Helper()
	e.probe.Request(pid, msg)
	return testkit.ExpectMessage[T](e.probe, 5*time.Second)
}

func (e *env) put(pid *actor.PID, value string, ttl time.Duration) time.Time {
	e.t.Helper()
	return time.Unix(0, ask[*cache.Stored](e, pid, &cache.Put{Value: []byte(value), TtlNanos: int64(ttl)}).ExpiresAtUnixNano)
}

// get returns the entry, or "" and the zero time after a Miss.
func (e *env) get(pid *actor.PID) (string, time.Time) {
	e.t.Helper()
	e.probe.Request(pid, &cache.Get{})
	switch res := e.probe.Expect(5 * time.Second).Message.(type) {
	case *cache.Value:
		return string(res.Value), time.Unix(0, res.ExpiresAtUnixNano)
	case *cache.Miss:
		return "", time.Time{}
	default:
		e.t.Fatalf("get answered %T %v", res, res)
		return "", time.Time{}
	}
}

// recordingStore counts the calls that reach the store and can make
// writes fail: before writing (failWrites), or after (failAfterWrite, as a
// timeout that strikes after the commit). The grain calls it from its own
// goroutine, hence atomics.
type recordingStore struct {
	persistence.KVStore
	gets, puts, deletes atomic.Int32
	failWrites          atomic.Bool
	failAfterWrite      atomic.Bool
}

var _ persistence.KVStore = (*recordingStore)(nil)

var errDiskGone = errors.New("disk gone")

func (s *recordingStore) Get(ctx context.Context, key persistence.KVKey, now time.Time) ([]byte, time.Time, bool, error) {
	s.gets.Add(1)
	return s.KVStore.Get(ctx, key, now)
}

func (s *recordingStore) Put(ctx context.Context, key persistence.KVKey, value []byte, expiresAt time.Time, opts persistence.PutOptions) error {
	s.puts.Add(1)
	if s.failWrites.Load() {
		return errDiskGone
	}
	return s.afterWrite(s.KVStore.Put(ctx, key, value, expiresAt, opts))
}

func (s *recordingStore) Delete(ctx context.Context, key persistence.KVKey) error {
	s.deletes.Add(1)
	if s.failWrites.Load() {
		return errDiskGone
	}
	return s.afterWrite(s.KVStore.Delete(ctx, key))
}

func (s *recordingStore) afterWrite(err error) error {
	if err == nil && s.failAfterWrite.Load() {
		return context.DeadlineExceeded
	}
	return err
}

func (s *recordingStore) calls() int32 { return s.gets.Load() + s.puts.Load() + s.deletes.Load() }

func TestEntryExpiresAtItsTTLAndTheSweepRemovesIt(t *testing.T) {
	e := newEnv(t)
	pid := e.spawn("acme", "greeting")
	start := e.clock.Now()
	if exp := e.put(pid, "hello", 10*time.Second); !exp.Equal(start.Add(10 * time.Second)) {
		t.Fatalf("expires at %s, want %s", exp, start.Add(10*time.Second))
	}

	e.clock.Advance(9 * time.Second)
	if v, exp := e.get(pid); v != "hello" || !exp.Equal(start.Add(10*time.Second)) {
		t.Fatalf("after 9 s: %q expiring %s, want a hit", v, exp)
	}
	e.clock.Advance(time.Second) // now == expiresAt: gone
	if v, _ := e.get(pid); v != "" {
		t.Fatalf("after 10 s: %q, want a miss", v)
	}
	// A new activation, which loads from the store, misses too.
	if v, _ := e.get(e.spawn("acme", "greeting")); v != "" {
		t.Fatalf("a new activation after expiry read %q", v)
	}

	// Nobody deleted it: the bytes stay on disk until the sweep.
	if n := countKeys(t, e.badger); n != 1 {
		t.Fatalf("store holds %d keys before the sweep, want 1", n)
	}
	stats, err := e.badger.Sweep(context.Background(), e.clock.Now(), func(string) time.Duration { return 0 })
	if err != nil || stats.KVEntries != 1 {
		t.Fatalf("sweep: %+v %v", stats, err)
	}
	if n := countKeys(t, e.badger); n != 0 {
		t.Fatalf("store holds %d keys after the sweep", n)
	}
}

func TestTTLZeroIsTheDefaultHour(t *testing.T) {
	if cache.DefaultTTL != 3600*time.Second {
		t.Fatalf("DefaultTTL is %s", cache.DefaultTTL)
	}
	e := newEnv(t)
	pid := e.spawn("acme", "k")
	start := e.clock.Now()
	if exp := e.put(pid, "v", 0); !exp.Equal(start.Add(time.Hour)) {
		t.Fatalf("TTL 0 expires at %s, want %s", exp, start.Add(time.Hour))
	}
	e.clock.Advance(time.Hour - time.Nanosecond)
	if v, _ := e.get(pid); v != "v" {
		t.Fatalf("a nanosecond before the hour: %q, want a hit", v)
	}
	e.clock.Advance(time.Nanosecond)
	if v, _ := e.get(pid); v != "" {
		t.Fatalf("at the hour: %q, want a miss", v)
	}
}

func TestSizeAndTTLLimits(t *testing.T) {
	e := newEnv(t)
	pid := e.spawn("acme", "k")
	for _, tc := range []struct {
		name  string
		size  int
		ttl   time.Duration
		valid bool
	}{
		{"64 KiB", cache.MaxValueBytes, 0, true},
		{"empty value", 0, 0, true},
		{"1 s", 1, time.Second, true},
		{"30 days", 1, 30 * 24 * time.Hour, true},
		{"64 KiB + 1", cache.MaxValueBytes + 1, 0, false},
		{"-1 s", 1, -time.Second, false},
		{"999 ms", 1, 999 * time.Millisecond, false},
		{"1 ns", 1, time.Nanosecond, false},
		{"30 days + 1 ns", 1, 30*24*time.Hour + time.Nanosecond, false},
		{"31 days", 1, 31 * 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value := bytes.Repeat([]byte{'x'}, tc.size)
			e.probe.Request(pid, &cache.Put{Value: value, TtlNanos: int64(tc.ttl)})
			res := e.probe.Expect(5 * time.Second).Message
			if f, refused := res.(*grains.Failure); refused == tc.valid || (refused && f.Code != grains.CodeInvalidArgument) {
				t.Fatalf("put of %d bytes for %s answered %T %v", tc.size, tc.ttl, res, res)
			}
			if !tc.valid {
				return
			}
			if got, _ := e.get(pid); got != string(value) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(value))
			}
		})
	}

	// A refused Put changes nothing and never reaches the store.
	e.put(pid, "kept", 0)
	puts := e.store.puts.Load()
	ask[*grains.Failure](e, pid, &cache.Put{Value: []byte("x"), TtlNanos: int64(-time.Second)})
	ask[*grains.Failure](e, pid, &cache.Put{Value: make([]byte, cache.MaxValueBytes+1)})
	if v, _ := e.get(pid); v != "kept" {
		t.Fatalf("after refused puts the entry is %q", v)
	}
	if got := e.store.puts.Load(); got != puts {
		t.Fatalf("refused puts reached the store %d times", got-puts)
	}
}

func TestActivationLoadsTheEntryOnceAndGetsAnswerFromMemory(t *testing.T) {
	e := newEnv(t)
	key := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "k"}
	expires := e.clock.Now().Add(time.Minute)
	if err := e.badger.Put(context.Background(), key, []byte("from disk"), expires, persistence.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	pid := e.spawn("acme", "k")
	for range 5 {
		if v, exp := e.get(pid); v != "from disk" || !exp.Equal(expires) {
			t.Fatalf("read %q expiring %s", v, exp)
		}
	}
	if got := e.store.gets.Load(); got != 1 {
		t.Fatalf("five gets read the store %d times, want 1 (the activation's load)", got)
	}
}

func TestAnsweredValueIsTheCallersCopy(t *testing.T) {
	e := newEnv(t)
	pid := e.spawn("acme", "k")
	sent := []byte("abc")
	e.probe.Request(pid, &cache.Put{Value: sent})
	testkit.ExpectMessage[*cache.Stored](e.probe, 5*time.Second)
	sent[0] = 'X' // the sender reuses its buffer
	e.probe.Request(pid, &cache.Get{})
	got := testkit.ExpectMessage[*cache.Value](e.probe, 5*time.Second)
	got.Value[1] = 'Y' // the reader scribbles on its answer
	if v, _ := e.get(pid); v != "abc" {
		t.Fatalf("entry is %q after callers changed their slices", v)
	}
}

func TestAfterAFailedWriteTheGrainAnswersWhatTheStoreHolds(t *testing.T) {
	e := newEnv(t)
	pid := e.spawn("acme", "k")
	e.put(pid, "old", 0)

	// The writes never reach the disk: the grain keeps answering the old
	// entry.
	e.store.failWrites.Store(true)
	for _, msg := range []any{&cache.Put{Value: []byte("new")}, &cache.Delete{}} {
		if f := ask[*grains.Failure](e, pid, msg); f.Code != grains.CodeUnavailable {
			t.Fatalf("%T on a failing store: %+v", msg, f)
		}
		if v, _ := e.get(pid); v != "old" {
			t.Fatalf("after a failed %T the grain answers %q, want old", msg, v)
		}
	}
	e.store.failWrites.Store(false)

	// The writes reach the disk but fail afterwards (a timeout after the
	// commit): the grain answers unavailable, then serves what is on disk
	// rather than what it had in memory.
	e.store.failAfterWrite.Store(true)
	if f := ask[*grains.Failure](e, pid, &cache.Put{Value: []byte("landed")}); f.Code != grains.CodeUnavailable {
		t.Fatalf("put failing after the write: %+v", f)
	}
	if v, _ := e.get(pid); v != "landed" {
		t.Fatalf("after a put that landed and failed the grain answers %q", v)
	}
	if f := ask[*grains.Failure](e, pid, &cache.Delete{}); f.Code != grains.CodeUnavailable {
		t.Fatalf("delete failing after the write: %+v", f)
	}
	if v, _ := e.get(pid); v != "" {
		t.Fatalf("after a delete that landed and failed the grain answers %q", v)
	}
	e.store.failAfterWrite.Store(false)

	e.put(pid, "again", 0)
	ask[*cache.Deleted](e, pid, &cache.Delete{})
	if v, _ := e.get(pid); v != "" {
		t.Fatalf("after delete: %q", v)
	}
	if v, _, ok, err := e.badger.Get(context.Background(), persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "k"}, e.clock.Now()); ok || err != nil {
		t.Fatalf("store after delete: %q %v %v", v, ok, err)
	}
}

func TestIdleKeyPassivatesAndReactivatesWithItsEntry(t *testing.T) {
	e := newEnvIdle(t, 5*time.Minute)
	pid := e.spawn("acme", "k")
	expires := e.put(pid, "v", 0)
	e.probe.Watch(pid)

	e.clock.Advance(4 * time.Minute)
	e.get(pid) // activity pushes passivation back
	e.clock.Advance(4 * time.Minute)
	e.probe.ExpectNoMessage(50 * time.Millisecond)

	if !e.clock.WaitForTimers(1, 5*time.Second) {
		t.Fatal("grain scheduled no idle check")
	}
	e.clock.Advance(time.Minute)
	e.probe.ExpectTerminated(pid, 5*time.Second)

	loads := e.store.gets.Load()
	if v, exp := e.get(e.spawn("acme", "k")); v != "v" || !exp.Equal(expires) {
		t.Fatalf("re-activated key read %q expiring %s, want v expiring %s", v, exp, expires)
	}
	if e.store.gets.Load() != loads+1 {
		t.Fatal("the new activation did not load the entry from the store")
	}
}

func TestMalformedIdentityIsRefusedAndNeverTouchesStorage(t *testing.T) {
	e := newEnv(t)
	for _, identity := range []string{
		"acme", "acme:x", "acme:cachex", "acme:cache:", "acme:kv:x", ":cache:x", "ACME:cache:x",
		"acme:Cache:x", "../acme:cache:x", "acme:cache:a\x00b", "acme:cache:\xff",
		"acme:cache:" + strings.Repeat("k", cache.MaxKeyBytes+1), strings.Repeat("a", 65) + ":cache:x",
	} {
		pid := testkit.SpawnGrain(t, e.system, e.props, cache.Kind, identity)
		for _, msg := range []any{&cache.Get{}, &cache.Put{Value: []byte("x")}, &cache.Delete{}} {
			if f := ask[*grains.Failure](e, pid, msg); f.Code != grains.CodeInvalidArgument {
				t.Errorf("%q %T: %+v", identity, msg, f)
			}
		}
	}
	if n := e.store.calls(); n != 0 {
		t.Fatalf("malformed identities made %d store calls", n)
	}
	if n := countKeys(t, e.badger); n != 0 {
		t.Fatalf("store holds %d keys", n)
	}
}

func TestTenantsSharingAKeyHaveTheirOwnEntries(t *testing.T) {
	e := newEnv(t)
	acme, globex := e.spawn("acme", "shared"), e.spawn("globex", "shared")
	e.put(acme, "acme's", 0)
	if v, _ := e.get(globex); v != "" {
		t.Fatalf("globex read %q under acme's key", v)
	}
	e.put(globex, "globex's", 0)
	ask[*cache.Deleted](e, acme, &cache.Delete{})
	if v, _ := e.get(globex); v != "globex's" {
		t.Fatalf("after acme's delete globex reads %q", v)
	}
}

// countKeys counts every key in the store.
func countKeys(t *testing.T, store *badgerstore.Store) int {
	t.Helper()
	n := 0
	if err := store.ScanKeys(context.Background(), "", func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
