package badgerstore_test

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/badgerstore"
	"github.com/parley-chat/parley/persistence/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testLogger sends warnings and errors (Badger's included) to the test's
// log, shown when a test fails.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openBadger(t testing.TB, opts badgerstore.Options) *badgerstore.Store {
	t.Helper()
	opts.Logger = testLogger(t)
	s, err := badgerstore.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestBadgerConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persistence.Store {
		return openBadger(t, badgerstore.Options{InMemory: true})
	})
}

// TestBadgerConformanceOnDisk runs the suite through the value log and the
// directory lock too; NoSync only keeps it fast.
func TestBadgerConformanceOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("on-disk conformance is covered in memory in -short runs")
	}
	storetest.Run(t, func(t *testing.T) persistence.Store {
		return openBadger(t, badgerstore.Options{Dir: t.TempDir(), NoSync: true})
	})
}

func TestBadgerOptionsValidate(t *testing.T) {
	cases := []struct {
		opts  badgerstore.Options
		field string // named in the error; "" when valid
	}{
		{badgerstore.Options{Dir: "/data"}, ""},
		{badgerstore.Options{InMemory: true}, ""},
		{badgerstore.Options{}, "Dir"},
		{badgerstore.Options{InMemory: true, Dir: "/data"}, "Dir"},
		{badgerstore.Options{Dir: "/data", GCInterval: -time.Second}, "GCInterval"},
	}
	for _, tc := range cases {
		err := tc.opts.Validate()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", tc.opts, err)
		case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field)):
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.opts, err, tc.field)
		}
	}
	if _, err := badgerstore.Open(badgerstore.Options{}); err == nil {
		t.Error("Open with no Dir succeeded")
	}
}

func TestBadgerDataSurvivesReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // Open creates it
	ctx := t.Context()
	key := persistence.SessionKey{Tenant: "acme", Session: "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10"}
	kv := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "k"}
	msgs := []persistence.Message{
		{Seq: 1, ID: "a", Role: persistence.RoleUser, Content: "hello", TokenCount: 1, CreatedAt: t0},
		{Seq: 2, ID: "b", Role: persistence.RoleAssistant, Content: strings.Repeat("x", 2<<20), TokenCount: 2, CreatedAt: t0.Add(time.Second)},
	}

	s, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.Append(ctx, key, 0, msgs, persistence.AppendOptions{}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := s.Put(ctx, kv, []byte("value"), t0.Add(time.Hour), persistence.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openBadger(t, badgerstore.Options{Dir: dir})
	meta, err := s.Meta(ctx, key)
	if err != nil || meta != (persistence.SessionMeta{LastSeq: 2, FirstSeq: 1}) {
		t.Fatalf("Meta after reopen = %+v, %v", meta, err)
	}
	page, err := s.Page(ctx, key, 0, 10, time.Time{})
	if err != nil || len(page) != 2 {
		t.Fatalf("Page after reopen = %d messages, %v", len(page), err)
	}
	// The second message is over Badger's 1 MiB value threshold, so it
	// came back from the value log.
	for i, m := range page {
		want := msgs[len(msgs)-1-i]
		if m.Seq != want.Seq || m.ID != want.ID || m.Content != want.Content || !m.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("message %d after reopen = seq %d id %q (%d bytes), want seq %d id %q (%d bytes)",
				i, m.Seq, m.ID, len(m.Content), want.Seq, want.ID, len(want.Content))
		}
	}
	v, exp, ok, err := s.Get(ctx, kv, t0)
	if err != nil || !ok || string(v) != "value" || !exp.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Get after reopen = %q, %v, %v, %v", v, exp, ok, err)
	}
}

func TestBadgerDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	first := openBadger(t, badgerstore.Options{Dir: dir})

	second, err := badgerstore.Open(badgerstore.Options{Dir: dir, Logger: testLogger(t)})
	if err == nil {
		second.Close()
		t.Fatal("second Open on an open data dir succeeded")
	}
	if want := fmt.Sprintf("data dir %s is in use by another parley process", dir); !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open: %v, want it to say %q", err, want)
	}

	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	openBadger(t, badgerstore.Options{Dir: dir}) // the lock went with Close
}

