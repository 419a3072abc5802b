// Package storetest is the conformance suite of persistence.Store. Every
// implementation (the Badger store today, a replicated one later) runs it
// from its own tests, so that grains can rely on the contract written in the
// persistence interfaces and not on one implementation's habits:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) persistence.Store { … })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

// Run runs the suite against stores made by open. open is called once per
// subtest and must return a new, empty store; Run closes it when the subtest
// ends (Close must be idempotent, so open may also register its own cleanup).
// Subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s persistence.Store)
	}{
		{"AppendMetaPage", testAppendMetaPage},
		{"RoundTrip", testRoundTrip},
		{"PageLimitClamp", testPageLimitClamp},
		{"SequenceConflict", testSequenceConflict},
		{"BadAppend", testBadAppend},
		{"ConcurrentAppendersOneWins", testConcurrentAppendersOneWins},
		{"ConcurrentAppendersRetry", testConcurrentAppendersRetry},
		{"MaxMessages", testMaxMessages},
		{"NotBefore", testNotBefore},
		{"DeleteSession", testDeleteSession},
		{"TenantIsolation", testTenantIsolation},
		{"InvalidKeys", testInvalidKeys},
		{"ValidKeyEdges", testValidKeyEdges},
		{"KV", testKV},
		{"KVExpiry", testKVExpiry},
		{"KVAndSessionsApart", testKVAndSessionsApart},
		{"Sweep", testSweep},
		{"SweepDuringAppends", testSweepDuringAppends},
		{"DeleteSessionDuringAppends", testDeleteSessionDuringAppends},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// Fixed inputs. All times derive from t0; stores must not read a clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	sid1 = "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10"
	sid2 = "0c9b8a7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
	sid3 = "ffffffff-ffff-4fff-bfff-ffffffffffff"
)

// message returns the message the suite stores at seq unless a test needs
// another: every field is derived from seq, so a read can be checked against
// it.
func message(seq uint64) persistence.Message {
	role := persistence.RoleUser
	if seq%2 == 0 {
		role = persistence.RoleAssistant
	}
	return persistence.Message{
		Seq:        seq,
		ID:         fmt.Sprintf("m%d", seq),
		Role:       role,
		Content:    fmt.Sprintf("content of message %d", seq),
		TokenCount: int(seq) * 3,
		CreatedAt:  t0.Add(time.Duration(seq) * time.Second),
	}
}

// messages returns n messages from seq first on, created by created (nil:
// message's own CreatedAt).
func messages(first uint64, n int, created func(seq uint64) time.Time) []persistence.Message {
	out := make([]persistence.Message, n)
	for i := range out {
		out[i] = message(first + uint64(i))
		if created != nil {
			out[i].CreatedAt = created(out[i].Seq)
		}
	}
	return out
}

func mustAppend(t *testing.T, s persistence.Store, key persistence.SessionKey, expectedLast uint64, msgs []persistence.Message, opts persistence.AppendOptions) persistence.SessionMeta {
	t.Helper()
	meta, err := s.Append(t.Context(), key, expectedLast, msgs, opts)
	if err != nil {
		t.Fatalf("Append(%v, expectedLast %d, %d messages): %v", key, expectedLast, len(msgs), err)
	}
	return meta
}

func mustPage(t *testing.T, s persistence.Store, key persistence.SessionKey, before uint64, limit int, notBefore time.Time) []persistence.Message {
	t.Helper()
	page, err := s.Page(t.Context(), key, before, limit, notBefore)
	if err != nil {
		t.Fatalf("Page(%v, before %d, limit %d): %v", key, before, limit, err)
	}
	return page
}

func checkMeta(t *testing.T, s persistence.Store, key persistence.SessionKey, want persistence.SessionMeta) {
	t.Helper()
	got, err := s.Meta(t.Context(), key)
	if err != nil {
		t.Fatalf("Meta(%v): %v", key, err)
	}
	if got != want {
		t.Fatalf("Meta(%v) = %+v, want %+v", key, got, want)
	}
}

// checkSeqs fails unless page holds exactly the sequences want, in order.
func checkSeqs(t *testing.T, what string, page []persistence.Message, want []uint64) {
	t.Helper()
	got := make([]uint64, len(page))
	for i, m := range page {
		got[i] = m.Seq
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: sequences %v, want %v", what, got, want)
	}
}

// newestFirst returns from, from-1, …, to.
func newestFirst(from, to uint64) []uint64 {
	var out []uint64
	for seq := from; seq >= to && seq > 0; seq-- {
		out = append(out, seq)
	}
	return out
}

func checkMessage(t *testing.T, got, want persistence.Message) {
	t.Helper()
	if got.Seq != want.Seq || got.ID != want.ID || got.Role != want.Role || got.Content != want.Content ||
		got.TokenCount != want.TokenCount || !got.CreatedAt.Equal(want.CreatedAt) || got.IdempotencyKey != want.IdempotencyKey || got.FinishReason != want.FinishReason {
		t.Fatalf("message:\n got  %+v\n want %+v", got, want)
	}
}

func checkKV(t *testing.T, s persistence.Store, key persistence.KVKey, now time.Time, want string, wantExp time.Time) {
	t.Helper()
	v, exp, ok, err := s.Get(t.Context(), key, now)
	if err != nil || !ok {
		t.Fatalf("Get(%v) at %v = ok %v, err %v; want a hit", key, now, ok, err)
	}
	if string(v) != want || !exp.Equal(wantExp) {
		t.Fatalf("Get(%v) = %q expiring %v, want %q expiring %v", key, v, exp, want, wantExp)
	}
}

