package session_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/google/uuid"

	"github.com/parley-chat/parley/actors/grains"
	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
	"github.com/parley-chat/parley/persistence/sweeper"
)

// env is one grain-level test's world: an actor system, an in-memory
// Badger store, a fake clock and a probe.
type env struct {
	t      *testing.T
	system *actor.ActorSystem
	store  *badgerstore.Store
	clock  *testkit.FakeClock
	probe  *testkit.Probe
	props  *actor.Props
}

// newEnv gives sessions an idle timeout of a year, so that tests moving
// the clock by days see no passivation; the passivation test sets its own.
func newEnv(t *testing.T, retention session.Retention) *env {
	return newEnvIdle(t, retention, 365*24*time.Hour)
}

func newEnvIdle(t *testing.T, retention session.Retention, idle time.Duration) *env {
	t.Helper()
	store := testkit.OpenStore(t, "")
	e := &env{t: t, system: testkit.NewActorSystem(t), store: store, clock: testkit.NewFakeClock(time.Time{})}
	e.probe = testkit.NewProbe(t, e.system)
	var err error
	e.props, err = session.Props(session.Config{
		Store:       store,
		Clock:       e.clock,
		Retention:   func(string) session.Retention { return retention },
		IdleTimeout: idle,
		Logger:      testkit.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) spawn(identity string) *actor.PID {
	return testkit.SpawnGrain(e.t, e.system, e.props, session.Kind, identity)
}

func ask[T any](e *env, pid *actor.PID, msg any) T {
	e.t.Helper()
	e.probe.Request(pid, msg)
	return testkit.ExpectMessage[T](e.probe, 5*time.Second)
}

func (e *env) append(pid *actor.PID, content string) *session.Message {
	e.t.Helper()
	return ask[*session.Appended](e, pid, &session.Append{Role: "user", Content: content, TokenCount: 3}).Message
}

func newIdentity(t *testing.T, tenant string) string {
	t.Helper()
	id, err := session.Identity(tenant, uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAppendNumbersMessagesAndStampsThemWithTheClock(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	pid := e.spawn(newIdentity(t, "acme"))
	ids := map[string]bool{}
	for i := 1; i <= 3; i++ {
		e.clock.Advance(time.Second)
		m := e.append(pid, fmt.Sprintf("m%d", i))
		if m.Seq != uint64(i) || m.Role != "user" || m.TokenCount != 3 || m.Content != fmt.Sprintf("m%d", i) {
			t.Fatalf("append %d stored %+v", i, m)
		}
		if got := time.Unix(0, m.CreatedAtUnixNano); !got.Equal(e.clock.Now()) {
			t.Fatalf("createdAt %s, clock says %s", got, e.clock.Now())
		}
		if ids[m.Id] {
			t.Fatalf("id %s reused", m.Id)
		}
		ids[m.Id] = true
	}
}

func TestHistoryPagesNewestFirstReturningEveryMessageOnce(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	pid := e.spawn(newIdentity(t, "acme"))
	const total = 230
	for i := 1; i <= total; i++ {
		e.append(pid, fmt.Sprintf("m%d", i))
	}

	var seen []uint64
	var before uint64
	for pages := 0; ; pages++ {
		page := ask[*session.Page](e, pid, &session.History{Limit: 100, Before: before})
		for _, m := range page.Messages {
			seen = append(seen, m.Seq)
		}
		if page.NextBefore == 0 {
			if pages != 2 || len(page.Messages) != 30 {
				t.Fatalf("last page was page %d with %d messages", pages+1, len(page.Messages))
			}
			break
		}
		before = page.NextBefore
	}
	if len(seen) != total {
		t.Fatalf("pages returned %d messages, want %d", len(seen), total)
	}
	for i, seq := range seen {
		if want := uint64(total - i); seq != want {
			t.Fatalf("message %d of the walk is seq %d, want %d (newest first, each once)", i, seq, want)
		}
	}

	if n := len(ask[*session.Page](e, pid, &session.History{}).Messages); n != session.DefaultHistoryLimit {
		t.Errorf("default page has %d messages, want %d", n, session.DefaultHistoryLimit)
	}
	for _, bad := range []int32{-1, 101} {
		f := ask[*grains.Failure](e, pid, &session.History{Limit: bad})
		if f.Code != grains.CodeInvalidArgument {
			t.Errorf("limit %d: %+v", bad, f)
		}
	}
}

func TestRetentionByCountKeepsTheNewest(t *testing.T) {
	e := newEnv(t, session.Retention{MaxMessages: 5, MaxAge: 24 * time.Hour})
	pid := e.spawn(newIdentity(t, "acme"))
	for i := 1; i <= 8; i++ {
		e.append(pid, fmt.Sprintf("m%d", i))
	}
	page := ask[*session.Page](e, pid, &session.History{Limit: 100})
	if len(page.Messages) != 5 || page.Messages[0].Seq != 8 || page.Messages[4].Seq != 4 {
		t.Fatalf("kept %d messages, newest %d", len(page.Messages), page.Messages[0].Seq)
	}
	if next := e.append(pid, "m9"); next.Seq != 9 {
		t.Fatalf("sequence went on at %d, want 9", next.Seq)
	}
}

func TestRetentionByAgeHidesAtOnceAndTheSweepDeletes(t *testing.T) {
	e := newEnv(t, session.Retention{MaxMessages: 1000, MaxAge: 30 * 24 * time.Hour})
	identity := newIdentity(t, "acme")
	key, _ := session.ParseIdentity(identity)
	pid := e.spawn(identity)
	e.append(pid, "old")
	e.clock.Advance(29 * 24 * time.Hour)
	e.append(pid, "recent")

	e.clock.Advance(2 * 24 * time.Hour) // "old" is now 31 days old
	page := ask[*session.Page](e, pid, &session.History{})
	if len(page.Messages) != 1 || page.Messages[0].Content != "recent" {
		t.Fatalf("history after 31 days: %+v", page.Messages)
	}

	// Nobody touches the session again; the sweep still removes the
	// expired message from disk.
	sw := sweeper.Start(sweeper.Config{Stores: map[string]persistence.Store{"sessions": e.store}, Clock: e.clock, Interval: time.Hour, Logger: testkit.NewLogger(t),
		Retention: func(string) time.Duration { return 30 * 24 * time.Hour }})
	t.Cleanup(sw.Stop)
	stored := func() int {
		msgs, err := e.store.Page(context.Background(), key, 0, 100, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs)
	}
	if stored() != 2 {
		t.Fatalf("before the sweep the store holds %d messages", stored())
	}
	e.clock.Advance(time.Hour)
	if got := stored(); got != 1 {
		t.Fatalf("after the sweep the store holds %d messages, want 1", got)
	}
	if got := sw.Stats(); got.Messages != 1 || got.Runs != 1 {
		t.Fatalf("sweeper stats %+v", got)
	}
}

func TestIdleSessionPassivatesAndReactivatesWithItsSequence(t *testing.T) {
	e := newEnvIdle(t, session.DefaultRetention, 5*time.Minute)
	identity := newIdentity(t, "acme")
	pid := e.spawn(identity)
	e.append(pid, "one")
	e.append(pid, "two")
	e.probe.Watch(pid)

	e.clock.Advance(4 * time.Minute)
	e.append(pid, "three") // activity pushes passivation back
	e.clock.Advance(4 * time.Minute)
	e.probe.ExpectNoMessage(50 * time.Millisecond)

	if !e.clock.WaitForTimers(1, 5*time.Second) {
		t.Fatal("grain scheduled no idle check")
	}
	e.clock.Advance(time.Minute)
	e.probe.ExpectTerminated(pid, 5*time.Second)

	again := e.spawn(identity)
	if m := e.append(again, "four"); m.Seq != 4 {
		t.Fatalf("re-activated session appended seq %d, want 4", m.Seq)
	}
}

func TestClearEmptiesTheSession(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	pid := e.spawn(newIdentity(t, "acme"))
	e.append(pid, "a")
	e.append(pid, "b")
	ask[*session.Cleared](e, pid, &session.Clear{})
	if page := ask[*session.Page](e, pid, &session.History{}); len(page.Messages) != 0 {
		t.Fatalf("history after clear: %+v", page.Messages)
	}
	if m := e.append(pid, "c"); m.Seq != 1 {
		t.Fatalf("first append after clear is seq %d", m.Seq)
	}
}

func TestBadRequestsAreRefusedAndStoreNothing(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	identity := newIdentity(t, "acme")
	key, _ := session.ParseIdentity(identity)
	pid := e.spawn(identity)
	for _, req := range []*session.Append{
		{Role: "admin", Content: "x"},
		{Role: "user", Content: ""},
		{Role: "user", Content: "\xff\xfe"},
		{Role: "user", Content: "x", TokenCount: -1},
	} {
		if f := ask[*grains.Failure](e, pid, req); f.Code != grains.CodeInvalidArgument {
			t.Errorf("%+v: %+v", req, f)
		}
	}
	meta, err := e.store.Meta(context.Background(), key)
	if err != nil || meta.LastSeq != 0 {
		t.Fatalf("store after bad appends: %+v %v", meta, err)
	}
}

func TestHostileIdentityNeverReachesStorage(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	for _, identity := range []string{
		"acme", "Acme:" + uuid.NewString(), "acme:not-a-uuid", "../etc:" + uuid.NewString(),
		"acme:" + uuid.NewString() + ":x", ":" + uuid.NewString(), "acme:" + uuid.NewString() + "\x00",
	} {
		if _, err := session.ParseIdentity(identity); err == nil {
			t.Errorf("ParseIdentity(%q) accepted it", identity)
		}
		pid := e.spawn(identity)
		if f := ask[*grains.Failure](e, pid, &session.Append{Role: "user", Content: "x"}); f.Code != grains.CodeInvalidArgument {
			t.Errorf("%q: %+v", identity, f)
		}
	}
	if n := countKeys(t, e.store); n != 0 {
		t.Fatalf("store holds %d keys after hostile identities", n)
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

func TestTwoActivationsOfOneSessionNeverLoseOrDuplicate(t *testing.T) {
	e := newEnv(t, session.DefaultRetention)
	identity := newIdentity(t, "acme")
	first, second := e.spawn(identity), e.spawn(identity)

	const each = 40
	var wg sync.WaitGroup
	for _, pid := range []*actor.PID{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Under this much contention an append can give up
				// ("unavailable", nothing stored); the caller retries,
				// as the HTTP edge's client would.
				for try := 0; ; try++ {
					res, err := e.system.Root.RequestFuture(pid, &session.Append{Role: "user", Content: fmt.Sprintf("%s-%d", pid.Id, i)}, 5*time.Second).Result()
					if _, ok := res.(*session.Appended); ok {
						break
					}
					if f, ok := res.(*grains.Failure); err != nil || !ok || f.Code != grains.CodeUnavailable || try == 20 {
						t.Errorf("append via %s: %v %v", pid.Id, res, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()

	page := ask[*session.Page](e, first, &session.History{Limit: 100})
	if len(page.Messages) != 2*each {
		t.Fatalf("history holds %d messages, want %d", len(page.Messages), 2*each)
	}
	contents := map[string]bool{}
	for i, m := range page.Messages {
		if want := uint64(2*each - i); m.Seq != want {
			t.Fatalf("seq %d at position %d, want %d: a gap or duplicate", m.Seq, i, want)
		}
		if contents[m.Content] {
			t.Fatalf("%q stored twice", m.Content)
		}
		contents[m.Content] = true
	}
}

func clusterIdentity(props *actor.Props, identity string) *actor.Props {
	return cluster.WithClusterIdentity(props, cluster.NewClusterIdentity(identity, session.Kind))
}