func TestBadgerGCLoopStopsOnClose(t *testing.T) {
	ran := make(chan struct{}, 1)
	s, err := badgerstore.OpenWithGCHook(badgerstore.Options{
		Dir:        t.TempDir(),
		GCInterval: time.Millisecond,
		Logger:     testLogger(t),
	}, func() {
		select {
		case ran <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("no GC round within 10s at a 1ms interval")
	}
	select {
	case <-s.GCLoopDone():
		t.Fatal("GC loop ended before Close")
	default:
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.GCLoopDone():
	default:
		t.Fatal("GC loop still running after Close returned")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestBadgerInMemoryHasNoGCLoop(t *testing.T) {
	s := openBadger(t, badgerstore.Options{InMemory: true, GCInterval: time.Millisecond})
	select {
	case <-s.GCLoopDone():
	default:
		t.Fatal("an in-memory store started a GC loop")
	}
}

// uuid returns a distinct session id for each i.
func uuid(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-000000000000", i) }

func appendN(t *testing.T, s persistence.Store, key persistence.SessionKey, last uint64, n int, created time.Time, opts persistence.AppendOptions) persistence.SessionMeta {
	t.Helper()
	msgs := make([]persistence.Message, n)
	for i := range msgs {
		seq := last + uint64(i) + 1
		msgs[i] = persistence.Message{Seq: seq, ID: fmt.Sprint(seq), Role: persistence.RoleUser, Content: "c", CreatedAt: created}
	}
	meta, err := s.Append(t.Context(), key, last, msgs, opts)
	if err != nil {
		t.Fatalf("Append(%v, %d, %d messages): %v", key, last, n, err)
	}
	return meta
}

func pageSeqs(t *testing.T, s persistence.Store, key persistence.SessionKey) []uint64 {
	t.Helper()
	page, err := s.Page(t.Context(), key, 0, 1000, time.Time{})
	if err != nil {
		t.Fatalf("Page(%v): %v", key, err)
	}
	seqs := make([]uint64, len(page))
	for i, m := range page {
		seqs[i] = m.Seq
	}
	return seqs
}

func wantMeta(t *testing.T, s persistence.Store, key persistence.SessionKey, want persistence.SessionMeta) {
	t.Helper()
	got, err := s.Meta(t.Context(), key)
	if err != nil || got != want {
		t.Fatalf("Meta(%v) = %+v, %v; want %+v", key, got, err, want)
	}
}

// TestBadgerAppendRace makes a second writer commit between an Append's
// LastSeq check and its commit, the window two activations of one session
// can hit: Badger's conflict detection must fail the first Append with
// ErrSequenceConflict and keep the second writer's message.
func TestBadgerAppendRace(t *testing.T) {
	s := openBadger(t, badgerstore.Options{InMemory: true})
	ctx := t.Context()
	key := persistence.SessionKey{Tenant: "acme", Session: uuid(1)}
	appendN(t, s, key, 0, 1, t0, persistence.AppendOptions{})

	raced := false
	s.SetAppendRaced(func() {
		if raced {
			return // the second writer's own Append
		}
		raced = true
		other := persistence.Message{Seq: 2, ID: "other activation", Role: persistence.RoleUser, CreatedAt: t0}
		if _, err := s.Append(ctx, key, 1, []persistence.Message{other}, persistence.AppendOptions{}); err != nil {
			t.Errorf("second writer's Append: %v", err)
		}
	})
	mine := persistence.Message{Seq: 2, ID: "first activation", Role: persistence.RoleUser, CreatedAt: t0}
	if _, err := s.Append(ctx, key, 1, []persistence.Message{mine}, persistence.AppendOptions{}); !errors.Is(err, persistence.ErrSequenceConflict) {
		t.Fatalf("Append that lost the race: %v, want ErrSequenceConflict", err)
	}
	if !raced {
		t.Fatal("the race hook never ran")
	}
	wantMeta(t, s, key, persistence.SessionMeta{LastSeq: 2, FirstSeq: 1})
	page, err := s.Page(ctx, key, 0, 10, time.Time{})
	if err != nil || len(page) != 2 || page[0].ID != "other activation" {
		t.Fatalf("Page after the race = %+v, %v; want the second writer's message on top", page, err)
	}
}

func TestBadgerDeleteSessionInBatches(t *testing.T) {
	s := openBadger(t, badgerstore.Options{InMemory: true})
	s.SetBatchLimits(3, 2, 5)
	key := persistence.SessionKey{Tenant: "acme", Session: uuid(1)}
	neighbour := persistence.SessionKey{Tenant: "acme", Session: uuid(2)}
	appendN(t, s, key, 0, 10, t0, persistence.AppendOptions{})
	appendN(t, s, neighbour, 0, 4, t0, persistence.AppendOptions{})

	if err := s.DeleteSession(t.Context(), key); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	wantMeta(t, s, key, persistence.SessionMeta{})
	if seqs := pageSeqs(t, s, key); len(seqs) != 0 {
		t.Fatalf("deleted session still pages %v", seqs)
	}
	wantMeta(t, s, neighbour, persistence.SessionMeta{LastSeq: 4, FirstSeq: 1})
	if seqs := pageSeqs(t, s, neighbour); len(seqs) != 4 {
		t.Fatalf("neighbour pages %v", seqs)
	}
}

// TestBadgerTrimCatchesUp lowers MaxMessages far below the session's size:
// each append trims at most trimPerAppend (2 here) old messages until the cap
// holds.
func TestBadgerTrimCatchesUp(t *testing.T) {
	s := openBadger(t, badgerstore.Options{InMemory: true})
	s.SetBatchLimits(3, 2, 5)
	key := persistence.SessionKey{Tenant: "acme", Session: uuid(1)}
	capped := persistence.AppendOptions{MaxMessages: 2}

	meta := appendN(t, s, key, 0, 10, t0, persistence.AppendOptions{})
	wantFirst := []uint64{3, 5, 7, 9, 11, 13, 15, 17, 18, 19}
	for i, first := range wantFirst {
		meta = appendN(t, s, key, meta.LastSeq, 1, t0, capped)
		if want := (persistence.SessionMeta{LastSeq: uint64(11 + i), FirstSeq: first}); meta != want {
			t.Fatalf("append %d with a cap of 2 = %+v, want %+v", i, meta, want)
		}
		if seqs := pageSeqs(t, s, key); uint64(len(seqs)) != meta.LastSeq-meta.FirstSeq+1 || seqs[len(seqs)-1] != first {
			t.Fatalf("append %d: page %v disagrees with %+v", i, seqs, meta)
		}
	}
}

// TestBadgerSweepInChunks makes the sweep's scan stop and resume many times
// (5 keys per chunk, 3 deletes per transaction) across sessions, KV entries
// and tenants.
func TestBadgerSweepInChunks(t *testing.T) {
	s := openBadger(t, badgerstore.Options{InMemory: true})
	s.SetBatchLimits(3, 2, 5)
	ctx := t.Context()
	now := t0.Add(24 * time.Hour)
	old, fresh := t0, now.Add(-time.Minute)

	var partly, whole, kept []persistence.SessionKey
	for i := range 7 { // 4 aged messages, then a fresh one
		key := persistence.SessionKey{Tenant: "acme", Session: uuid(i)}
		appendN(t, s, key, appendN(t, s, key, 0, 4, old, persistence.AppendOptions{}).LastSeq, 1, fresh, persistence.AppendOptions{})
		partly = append(partly, key)
	}
	for i := range 2 { // 5 aged messages: more than one delete batch
		key := persistence.SessionKey{Tenant: "acme", Session: uuid(100 + i)}
		appendN(t, s, key, 0, 5, old, persistence.AppendOptions{})
		whole = append(whole, key)
	}
	for i := range 3 { // a tenant that keeps everything
		key := persistence.SessionKey{Tenant: "globex", Session: uuid(i)}
		appendN(t, s, key, 0, 3, old, persistence.AppendOptions{})
		kept = append(kept, key)
	}
	for i := range 8 {
		kv := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: fmt.Sprint("expired-", i)}
		if err := s.Put(ctx, kv, []byte("v"), now, persistence.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		kv := persistence.KVKey{Tenant: "globex", Space: persistence.SpaceRateLimit, Key: fmt.Sprint("live-", i)}
		if err := s.Put(ctx, kv, []byte("v"), now.Add(time.Second), persistence.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	retention := func(tenant string) time.Duration {
		if tenant == "acme" {
			return time.Hour
		}
		return 0
	}
	stats, err := s.Sweep(ctx, now, retention)
	if want := (persistence.SweepStats{Messages: 7*4 + 2*5, KVEntries: 8, Sessions: 2}); err != nil || stats != want {
		t.Fatalf("Sweep = %+v, %v; want %+v", stats, err, want)
	}
	for _, key := range partly {
		wantMeta(t, s, key, persistence.SessionMeta{LastSeq: 5, FirstSeq: 5})
	}
	for _, key := range whole {
		wantMeta(t, s, key, persistence.SessionMeta{LastSeq: 5, FirstSeq: 0})
		if seqs := pageSeqs(t, s, key); len(seqs) != 0 {
			t.Fatalf("swept session %v still pages %v", key, seqs)
		}
	}
	for _, key := range kept {
		if seqs := pageSeqs(t, s, key); len(seqs) != 3 {
			t.Fatalf("session %v of a tenant without retention pages %v", key, seqs)
		}
	}
	for i := range 3 {
		kv := persistence.KVKey{Tenant: "globex", Space: persistence.SpaceRateLimit, Key: fmt.Sprint("live-", i)}
		if _, _, ok, err := s.Get(ctx, kv, t0); err != nil || !ok {
			t.Fatalf("live entry %d: ok %v, err %v", i, ok, err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	s := openBadger(b, badgerstore.Options{Dir: b.TempDir()}) // SyncWrites on
	key := persistence.SessionKey{Tenant: "acme", Session: uuid(1)}
	content := strings.Repeat("a typical chat line ", 10)
	var last uint64
	for b.Loop() {
		m := persistence.Message{Seq: last + 1, ID: "msg", Role: persistence.RoleUser, Content: content, TokenCount: 40, CreatedAt: t0}
		if _, err := s.Append(b.Context(), key, last, []persistence.Message{m}, persistence.AppendOptions{MaxMessages: 1000}); err != nil {
			b.Fatal(err)
		}
		last++
	}
}

func BenchmarkPage100(b *testing.B) {
	s := openBadger(b, badgerstore.Options{Dir: b.TempDir()})
	key := persistence.SessionKey{Tenant: "acme", Session: uuid(1)}
	content := strings.Repeat("a typical chat line ", 10)
	for batch := range 10 {
		msgs := make([]persistence.Message, 100)
		for i := range msgs {
			seq := uint64(batch*100 + i + 1)
			msgs[i] = persistence.Message{Seq: seq, ID: "msg", Role: persistence.RoleAssistant, Content: content, TokenCount: 40, CreatedAt: t0}
		}
		if _, err := s.Append(b.Context(), key, uint64(batch*100), msgs, persistence.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		page, err := s.Page(b.Context(), key, 0, 100, time.Time{})
		if err != nil || len(page) != 100 || page[0].Seq != 1000 {
			b.Fatalf("Page = %d messages, %v", len(page), err)
		}
	}
}

// TestBadgerSmallConformance runs the suite on the small-footprint store
// the rate-limit counters use.
func TestBadgerSmallConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("on-disk conformance is covered in memory in -short runs")
	}
	storetest.Run(t, func(t *testing.T) persistence.Store {
		return openBadger(t, badgerstore.Options{Dir: t.TempDir(), NoSync: true, Small: true})
	})
}

// TestBadgerSmallSweepsManyEntries: a small store's memtables take
// transactions of at most about 600 KB, far less than 10,000 deletes of
// long keys; its sweep still removes 3,000 expired entries with 512-byte
// keys, through memtable flushes, and keeps the live ones.
func TestBadgerSmallSweepsManyEntries(t *testing.T) {
	s := openBadger(t, badgerstore.Options{Dir: t.TempDir(), NoSync: true, Small: true})
	ctx := t.Context()
	now := t0.Add(time.Hour)
	key := func(i int) persistence.KVKey {
		id := fmt.Sprintf("%06d-", i)
		return persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: id + strings.Repeat("x", 512-len(id))}
	}
	const expired, live = 3_000, 50
	for i := range expired + live {
		exp := now
		if i >= expired {
			exp = now.Add(time.Minute)
		}
		if err := s.Put(ctx, key(i), []byte("counters"), exp, persistence.PutOptions{}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	stats, err := s.Sweep(ctx, now, nil)
	if err != nil || stats.KVEntries != expired {
		t.Fatalf("Sweep = %+v, %v; want %d entries removed", stats, err, expired)
	}
	for _, i := range []int{0, expired - 1, expired, expired + live - 1} {
		_, _, ok, err := s.Get(ctx, key(i), now.Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= expired; ok != want {
			t.Errorf("entry %d present = %v after the sweep, want %v", i, ok, want)
		}
	}
}