func checkKVMiss(t *testing.T, s persistence.Store, key persistence.KVKey, now time.Time) {
	t.Helper()
	v, _, ok, err := s.Get(t.Context(), key, now)
	if err != nil || ok {
		t.Fatalf("Get(%v) at %v = %q, ok %v, err %v; want a miss", key, now, v, ok, err)
	}
}

func mustPut(t *testing.T, s persistence.Store, key persistence.KVKey, value string, expiresAt time.Time) {
	t.Helper()
	if err := s.Put(t.Context(), key, []byte(value), expiresAt); err != nil {
		t.Fatalf("Put(%v): %v", key, err)
	}
}

func testAppendMetaPage(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	checkMeta(t, s, key, persistence.SessionMeta{})
	checkSeqs(t, "page of a session never written", mustPage(t, s, key, 0, 100, time.Time{}), nil)

	for i := range 25 {
		last := uint64(i * 10)
		meta := mustAppend(t, s, key, last, messages(last+1, 10, nil), persistence.AppendOptions{})
		if want := (persistence.SessionMeta{LastSeq: last + 10, FirstSeq: 1}); meta != want {
			t.Fatalf("Append %d returned %+v, want %+v", i, meta, want)
		}
	}
	checkMeta(t, s, key, persistence.SessionMeta{LastSeq: 250, FirstSeq: 1})

	// Walk the history newest first with the last seq of each page as the
	// next cursor, as the history endpoint does.
	page := mustPage(t, s, key, 0, 100, time.Time{})
	checkSeqs(t, "first page", page, newestFirst(250, 151))
	for _, m := range page {
		checkMessage(t, m, message(m.Seq))
	}
	page = mustPage(t, s, key, page[len(page)-1].Seq, 100, time.Time{})
	checkSeqs(t, "second page", page, newestFirst(150, 51))
	page = mustPage(t, s, key, page[len(page)-1].Seq, 100, time.Time{})
	checkSeqs(t, "last page", page, newestFirst(50, 1))
	checkMessage(t, page[len(page)-1], message(1))
	checkSeqs(t, "page past the oldest", mustPage(t, s, key, 1, 100, time.Time{}), nil)

	checkSeqs(t, "cursor past the newest", mustPage(t, s, key, 1000, 3, time.Time{}), newestFirst(250, 248))
	checkSeqs(t, "cursor in the middle", mustPage(t, s, key, 7, 3, time.Time{}), newestFirst(6, 4))
	checkSeqs(t, "limit 0 means 1", mustPage(t, s, key, 0, 0, time.Time{}), []uint64{250})
	checkSeqs(t, "negative limit means 1", mustPage(t, s, key, 0, -5, time.Time{}), []uint64{250})
}

func testRoundTrip(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	want := []persistence.Message{
		{Seq: 1, ID: "", Role: persistence.RoleSystem, Content: "", TokenCount: 0, CreatedAt: time.Time{}},
		{Seq: 2, ID: "01J-ü/:x", Role: persistence.RoleUser, Content: "héllo\n\x00\"world\" 🎉",
			TokenCount: -1, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, zone), IdempotencyKey: "req-7f3a:retry/1"},
		{Seq: 3, ID: strings.Repeat("i", 200), Role: persistence.RoleAssistant, Content: strings.Repeat("long ", 2000),
			TokenCount: 1 << 30, CreatedAt: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), IdempotencyKey: strings.Repeat("k", 128) + "\xff\x00",
			FinishReason: "error"},
	}
	mustAppend(t, s, key, 0, want, persistence.AppendOptions{})
	page := mustPage(t, s, key, 0, 10, time.Time{})
	checkSeqs(t, "page", page, []uint64{3, 2, 1})
	for i, m := range page {
		checkMessage(t, m, want[len(want)-1-i])
	}
}

func testPageLimitClamp(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	mustAppend(t, s, key, 0, messages(1, 1001, nil), persistence.AppendOptions{})
	checkMeta(t, s, key, persistence.SessionMeta{LastSeq: 1001, FirstSeq: 1})
	checkSeqs(t, "limit 5000", mustPage(t, s, key, 0, 5000, time.Time{}), newestFirst(1001, 2))
}

func testSequenceConflict(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	mustAppend(t, s, key, 0, messages(1, 3, nil), persistence.AppendOptions{})

	for _, stale := range []uint64{0, 2, 4, 100} {
		msgs := messages(stale+1, 1, nil)
		msgs[0].Content = "must not be stored"
		meta, err := s.Append(t.Context(), key, stale, msgs, persistence.AppendOptions{MaxMessages: 1})
		if !errors.Is(err, persistence.ErrSequenceConflict) {
			t.Fatalf("Append with expectedLast %d on a session at 3: %+v, %v; want ErrSequenceConflict", stale, meta, err)
		}
	}
	checkMeta(t, s, key, persistence.SessionMeta{LastSeq: 3, FirstSeq: 1})
	page := mustPage(t, s, key, 0, 10, time.Time{})
	checkSeqs(t, "after conflicts", page, []uint64{3, 2, 1})
	for _, m := range page {
		checkMessage(t, m, message(m.Seq))
	}

	// The caller's reload-and-retry then succeeds.
	meta := mustAppend(t, s, key, 3, messages(4, 1, nil), persistence.AppendOptions{})
	if meta != (persistence.SessionMeta{LastSeq: 4, FirstSeq: 1}) {
		t.Fatalf("Append after the conflicts returned %+v", meta)
	}
}

