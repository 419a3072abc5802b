package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

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
