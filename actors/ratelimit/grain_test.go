package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/ratelimit"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
)

// env is one grain-level test's world: an actor system, a Badger store
// (behind a store that counts writes and can be made to fail), a fake
// clock and a probe. The fake clock starts at testkit.Epoch, 12:00:00 UTC,
// the start of a minute window.
type env struct {
	t      *testing.T
	system *actor.ActorSystem
	badger *badgerstore.Store
	store  *countingStore
	clock  *testkit.FakeClock
	probe  *testkit.Probe
	props  *actor.Props
}

// newEnv gives limiters an idle timeout of a day, so that tests moving the
// clock by minutes see no passivation; the passivation test sets its own.
func newEnv(t *testing.T) *env { return newEnvIdle(t, 24*time.Hour) }

func newEnvIdle(t *testing.T, idle time.Duration) *env {
	t.Helper()
	store := testkit.OpenStore(t, "")
	e := &env{t: t, system: testkit.NewActorSystem(t), clock: testkit.NewFakeClock(time.Time{})}
	e.probe = testkit.NewProbe(t, e.system)
	e.useStore(store, idle)
	return e
}

// useStore makes grains spawned from now on use store.
func (e *env) useStore(store *badgerstore.Store, idle time.Duration) {
	e.t.Helper()
	e.badger, e.store = store, &countingStore{KVStore: store}
	var err error
	e.props, err = ratelimit.Props(ratelimit.Config{
		Store:       e.store,
		Clock:       e.clock,
		IdleTimeout: idle,
		Logger:      testkit.NewLogger(e.t),
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) spawn(identity string) *actor.PID {
	return testkit.SpawnGrain(e.t, e.system, e.props, ratelimit.Kind, identity)
}

func ask[T any](e *env, pid *actor.PID, msg any) T {
	e.t.Helper()
	e.probe.Request(pid, msg)
	return testkit.ExpectMessage[T](e.probe, 5*time.Second)
}

// check asks for cost units under limits and returns the decision.
func (e *env) check(pid *actor.PID, cost int32, limits *ratelimit.Limits) *ratelimit.Decision {
	e.t.Helper()
	return ask[*ratelimit.Decision](e, pid, &ratelimit.Check{Cost: cost, Limits: limits})
}

// at moves the fake clock to Epoch + d.
func (e *env) at(d time.Duration) { e.clock.Set(testkit.Epoch.Add(d)) }

func unix(d time.Duration) int64 { return testkit.Epoch.Add(d).Unix() }

func identity(t testing.TB, scope ratelimit.Scope, id string) string {
	t.Helper()
	identity, err := ratelimit.Identity("acme", scope, id)
	if err != nil {
		t.Fatal(err)
	}
	return identity
}

// want compares a decision with the one expected.
func want(t *testing.T, what string, got *ratelimit.Decision, allowed bool, remaining, resetAt, retryAfterMillis int64) {
	t.Helper()
	if got.Allowed != allowed || got.Remaining != remaining || got.ResetAtUnix != resetAt || got.RetryAfterMillis != retryAfterMillis {
		t.Fatalf("%s: got allowed=%v remaining=%d resetAt=%+ds retryAfter=%dms, want allowed=%v remaining=%d resetAt=%+ds retryAfter=%dms",
			what, got.Allowed, got.Remaining, got.ResetAtUnix-testkit.Epoch.Unix(), got.RetryAfterMillis,
			allowed, remaining, resetAt-testkit.Epoch.Unix(), retryAfterMillis)
	}
}

// countingStore counts writes and can fail reads, around a real store.
type countingStore struct {
	persistence.KVStore
	puts     atomic.Int64
	failGets atomic.Bool
}

var _ persistence.KVStore = (*countingStore)(nil)

var errStoreDown = errors.New("store down (test)")

func (s *countingStore) Get(ctx context.Context, key persistence.KVKey, now time.Time) ([]byte, time.Time, bool, error) {
	if s.failGets.Load() {
		return nil, time.Time{}, false, errStoreDown
	}
	return s.KVStore.Get(ctx, key, now)
}

func (s *countingStore) Put(ctx context.Context, key persistence.KVKey, value []byte, expiresAt time.Time, opts persistence.PutOptions) error {
	s.puts.Add(1)
	return s.KVStore.Put(ctx, key, value, expiresAt, opts)
}

func TestLimitPlusOneInAWindowIsRefusedWithExactHeaders(t *testing.T) {
	e := newEnv(t)
	pid := e.spawn(identity(t, ratelimit.ScopeUser, "alice"))
	limits := &ratelimit.Limits{PerMinute: 10}

	e.at(15 * time.Second) // 12:00:15; the previous minute is empty
	for i := int64(1); i <= 10; i++ {
		// Allowed: reset is the end of the current minute window.
		want(t, "check", e.check(pid, 1, limits), true, 10-i, unix(time.Minute), 0)
	}
	// The 11th: the window holds 10. It fits once the previous minute's 10
	// weigh 9, i.e. 10 × (60 s − e)/60 s ≤ 9 at e = 6 s into the next
	// minute: 12:01:06, 51 s from now.
	want(t, "11th check", e.check(pid, 1, limits), false, 0, unix(66*time.Second), 51_000)

	e.at(66*time.Second - time.Millisecond)
	want(t, "1 ms early", e.check(pid, 1, limits), false, 0, unix(66*time.Second), 1)
	e.at(66 * time.Second)
	if d := e.check(pid, 1, limits); !d.Allowed || d.Limit != 10 || d.Remaining != 0 || d.ResetAtUnix != unix(2*time.Minute) {
		t.Fatalf("at 12:01:06: %+v", d)
	}
}

func TestTheWindowSlidesWhereAFixedWindowWouldReset(t *testing.T) {
	e := newEnv(t)
	pid := e.spawn(identity(t, ratelimit.ScopeUser, "alice"))
	limits := &ratelimit.Limits{PerMinute: 10}

	e.at(50 * time.Second)
	for range 10 {
		e.check(pid, 1, limits)
	}
	// 12:01:05: a fixed window started afresh at 12:01:00 would allow 10
	// more. The sliding minute (12:00:05–12:01:05) still holds the 10 of
	// 12:00:50, estimated as 10 × 55/60 ≈ 9.17: one more would exceed 10.
	e.at(65 * time.Second)
	want(t, "12:01:05", e.check(pid, 1, limits), false, 0, unix(66*time.Second), 1_000)
	// 12:01:06: the estimate is 10 × 54/60 = 9, so exactly one fits.
	e.at(66 * time.Second)
	want(t, "12:01:06", e.check(pid, 1, limits), true, 0, unix(2*time.Minute), 0)
	want(t, "12:01:06 again", e.check(pid, 1, limits), false, 0, unix(72*time.Second), 6_000)
	// Two minutes after the burst the window is empty again.
	e.at(3 * time.Minute)
	want(t, "12:03:00", e.check(pid, 1, limits), true, 9, unix(4*time.Minute), 0)
}

func TestBurstBoundsEverySecondOnTopOfTheSustainedLimit(t *testing.T) {
	limits := &ratelimit.Limits{PerMinute: 100, Burst: 5}

	t.Run("burst", func(t *testing.T) {
		e := newEnv(t)
		pid := e.spawn(identity(t, ratelimit.ScopeUser, "alice"))
		for i := int64(1); i <= 5; i++ {
			want(t, "check", e.check(pid, 1, limits), true, 100-i, unix(time.Minute), 0)
		}
		// The 6th in the same second: refused by the burst limit while
		// 95 remain of the minute. It fits once this second's 5 weigh
		// 4 in the next: 200 ms into it, 1.2 s from now.
		want(t, "6th in a second", e.check(pid, 1, limits), false, 95, unix(2*time.Second), 1_200)
		e.at(1200 * time.Millisecond)
		want(t, "1.2 s later", e.check(pid, 1, limits), true, 94, unix(time.Minute), 0)
	})

	t.Run("sustained", func(t *testing.T) {
		e := newEnv(t)
		pid := e.spawn(identity(t, ratelimit.ScopeUser, "bob"))
		// 5 every 2 s never trips the burst limit; after 20 rounds the
		// minute holds its 100.
		for round := range 20 {
			e.at(time.Duration(round) * 2 * time.Second)
			for range 5 {
				if d := e.check(pid, 1, limits); !d.Allowed {
					t.Fatalf("round %d refused: %+v", round, d)
				}
			}
		}
		// At 12:00:40 the second is empty but the minute is full. It
		// fits once the minute's 100 weigh 99: 0.6 s into 12:01.
		e.at(40 * time.Second)
		want(t, "101st in a minute", e.check(pid, 1, limits), false, 0, unix(61*time.Second), 20_600)
	})
}

func TestCostCountsUnitsAndARefusalCountsNothing(t *testing.T) {
	e := newEnv(t)
	pid := e.spawn(identity(t, ratelimit.ScopeTenant, "acme"))
	limits := &ratelimit.Limits{PerMinute: 10}
	want(t, "cost 3", e.check(pid, 3, limits), true, 7, unix(time.Minute), 0)
	want(t, "cost 0 means 1", e.check(pid, 0, limits), true, 6, unix(time.Minute), 0)
	// 7 units do not fit in 6; they will once the 4 counted weigh at most 3
	// next minute: 15 s into it.
	want(t, "cost 7", e.check(pid, 7, limits), false, 6, unix(75*time.Second), 75_000)
	want(t, "cost 6", e.check(pid, 6, limits), true, 0, unix(time.Minute), 0)

	for _, bad := range []*ratelimit.Check{
		{Cost: 11, Limits: limits},
		{Cost: -1, Limits: limits},
		{Cost: 3, Limits: &ratelimit.Limits{PerMinute: 10, Burst: 2}},
		{Limits: nil},
		{Limits: &ratelimit.Limits{PerMinute: 0}},
		{Limits: &ratelimit.Limits{PerMinute: -5}},
		{Limits: &ratelimit.Limits{PerMinute: ratelimit.MaxLimit + 1}},
		{Limits: &ratelimit.Limits{PerMinute: 10, Burst: -1}},
	} {
		if f := ask[*grains.Failure](e, pid, bad); f.Code != grains.CodeInvalidArgument {
			t.Errorf("%v: %+v", bad, f)
		}
	}
	if f := ask[*grains.Failure](e, pid, &ratelimit.Refund{Cost: -2}); f.Code != grains.CodeInvalidArgument {
		t.Errorf("negative refund: %+v", f)
	}
	e.at(2 * time.Minute)
	want(t, "after the bad requests", e.check(pid, 1, &ratelimit.Limits{PerMinute: 10}), true, 9, unix(3*time.Minute), 0)
}

func TestRefundGivesUnitsBack(t *testing.T) {
	e := newEnv(t)
	pid := e.spawn(identity(t, ratelimit.ScopeIP, "203.0.113.7"))
	limits := &ratelimit.Limits{PerMinute: 10, Burst: 5}

	e.at(30 * time.Second)
	for range 4 {
		e.check(pid, 1, limits)
	}
	ask[*ratelimit.Refunded](e, pid, &ratelimit.Refund{Cost: 2})
	want(t, "after refunding 2 of 4", e.check(pid, 1, limits), true, 7, unix(time.Minute), 0)
	// The burst window got its units back too: 3 counted, 2 more fit.
	for range 2 {
		if d := e.check(pid, 1, limits); !d.Allowed {
			t.Fatalf("burst after refund: %+v", d)
		}
	}
	if d := e.check(pid, 1, limits); d.Allowed {
		t.Fatalf("burst after refund: %+v", d)
	}

	// Once the window has turned, a refund comes out of the previous
	// window's count: at 12:01:00 the 5 counted at 12:00:30 weigh fully.
	e.at(time.Minute)
	ask[*ratelimit.Refunded](e, pid, &ratelimit.Refund{Cost: 5})
	want(t, "next minute, all refunded", e.check(pid, 1, limits), true, 9, unix(2*time.Minute), 0)
	// Refunding more than was counted stops at zero.
	ask[*ratelimit.Refunded](e, pid, &ratelimit.Refund{Cost: 100})
	want(t, "over-refunded", e.check(pid, 1, limits), true, 9, unix(2*time.Minute), 0)
}

func TestCountersSurvivePassivation(t *testing.T) {
	e := newEnvIdle(t, 10*time.Second)
	id := identity(t, ratelimit.ScopeUser, "alice")
	limits := &ratelimit.Limits{PerMinute: 10}
	pid := e.spawn(id)
	for range 3 {
		e.check(pid, 1, limits)
	}
	e.probe.Watch(pid)
	if !e.clock.WaitForTimers(2, 5*time.Second) { // idle check and write-behind
		t.Fatal("grain scheduled no timers")
	}
	e.at(10 * time.Second)
	e.probe.ExpectTerminated(pid, 5*time.Second)

	again := e.spawn(id)
	want(t, "re-activated", e.check(again, 1, limits), true, 6, unix(time.Minute), 0)
}

func TestWriteBehindWritesOncePerIntervalAndACrashForgetsOnlyThatInterval(t *testing.T) {
	e := newEnv(t)
	id := identity(t, ratelimit.ScopeUser, "alice")
	limits := &ratelimit.Limits{PerMinute: 100}
	pid := e.spawn(id)
	for range 30 {
		e.check(pid, 1, limits)
	}
	if n := e.store.puts.Load(); n != 0 {
		t.Fatalf("%d writes before the write-behind interval", n)
	}
	if !e.clock.WaitForTimers(2, 5*time.Second) { // idle check and write-behind
		t.Fatal("grain scheduled no write-behind")
	}
	e.clock.Advance(time.Second)
	// The write-behind runs off the grain's goroutine.
	testkit.Eventually(t, 5*time.Second, func() error {
		if n := e.store.puts.Load(); n != 1 {
			return fmt.Errorf("%d writes after one interval, want 1", n)
		}
		return nil
	})
	e.clock.Advance(5 * time.Second)
	ask[*grains.Failure](e, pid, &ratelimit.Check{})
	// Stopping the grain waits for any write-behind still in flight (and
	// writes nothing more, as nothing changed): after it, the count is
	// final, whatever the scheduler did.
	e.probe.Watch(pid)
	e.system.Root.Stop(pid)
	e.probe.ExpectTerminated(pid, 5*time.Second)
	if n := e.store.puts.Load(); n != 1 {
		t.Fatalf("%d writes after idle intervals, want still 1", n)
	}

	// Ten more on a new activation, not yet written, then the node
	// "crashes": another activation on the same store (as after a
	// restart) knows the 30, not the 10.
	pid = e.spawn(id)
	for range 10 {
		e.check(pid, 1, limits)
	}
	crashed := e.spawn(id)
	want(t, "after the crash", e.check(crashed, 1, limits), true, 100-30-1, unix(time.Minute), 0)
}

func TestCountersSurviveAStoreReopen(t *testing.T) {
	dir := t.TempDir()
	open := func() *badgerstore.Store {
		store, err := badgerstore.Open(badgerstore.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return store
	}
	e := newEnv(t)
	store := open()
	e.useStore(store, time.Hour)
	id := identity(t, ratelimit.ScopeIP, "2001:db8:1:2::/64")
	limits := &ratelimit.Limits{PerMinute: 10}
	pid := e.spawn(id)
	for range 4 {
		e.check(pid, 1, limits)
	}
	// Stopping writes what the write-behind has not.
	if err := e.system.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if n := e.store.puts.Load(); n != 1 {
		t.Fatalf("%d writes at stop, want 1", n)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	reopened := open()
	t.Cleanup(func() { _ = reopened.Close() })
	e.useStore(reopened, time.Hour)
	e.at(30 * time.Second)
	// 4 counted, 1 now.
	want(t, "after reopening", e.check(e.spawn(id), 1, limits), true, 5, unix(time.Minute), 0)
}

func TestAnUnavailableStoreRefusesToGuessAndRecovers(t *testing.T) {
	e := newEnv(t)
	e.store.failGets.Store(true)
	pid := e.spawn(identity(t, ratelimit.ScopeUser, "alice"))
	if f := ask[*grains.Failure](e, pid, &ratelimit.Check{Limits: &ratelimit.Limits{PerMinute: 10}}); f.Code != grains.CodeUnavailable {
		t.Fatalf("check with the store down: %+v", f)
	}
	e.store.failGets.Store(false)
	want(t, "store back", e.check(pid, 1, &ratelimit.Limits{PerMinute: 10}), true, 9, unix(time.Minute), 0)
}

func TestIdentityRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		scope ratelimit.Scope
		id    string
		want  string
	}{
		{ratelimit.ScopeTenant, "acme", "acme:ratelimit:tenant:acme"},
		{ratelimit.ScopeUser, "web", "acme:ratelimit:user:web"},
		{ratelimit.ScopeUser, "ü:ser with spaces", "acme:ratelimit:user:ü:ser with spaces"},
		{ratelimit.ScopeIP, "203.0.113.7", "acme:ratelimit:ip:203.0.113.7"},
		{ratelimit.ScopeIP, "2001:db8::/64", "acme:ratelimit:ip:2001:db8::/64"},
		{ratelimit.ScopeUser, strings.Repeat("x", ratelimit.MaxIDLen), "acme:ratelimit:user:" + strings.Repeat("x", ratelimit.MaxIDLen)},
	} {
		got, err := ratelimit.Identity("acme", tc.scope, tc.id)
		if err != nil || got != tc.want {
			t.Errorf("Identity(acme, %s, %q) = %q, %v; want %q", tc.scope, tc.id, got, err, tc.want)
			continue
		}
		key, err := ratelimit.ParseIdentity(got)
		if err != nil || key != (ratelimit.Key{Tenant: "acme", Scope: tc.scope, ID: tc.id}) {
			t.Errorf("ParseIdentity(%q) = %+v, %v", got, key, err)
		}
	}
}

func TestHostileIdentitiesAreRefusedAndStoreNothing(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		tenant string
		scope  ratelimit.Scope
		id     string
	}{
		{"", ratelimit.ScopeUser, "alice"},
		{"Acme", ratelimit.ScopeUser, "alice"},
		{"ac:me", ratelimit.ScopeUser, "alice"},
		{"../etc", ratelimit.ScopeUser, "alice"},
		{"acme", "session", "alice"},
		{"acme", "", "alice"},
		{"acme", "USER", "alice"},
		{"acme", ratelimit.ScopeUser, ""},
		{"acme", ratelimit.ScopeUser, strings.Repeat("x", ratelimit.MaxIDLen+1)},
		{"acme", ratelimit.ScopeUser, "al\x00ice"},
		{"acme", ratelimit.ScopeUser, "\xff\xfe"},
	} {
		if got, err := ratelimit.Identity(tc.tenant, tc.scope, tc.id); !errors.Is(err, ratelimit.ErrBadIdentity) {
			t.Errorf("Identity(%q, %q, %q) = %q, %v", tc.tenant, tc.scope, tc.id, got, err)
		}
	}
	for _, identity := range []string{
		"acme", "acme:ratelimit", "acme:ratelimit:user", "acme:ratelimit:user:",
		"acme:session:user:alice", "Acme:ratelimit:user:alice", ":ratelimit:user:alice",
		"acme:ratelimit:admin:alice", "acme:x:ratelimit:user:alice", "acme:ratelimit:user:a\x00b",
		"acme:ratelimit:ip:\xff", "acme:ratelimit:user:" + strings.Repeat("x", ratelimit.MaxIDLen+1),
	} {
		if _, err := ratelimit.ParseIdentity(identity); !errors.Is(err, ratelimit.ErrBadIdentity) {
			t.Errorf("ParseIdentity(%q) accepted it", identity)
		}
		pid := e.spawn(identity)
		if f := ask[*grains.Failure](e, pid, &ratelimit.Check{Limits: &ratelimit.Limits{PerMinute: 10}}); f.Code != grains.CodeInvalidArgument {
			t.Errorf("check on %q: %+v", identity, f)
		}
		if f := ask[*grains.Failure](e, pid, &ratelimit.Refund{}); f.Code != grains.CodeInvalidArgument {
			t.Errorf("refund on %q: %+v", identity, f)
		}
		if err := e.system.Root.StopFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := e.badger.ScanKeys(context.Background(), "", func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 || e.store.puts.Load() != 0 {
		t.Fatalf("store holds %d keys (%d writes) after hostile identities", n, e.store.puts.Load())
	}
}

// TestACrowdedNodePassivatesLimitersOnceWritten: while Config.Crowded says
// the node hosts too many limiters, a limiter stops as soon as its
// counters are written and it has had nothing for FlushInterval (one in
// use is looked at again an interval later), long before IdleTimeout;
// the next activation knows its counts. On an uncrowded node it stays.
func TestACrowdedNodePassivatesLimitersOnceWritten(t *testing.T) {
	e := newEnv(t) // IdleTimeout a day
	var crowded atomic.Bool
	props, err := ratelimit.Props(ratelimit.Config{Store: e.store, Clock: e.clock, IdleTimeout: 24 * time.Hour,
		Crowded: crowded.Load, Logger: testkit.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	spawn := func(id string) *actor.PID { return testkit.SpawnGrain(t, e.system, props, ratelimit.Kind, id) }
	limits := &ratelimit.Limits{PerMinute: 10}
	written := func(n int64) {
		t.Helper()
		testkit.Eventually(t, 5*time.Second, func() error {
			if got := e.store.puts.Load(); got != n {
				return fmt.Errorf("%d writes, want %d", got, n)
			}
			return nil
		})
	}

	alice := identity(t, ratelimit.ScopeUser, "alice")
	pid := spawn(alice)
	e.probe.Watch(pid)
	e.check(pid, 3, limits)
	if !e.clock.WaitForTimers(2, 5*time.Second) { // idle check and write-behind
		t.Fatal("grain scheduled no write-behind")
	}
	e.clock.Advance(time.Second)
	written(1)
	e.clock.Advance(time.Minute)
	e.probe.ExpectNoMessage(50 * time.Millisecond) // not crowded: it stays

	crowded.Store(true)
	bob := identity(t, ratelimit.ScopeUser, "bob")
	pid = spawn(bob)
	e.probe.Watch(pid)
	e.check(pid, 2, limits)
	if !e.clock.WaitForTimers(3, 5*time.Second) { // alice's idle check; bob's idle check and write-behind
		t.Fatal("grain scheduled no write-behind")
	}
	// Crowded, a limiter writes after a quarter of the interval (250 ms).
	e.clock.Advance(time.Second / 8)
	e.check(pid, 1, limits) // in use: an eighth of the interval before its write
	e.clock.Advance(time.Second / 8)
	written(2)
	// Written, but idle only an eighth: looked at again a quarter later
	// (the write-behind's timer has fired; a new one joins the two idle
	// checks).
	if !e.clock.WaitForTimers(3, 5*time.Second) {
		t.Fatal("a crowded limiter in use scheduled no second look")
	}
	e.probe.ExpectNoMessage(50 * time.Millisecond)
	e.clock.Advance(time.Second / 4)
	e.probe.ExpectTerminated(pid, 5*time.Second)

	again := spawn(bob)
	want(t, "bob re-activated", e.check(again, 1, limits), true, 10-3-1, unix(2*time.Minute), 0)
}