func testBadAppend(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	fresh := persistence.SessionKey{Tenant: "acme", Session: sid2}
	mustAppend(t, s, key, 0, messages(1, 3, nil), persistence.AppendOptions{})

	withSeqs := func(seqs ...uint64) []persistence.Message {
		out := make([]persistence.Message, len(seqs))
		for i, seq := range seqs {
			out[i] = message(seq)
		}
		return out
	}
	cases := []struct {
		name         string
		key          persistence.SessionKey
		expectedLast uint64
		msgs         []persistence.Message
	}{
		{"starts past expectedLast+1", fresh, 0, withSeqs(2, 3)},
		{"gap", fresh, 0, withSeqs(1, 3)},
		{"duplicate", fresh, 0, withSeqs(1, 1)},
		{"seq zero", fresh, 0, withSeqs(0)},
		{"descending", fresh, 0, withSeqs(2, 1)},
		{"rewrites the last", key, 3, withSeqs(3, 4)},
		{"skips one", key, 3, withSeqs(5)},
	}
	for _, tc := range cases {
		_, err := s.Append(t.Context(), tc.key, tc.expectedLast, tc.msgs, persistence.AppendOptions{})
		if err == nil || errors.Is(err, persistence.ErrSequenceConflict) {
			t.Fatalf("%s: Append = %v, want an error other than ErrSequenceConflict", tc.name, err)
		}
	}
	checkMeta(t, s, fresh, persistence.SessionMeta{})
	checkSeqs(t, "fresh session", mustPage(t, s, fresh, 0, 10, time.Time{}), nil)
	checkMeta(t, s, key, persistence.SessionMeta{LastSeq: 3, FirstSeq: 1})
	page := mustPage(t, s, key, 0, 10, time.Time{})
	checkSeqs(t, "written session", page, []uint64{3, 2, 1})
	checkMessage(t, page[0], message(3))
}

// testConcurrentAppendersOneWins races writers that all saw the same LastSeq,
// as two activations of one session would during a membership change.
func testConcurrentAppendersOneWins(t *testing.T, s persistence.Store) {
	const writers, rounds = 16, 10
	ctx := t.Context()
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	mustAppend(t, s, key, 0, messages(1, 1, nil), persistence.AppendOptions{})

	for round := range rounds {
		last := uint64(round + 1)
		errs := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				m := message(last + 1)
				m.ID = fmt.Sprintf("round %d writer %d", round, w)
				<-start
				_, errs[w] = s.Append(ctx, key, last, []persistence.Message{m}, persistence.AppendOptions{MaxMessages: 5})
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both appended seq %d", round, winner, w, last+1)
			case err == nil:
				winner = w
			case !errors.Is(err, persistence.ErrSequenceConflict):
				t.Fatalf("round %d: writer %d: %v, want nil or ErrSequenceConflict", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer appended", round)
		}
		first := uint64(1)
		if last+1 > 5 {
			first = last + 1 - 4 // MaxMessages 5 keeps last-3 .. last+1
		}
		checkMeta(t, s, key, persistence.SessionMeta{LastSeq: last + 1, FirstSeq: first})
		page := mustPage(t, s, key, 0, 1, time.Time{})
		if want := fmt.Sprintf("round %d writer %d", round, winner); len(page) != 1 || page[0].ID != want {
			t.Fatalf("round %d: newest message %+v, want the winner's %q", round, page, want)
		}
	}
}

