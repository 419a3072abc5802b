package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

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