// testConcurrentAppendersRetry has writers reload and retry on conflict, as
// the session grain does: every message lands exactly once, without gaps.
func testConcurrentAppendersRetry(t *testing.T, s persistence.Store) {
	const writers, perWriter, maxAttempts = 8, 10, 10_000
	ctx := t.Context()
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				for attempt := 0; ; attempt++ {
					if attempt == maxAttempts {
						t.Errorf("writer %d: message %d still conflicting after %d attempts", w, i, attempt)
						return
					}
					meta, err := s.Meta(ctx, key)
					if err != nil {
						t.Errorf("writer %d: Meta: %v", w, err)
						return
					}
					m := message(meta.LastSeq + 1)
					m.ID = fmt.Sprintf("w%d-%d", w, i)
					_, err = s.Append(ctx, key, meta.LastSeq, []persistence.Message{m}, persistence.AppendOptions{})
					if err == nil {
						break
					}
					if !errors.Is(err, persistence.ErrSequenceConflict) {
						t.Errorf("writer %d: Append: %v", w, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	const total = writers * perWriter
	checkMeta(t, s, key, persistence.SessionMeta{LastSeq: total, FirstSeq: 1})
	page := mustPage(t, s, key, 0, 1000, time.Time{})
	checkSeqs(t, "all messages", page, newestFirst(total, 1))
	var got, want []string
	for _, m := range page {
		got = append(got, m.ID)
	}
	for w := range writers {
		for i := range perWriter {
			want = append(want, fmt.Sprintf("w%d-%d", w, i))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("stored ids %v, want each of %v once", got, want)
	}
}

func testMaxMessages(t *testing.T, s persistence.Store) {
	capped := persistence.AppendOptions{MaxMessages: 5}
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	steps := []struct {
		n    int
		opts persistence.AppendOptions
		want persistence.SessionMeta
	}{
		{3, capped, persistence.SessionMeta{LastSeq: 3, FirstSeq: 1}},
		{4, capped, persistence.SessionMeta{LastSeq: 7, FirstSeq: 3}},
		{1, capped, persistence.SessionMeta{LastSeq: 8, FirstSeq: 4}},
		{3, persistence.AppendOptions{}, persistence.SessionMeta{LastSeq: 11, FirstSeq: 4}}, // no cap
		{1, persistence.AppendOptions{MaxMessages: 2}, persistence.SessionMeta{LastSeq: 12, FirstSeq: 11}},
	}
	var last uint64
	for i, step := range steps {
		meta, err := s.Append(t.Context(), key, last, messages(last+1, step.n, nil), step.opts)
		if err != nil || meta != step.want {
			t.Fatalf("step %d: Append = %+v, %v; want %+v", i, meta, err, step.want)
		}
		checkMeta(t, s, key, step.want)
		checkSeqs(t, fmt.Sprintf("step %d", i), mustPage(t, s, key, 0, 100, time.Time{}), newestFirst(step.want.LastSeq, step.want.FirstSeq))
		last = step.want.LastSeq
	}

	// One append larger than the cap keeps only its newest messages.
	other := persistence.SessionKey{Tenant: "acme", Session: sid2}
	if meta := mustAppend(t, s, other, 0, messages(1, 8, nil), capped); meta != (persistence.SessionMeta{LastSeq: 8, FirstSeq: 4}) {
		t.Fatalf("Append of 8 with a cap of 5 = %+v", meta)
	}
	page := mustPage(t, s, other, 0, 100, time.Time{})
	checkSeqs(t, "append over the cap", page, newestFirst(8, 4))
	checkMessage(t, page[4], message(4))
}

func testNotBefore(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	minute := func(seq uint64) time.Time { return t0.Add(time.Duration(seq) * time.Minute) }
	mustAppend(t, s, key, 0, messages(1, 10, minute), persistence.AppendOptions{})

	cases := []struct {
		name      string
		before    uint64
		notBefore time.Time
		want      []uint64
	}{
		{"no filter", 0, time.Time{}, newestFirst(10, 1)},
		{"created at notBefore is kept", 0, minute(5), newestFirst(10, 5)},
		{"between two messages", 0, minute(5).Add(time.Second), newestFirst(10, 6)},
		{"with a cursor", 8, minute(5), newestFirst(7, 5)},
		{"everything older", 0, minute(11), nil},
		{"everything newer", 0, minute(0), newestFirst(10, 1)},
	}
	for _, tc := range cases {
		checkSeqs(t, tc.name, mustPage(t, s, key, tc.before, 100, tc.notBefore), tc.want)
	}
}

func testDeleteSession(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	neighbour := persistence.SessionKey{Tenant: "acme", Session: sid2}
	mustAppend(t, s, key, 0, messages(1, 5, nil), persistence.AppendOptions{})
	mustAppend(t, s, neighbour, 0, messages(1, 2, nil), persistence.AppendOptions{})

	for range 2 { // deleting twice is fine
		if err := s.DeleteSession(t.Context(), key); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
	}
	checkMeta(t, s, key, persistence.SessionMeta{})
	checkSeqs(t, "deleted session", mustPage(t, s, key, 0, 100, time.Time{}), nil)
	checkSeqs(t, "deleted session with a cursor", mustPage(t, s, key, 4, 100, time.Time{}), nil)
	checkMeta(t, s, neighbour, persistence.SessionMeta{LastSeq: 2, FirstSeq: 1})
	checkSeqs(t, "neighbour", mustPage(t, s, neighbour, 0, 100, time.Time{}), []uint64{2, 1})

	if _, err := s.Append(t.Context(), key, 5, messages(6, 1, nil), persistence.AppendOptions{}); !errors.Is(err, persistence.ErrSequenceConflict) {
		t.Fatalf("Append after the old LastSeq of a deleted session: %v, want ErrSequenceConflict", err)
	}
	fresh := message(1)
	fresh.Content = "a new beginning"
	mustAppend(t, s, key, 0, []persistence.Message{fresh}, persistence.AppendOptions{})
	checkMeta(t, s, key, persistence.SessionMeta{LastSeq: 1, FirstSeq: 1})
	page := mustPage(t, s, key, 0, 100, time.Time{})
	checkSeqs(t, "restarted session", page, []uint64{1})
	checkMessage(t, page[0], fresh)

	missing := persistence.SessionKey{Tenant: "acme", Session: sid3}
	if err := s.DeleteSession(t.Context(), missing); err != nil {
		t.Fatalf("DeleteSession of a session never written: %v", err)
	}
}

func testTenantIsolation(t *testing.T, s persistence.Store) {
	// "acme" is a string prefix of "acme-eu": their data must still be apart.
	tenants := []string{"acme", "acme-eu"}
	for i, tenant := range tenants {
		key := persistence.SessionKey{Tenant: tenant, Session: sid1}
		msgs := messages(1, 2+i, nil)
		for j := range msgs {
			msgs[j].Content = tenant + " says hi"
		}
		mustAppend(t, s, key, 0, msgs, persistence.AppendOptions{})
		mustPut(t, s, persistence.KVKey{Tenant: tenant, Space: persistence.SpaceCache, Key: "k"}, tenant+" value", time.Time{})
	}
	check := func(tenant string, n uint64) {
		t.Helper()
		key := persistence.SessionKey{Tenant: tenant, Session: sid1}
		checkMeta(t, s, key, persistence.SessionMeta{LastSeq: n, FirstSeq: 1})
		page := mustPage(t, s, key, 0, 100, time.Time{})
		checkSeqs(t, tenant, page, newestFirst(n, 1))
		for _, m := range page {
			if m.Content != tenant+" says hi" {
				t.Fatalf("tenant %s reads %q", tenant, m.Content)
			}
		}
		checkKV(t, s, persistence.KVKey{Tenant: tenant, Space: persistence.SpaceCache, Key: "k"}, t0, tenant+" value", time.Time{})
	}
	check("acme", 2)
	check("acme-eu", 3)

	if err := s.DeleteTenant(t.Context(), "acme"); err != nil {
		t.Fatalf("DeleteTenant: %v", err)
	}
	gone := persistence.SessionKey{Tenant: "acme", Session: sid1}
	checkMeta(t, s, gone, persistence.SessionMeta{})
	checkSeqs(t, "deleted tenant", mustPage(t, s, gone, 0, 100, time.Time{}), nil)
	checkKVMiss(t, s, persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "k"}, t0)
	check("acme-eu", 3)

	if err := s.DeleteTenant(t.Context(), "nobody"); err != nil {
		t.Fatalf("DeleteTenant of a tenant without data: %v", err)
	}
	mustAppend(t, s, gone, 0, messages(1, 1, nil), persistence.AppendOptions{})
	checkMeta(t, s, gone, persistence.SessionMeta{LastSeq: 1, FirstSeq: 1})
}

// testInvalidKeys feeds hostile keys to every method. Some are built to alias
// a real key under a naive layout (a tenant holding ':' or a space holding
// the tenant's next part), so the suite also checks that the real key is
// untouched and that nothing at all was written.
func testInvalidKeys(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	real := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "x:y"}
	mustPut(t, s, real, "real", time.Time{})

	badTenants := []string{"", "a:b", "acme:cache", "../x", "Acme", "ACME", strings.Repeat("a", 65),
		"a b", "acme\x00", "acme/x", "é", "acme\n"}
	badSessions := []string{"", "../x", "not-a-uuid", strings.ToUpper(sid1), sid1 + ":m", sid1[:35],
		"{" + sid1 + "}", sid1 + "\x00", strings.ReplaceAll(sid1, "-", ""), "a:b"}

	var sessionKeys []persistence.SessionKey
	for _, tenant := range badTenants {
		sessionKeys = append(sessionKeys, persistence.SessionKey{Tenant: tenant, Session: sid1})
	}
	for _, session := range badSessions {
		sessionKeys = append(sessionKeys, persistence.SessionKey{Tenant: "acme", Session: session})
	}
	for _, key := range sessionKeys {
		wantInvalid := func(method string, err error) {
			t.Helper()
			if !errors.Is(err, persistence.ErrInvalidKey) {
				t.Errorf("%s(%q): %v, want ErrInvalidKey", method, key, err)
			}
		}
		_, err := s.Meta(ctx, key)
		wantInvalid("Meta", err)
		_, err = s.Append(ctx, key, 0, messages(1, 1, nil), persistence.AppendOptions{})
		wantInvalid("Append", err)
		_, err = s.Page(ctx, key, 0, 10, time.Time{})
		wantInvalid("Page", err)
		wantInvalid("DeleteSession", s.DeleteSession(ctx, key))
	}

	kvKeys := []persistence.KVKey{
		{Tenant: "acme", Space: "", Key: "k"},
		{Tenant: "acme", Space: "Cache", Key: "k"},
		{Tenant: "acme", Space: "cache:x", Key: "y"},
		{Tenant: "acme", Space: "ca che", Key: "k"},
		{Tenant: "acme", Space: "cache\x00", Key: "k"},
		{Tenant: "acme", Space: "cache", Key: ""},
		{Tenant: "acme", Space: "cache", Key: "a\x00b"},
		{Tenant: "acme", Space: "cache", Key: "\x00"},
		{Tenant: "acme", Space: "cache", Key: strings.Repeat("k", 513)},
	}
	for _, tenant := range badTenants {
		kvKeys = append(kvKeys, persistence.KVKey{Tenant: tenant, Space: "cache", Key: "k"})
	}
	for _, key := range kvKeys {
		wantInvalid := func(method string, err error) {
			t.Helper()
			if !errors.Is(err, persistence.ErrInvalidKey) {
				t.Errorf("%s(%q): %v, want ErrInvalidKey", method, key, err)
			}
		}
		v, _, _, err := s.Get(ctx, key, t0)
		wantInvalid("Get", err)
		if v != nil {
			t.Errorf("Get(%q) returned %q with its error", key, v)
		}
		wantInvalid("Put", s.Put(ctx, key, []byte("hostile"), t0))
		wantInvalid("Delete", s.Delete(ctx, key))
	}
	for _, tenant := range badTenants {
		if err := s.DeleteTenant(ctx, tenant); !errors.Is(err, persistence.ErrInvalidKey) {
			t.Errorf("DeleteTenant(%q): %v, want ErrInvalidKey", tenant, err)
		}
	}

	checkKV(t, s, real, t0, "real", time.Time{})
	// Every hostile Put expired at t0 and every hostile Append was created
	// before t0+2s: a sweep that expires all of them finds nothing to remove.
	stats, err := s.Sweep(ctx, t0.Add(time.Hour), func(string) time.Duration { return time.Nanosecond })
	if err != nil || stats != (persistence.SweepStats{}) {
		t.Fatalf("Sweep after hostile writes = %+v, %v; want nothing removed", stats, err)
	}
	checkKV(t, s, real, t0, "real", time.Time{})
}

func testValidKeyEdges(t *testing.T, s persistence.Store) {
	tenants := []string{"a", "0", "a-b_c9", strings.Repeat("z", 64), "-", "_"}
	for _, tenant := range tenants {
		key := persistence.SessionKey{Tenant: tenant, Session: sid1}
		mustAppend(t, s, key, 0, messages(1, 1, nil), persistence.AppendOptions{})
		checkMeta(t, s, key, persistence.SessionMeta{LastSeq: 1, FirstSeq: 1})
	}
	keys := []string{"k", strings.Repeat("k", 512), "a:b:c", "../../etc/passwd", "ü/🎉", " ", "\xff\xfe"}
	for i, k := range keys {
		key := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: k}
		mustPut(t, s, key, fmt.Sprint(i), time.Time{})
	}
	for i, k := range keys {
		checkKV(t, s, persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: k}, t0, fmt.Sprint(i), time.Time{})
	}
}

func testKV(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	key := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "greeting"}
	checkKVMiss(t, s, key, t0)

	value := []byte("hello")
	if err := s.Put(ctx, key, value, time.Time{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	value[0] = 'J' // the store kept its own copy
	got, exp, ok, err := s.Get(ctx, key, t0)
	if err != nil || !ok || string(got) != "hello" || !exp.IsZero() {
		t.Fatalf("Get = %q, %v, %v, %v; want hello forever", got, exp, ok, err)
	}
	got[0] = 'Y' // the caller owns what Get returned
	checkKV(t, s, key, t0, "hello", time.Time{})

	mustPut(t, s, key, "replaced", t0.Add(time.Hour))
	checkKV(t, s, key, t0, "replaced", t0.Add(time.Hour))

	mustPut(t, s, key, "", time.Time{})
	got, _, ok, err = s.Get(ctx, key, t0)
	if err != nil || !ok || len(got) != 0 {
		t.Fatalf("Get of an empty value = %q, %v, %v; want an empty hit", got, ok, err)
	}

	for range 2 { // deleting a missing key is fine
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	checkKVMiss(t, s, key, t0)
}

func testKVExpiry(t *testing.T, s persistence.Store) {
	key := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "session-token"}
	expiresAt := t0.Add(time.Hour)
	mustPut(t, s, key, "v", expiresAt)

	checkKV(t, s, key, t0, "v", expiresAt)
	checkKV(t, s, key, expiresAt.Add(-time.Nanosecond), "v", expiresAt)
	checkKVMiss(t, s, key, expiresAt) // gone at its expiry instant
	checkKVMiss(t, s, key, expiresAt.Add(24*time.Hour))
	// Expiry follows the caller's now, not a clock: an earlier now hits again.
	checkKV(t, s, key, t0.Add(-24*time.Hour), "v", expiresAt)

	// An expiry in the far past (a fake clock's) is honoured the same way.
	past := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "old"}
	mustPut(t, s, past, "v", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	checkKV(t, s, past, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), "v", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	checkKVMiss(t, s, past, t0)

	forever := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "forever"}
	mustPut(t, s, forever, "v", time.Time{})
	checkKV(t, s, forever, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "v", time.Time{})
}

// metaLike is what a session meta of LastSeq 7, FirstSeq 1 looks like in the
// Badger store.
const metaLike = "\x01\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x01"

func testKVAndSessionsApart(t *testing.T, s persistence.Store) {
	// KV entries whose key text mimics a session's stored keys must not
	// appear as session data, whatever the implementation's layout.
	for _, space := range []string{"s", "q", "m", "cache"} {
		for _, k := range []string{sid1, sid1 + ":m", sid1 + ":q:", "s:" + sid1 + ":m"} {
			mustPut(t, s, persistence.KVKey{Tenant: "acme", Space: space, Key: k}, metaLike, time.Time{})
		}
	}
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	checkMeta(t, s, key, persistence.SessionMeta{})
	checkSeqs(t, "session beside KV entries", mustPage(t, s, key, 0, 100, time.Time{}), nil)

	mustAppend(t, s, key, 0, messages(1, 2, nil), persistence.AppendOptions{})
	checkKV(t, s, persistence.KVKey{Tenant: "acme", Space: "s", Key: sid1 + ":m"}, t0, metaLike, time.Time{})

	// The same key in two spaces is two entries.
	a := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "user:1"}
	b := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceRateLimit, Key: "user:1"}
	mustPut(t, s, a, "cache", time.Time{})
	mustPut(t, s, b, "limit", time.Time{})
	checkKV(t, s, a, t0, "cache", time.Time{})
	checkKV(t, s, b, t0, "limit", time.Time{})
}

func testSweep(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	now := t0.Add(100 * time.Minute)
	retention := map[string]time.Duration{"acme": time.Hour, "globex": 0, "initech": -time.Hour}
	retentionOf := func(tenant string) time.Duration { return retention[tenant] }
	every := func(d time.Duration) func(uint64) time.Time {
		return func(seq uint64) time.Time { return t0.Add(time.Duration(seq-1) * d) }
	}

	aged := persistence.SessionKey{Tenant: "acme", Session: sid1}    // created every 10 min from t0
	emptied := persistence.SessionKey{Tenant: "acme", Session: sid2} // all older than an hour
	recent := persistence.SessionKey{Tenant: "acme", Session: sid3}  // all within the hour
	keptForever := persistence.SessionKey{Tenant: "globex", Session: sid1}
	keptNegative := persistence.SessionKey{Tenant: "initech", Session: sid1}
	mustAppend(t, s, aged, 0, messages(1, 10, every(10*time.Minute)), persistence.AppendOptions{})
	mustAppend(t, s, emptied, 0, messages(1, 3, every(time.Minute)), persistence.AppendOptions{})
	mustAppend(t, s, recent, 0, messages(1, 2, func(uint64) time.Time { return t0.Add(90 * time.Minute) }), persistence.AppendOptions{})
	mustAppend(t, s, keptForever, 0, messages(1, 3, every(time.Minute)), persistence.AppendOptions{})
	mustAppend(t, s, keptNegative, 0, messages(1, 2, every(time.Minute)), persistence.AppendOptions{})

	kv := func(tenant, k string) persistence.KVKey {
		return persistence.KVKey{Tenant: tenant, Space: persistence.SpaceCache, Key: k}
	}
	mustPut(t, s, kv("acme", "expired"), "v", now.Add(-time.Second))
	mustPut(t, s, kv("acme", "expires-now"), "v", now)
	mustPut(t, s, kv("acme", "live"), "v", now.Add(time.Second))
	mustPut(t, s, kv("acme", "forever"), "v", time.Time{})
	mustPut(t, s, kv("globex", "expired"), "v", t0)

	// Cutoff is now-1h = t0+40min: messages 1..4 of aged (t0 to t0+30min)
	// and all 3 of emptied go; message 5 of aged, created exactly at the
	// cutoff, stays.
	stats, err := s.Sweep(ctx, now, retentionOf)
	if want := (persistence.SweepStats{Messages: 7, KVEntries: 3, Sessions: 1}); err != nil || stats != want {
		t.Fatalf("Sweep = %+v, %v; want %+v", stats, err, want)
	}

	checkMeta(t, s, aged, persistence.SessionMeta{LastSeq: 10, FirstSeq: 5})
	page := mustPage(t, s, aged, 0, 100, time.Time{})
	checkSeqs(t, "aged session", page, newestFirst(10, 5))
	checkMessage(t, page[5], messages(5, 1, every(10*time.Minute))[0])
	checkMeta(t, s, emptied, persistence.SessionMeta{LastSeq: 3, FirstSeq: 0})
	checkSeqs(t, "emptied session", mustPage(t, s, emptied, 0, 100, time.Time{}), nil)
	checkSeqs(t, "recent session", mustPage(t, s, recent, 0, 100, time.Time{}), []uint64{2, 1})
	checkSeqs(t, "retention 0", mustPage(t, s, keptForever, 0, 100, time.Time{}), []uint64{3, 2, 1})
	checkSeqs(t, "negative retention", mustPage(t, s, keptNegative, 0, 100, time.Time{}), []uint64{2, 1})

	// Swept entries are gone, not just expired: an earlier now misses too.
	checkKVMiss(t, s, kv("acme", "expired"), t0)
	checkKVMiss(t, s, kv("acme", "expires-now"), t0)
	checkKVMiss(t, s, kv("globex", "expired"), t0.Add(-time.Hour))
	checkKV(t, s, kv("acme", "live"), t0, "v", now.Add(time.Second))
	checkKV(t, s, kv("acme", "forever"), t0, "v", time.Time{})

	// The emptied session keeps its sequence: appending continues at 4.
	if _, err := s.Append(ctx, emptied, 0, messages(1, 1, nil), persistence.AppendOptions{}); !errors.Is(err, persistence.ErrSequenceConflict) {
		t.Fatalf("Append from 0 to a swept session: %v, want ErrSequenceConflict", err)
	}
	fresh := messages(4, 1, func(uint64) time.Time { return now })
	if meta := mustAppend(t, s, emptied, 3, fresh, persistence.AppendOptions{}); meta != (persistence.SessionMeta{LastSeq: 4, FirstSeq: 4}) {
		t.Fatalf("Append to a swept session = %+v, want {4 4}", meta)
	}

	stats, err = s.Sweep(ctx, now, retentionOf)
	if err != nil || stats != (persistence.SweepStats{}) {
		t.Fatalf("second Sweep at the same now = %+v, %v; want nothing removed", stats, err)
	}

	// Later, everything of acme but the freshest message has aged out.
	stats, err = s.Sweep(ctx, now.Add(time.Hour), retentionOf)
	if want := (persistence.SweepStats{Messages: 8, KVEntries: 1, Sessions: 2}); err != nil || stats != want {
		t.Fatalf("Sweep an hour later = %+v, %v; want %+v", stats, err, want)
	}
	checkMeta(t, s, aged, persistence.SessionMeta{LastSeq: 10, FirstSeq: 0})
	checkMeta(t, s, recent, persistence.SessionMeta{LastSeq: 2, FirstSeq: 0})
	checkMeta(t, s, emptied, persistence.SessionMeta{LastSeq: 4, FirstSeq: 4})
}

// appendRetrying appends n messages one at a time as a session grain does,
// reloading Meta and retrying on ErrSequenceConflict, with CreatedAt from
// created. It reports failures with t.Errorf, so it may run in a goroutine.
func appendRetrying(t *testing.T, s persistence.Store, key persistence.SessionKey, n int, created time.Time) {
	const maxAttempts = 10_000
	ctx := t.Context()
	for i := range n {
		for attempt := 0; ; attempt++ {
			if attempt == maxAttempts {
				t.Errorf("message %d still conflicting after %d attempts", i, attempt)
				return
			}
			meta, err := s.Meta(ctx, key)
			if err != nil {
				t.Errorf("Meta: %v", err)
				return
			}
			m := message(meta.LastSeq + 1)
			m.CreatedAt = created
			_, err = s.Append(ctx, key, meta.LastSeq, []persistence.Message{m}, persistence.AppendOptions{})
			if err == nil {
				break
			}
			if !errors.Is(err, persistence.ErrSequenceConflict) {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}
}

// checkConsistent fails unless the session's messages are exactly
// FirstSeq..LastSeq of its meta: no orphan, no gap.
func checkConsistent(t *testing.T, s persistence.Store, key persistence.SessionKey) persistence.SessionMeta {
	t.Helper()
	meta, err := s.Meta(t.Context(), key)
	if err != nil {
		t.Fatalf("Meta: %v", err)
	}
	var want []uint64
	if meta.FirstSeq != 0 {
		want = newestFirst(meta.LastSeq, meta.FirstSeq)
	}
	checkSeqs(t, fmt.Sprintf("session with meta %+v", meta), mustPage(t, s, key, 0, 1000, time.Time{}), want)
	return meta
}

// testSweepDuringAppends sweeps a session's aged messages while a writer
// keeps appending fresh ones: no fresh message is swept or lost, and the
// appends and sweeps agree on FirstSeq.
func testSweepDuringAppends(t *testing.T, s persistence.Store) {
	const aged, appended, sweeps = 20, 40, 20
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	now := t0.Add(48 * time.Hour)
	mustAppend(t, s, key, 0, messages(1, aged, nil), persistence.AppendOptions{}) // created around t0

	var removed int
	var wg sync.WaitGroup
	wg.Go(func() { appendRetrying(t, s, key, appended, now) })
	wg.Go(func() {
		for range sweeps {
			stats, err := s.Sweep(t.Context(), now, func(string) time.Duration { return time.Hour })
			if err != nil {
				t.Errorf("Sweep: %v", err)
				return
			}
			removed += stats.Messages
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	stats, err := s.Sweep(t.Context(), now, func(string) time.Duration { return time.Hour })
	if err != nil {
		t.Fatalf("final Sweep: %v", err)
	}
	if removed += stats.Messages; removed != aged {
		t.Fatalf("sweeps removed %d messages, want %d", removed, aged)
	}
	if meta := checkConsistent(t, s, key); meta != (persistence.SessionMeta{LastSeq: aged + appended, FirstSeq: aged + 1}) {
		t.Fatalf("Meta = %+v, want {%d %d}", meta, aged+appended, aged+1)
	}
}

// testDeleteSessionDuringAppends deletes a session while a writer appends to
// it: whichever order they land in, no message outlives its meta.
func testDeleteSessionDuringAppends(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	var wg sync.WaitGroup
	wg.Go(func() { appendRetrying(t, s, key, 40, t0) })
	wg.Go(func() {
		for range 10 {
			if err := s.DeleteSession(t.Context(), key); err != nil && !errors.Is(err, persistence.ErrSequenceConflict) {
				t.Errorf("DeleteSession: %v", err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	checkConsistent(t, s, key)
	if err := s.DeleteSession(t.Context(), key); err != nil {
		t.Fatalf("final DeleteSession: %v", err)
	}
	checkMeta(t, s, key, persistence.SessionMeta{})
	checkConsistent(t, s, key)
}

func testCancelledContext(t *testing.T, s persistence.Store) {
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Append(ctx, key, 0, messages(1, 1, nil), persistence.AppendOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.Sweep(ctx, t0, func(string) time.Duration { return 0 }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep with a cancelled context: %v, want context.Canceled", err)
	}
	checkMeta(t, s, key, persistence.SessionMeta{})
}

func testClosed(t *testing.T, s persistence.Store) {
	ctx := t.Context()
	key := persistence.SessionKey{Tenant: "acme", Session: sid1}
	kv := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "k"}
	mustAppend(t, s, key, 0, messages(1, 1, nil), persistence.AppendOptions{})
	for range 2 { // Close is idempotent
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}

	_, err := s.Meta(ctx, key)
	checks := map[string]error{"Meta": err}
	_, err = s.Append(ctx, key, 1, messages(2, 1, nil), persistence.AppendOptions{})
	checks["Append"] = err
	_, err = s.Page(ctx, key, 0, 10, time.Time{})
	checks["Page"] = err
	checks["DeleteSession"] = s.DeleteSession(ctx, key)
	_, _, _, err = s.Get(ctx, kv, t0)
	checks["Get"] = err
	checks["Put"] = s.Put(ctx, kv, []byte("v"), time.Time{})
	checks["Delete"] = s.Delete(ctx, kv)
	_, err = s.Sweep(ctx, t0, func(string) time.Duration { return time.Hour })
	checks["Sweep"] = err
	checks["DeleteTenant"] = s.DeleteTenant(ctx, "acme")
	for method, err := range checks {
		if !errors.Is(err, persistence.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", method, err)
		}
	}
}
