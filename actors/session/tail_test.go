package session_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/actors/session"
	"github.com/parley-chat/parley/actors/testkit"
	"github.com/parley-chat/parley/persistence"
)

// pageCounter counts the store's Page calls.
type pageCounter struct {
	persistence.Store
	pages atomic.Int64
}

func (c *pageCounter) Page(ctx context.Context, key persistence.SessionKey, before uint64, limit int, notBefore time.Time) ([]persistence.Message, error) {
	c.pages.Add(1)
	return c.Store.Page(ctx, key, before, limit, notBefore)
}

// newTailEnv is newEnv with the store behind a pageCounter and cfg's
// history tail bounds.
func newTailEnv(t *testing.T, retention session.Retention, tailBytes int) (*env, *pageCounter) {
	t.Helper()
	e := newEnv(t, retention)
	counter := &pageCounter{Store: e.store}
	var err error
	e.props, err = session.Props(session.Config{
		Store: counter, Clock: e.clock, HistoryTailBytes: tailBytes,
		Retention: func(string) session.Retention { return retention }, IdleTimeout: 365 * 24 * time.Hour, Logger: testkit.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, counter
}

// storePage is the page the store itself gives: what history must answer.
func (e *env) storePage(key persistence.SessionKey, before uint64, limit int, maxAge time.Duration) (seqs []uint64, next uint64) {
	e.t.Helper()
	msgs, err := e.store.Page(context.Background(), key, before, limit+1, e.clock.Now().Add(-maxAge))
	if err != nil {
		e.t.Fatal(err)
	}
	if len(msgs) > limit {
		msgs = msgs[:limit]
		next = msgs[limit-1].Seq
	}
	for _, m := range msgs {
		seqs = append(seqs, m.Seq)
	}
	return seqs, next
}

func pageSeqs(p *session.Page) []uint64 {
	var seqs []uint64
	for _, m := range p.Messages {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

// The newest history pages come from the session's memory once read:
// the same pages the store gives, through appends, the count limit's
// trims and messages that retention hides as time passes.
func TestHistoryFromMemoryIsTheStoresHistory(t *testing.T) {
	retention := session.Retention{MaxMessages: 120, MaxAge: 30 * 24 * time.Hour}
	e, counter := newTailEnv(t, retention, 0)
	identity := newIdentity(t, "acme")
	key, _ := session.ParseIdentity(identity)
	pid := e.spawn(identity)
	check := func(when string, before uint64, limit int32) *session.Page {
		t.Helper()
		page := ask[*session.Page](e, pid, &session.History{Limit: limit, Before: before})
		want, next := e.storePage(key, before, int(limit), retention.MaxAge)
		if got := pageSeqs(page); !slices.Equal(got, want) || page.NextBefore != next {
			t.Fatalf("%s, page (%d, %d): seqs %v next %d; the store's %v next %d", when, before, limit, got, page.NextBefore, want, next)
		}
		return page
	}
	for i := 1; i <= 30; i++ {
		e.append(pid, fmt.Sprintf("m%d", i))
		e.clock.Advance(24 * time.Hour)
	}
	// 30 messages, a day apart: the oldest now hidden by age.
	check("30 messages", 0, 100)
	reads := counter.pages.Load()
	for _, limit := range []int32{1, 10, 50, 100} {
		check("30 messages, from memory", 0, limit)
	}
	check("30 messages, an older page from memory", 20, 5)
	if got := counter.pages.Load(); got != reads {
		t.Errorf("%d store reads for pages the session holds, want none", got-reads)
	}
	for i := 31; i <= 200; i++ {
		e.append(pid, fmt.Sprintf("m%d", i))
	}
	// 200 appended, 120 kept by the count limit, 101 in memory.
	reads = counter.pages.Load()
	first := check("200 messages", 0, 100)
	check("200 messages", 0, 100)
	if got := counter.pages.Load(); got != reads {
		t.Errorf("%d store reads for the newest page after appends, want none", got-reads)
	}
	check("200 messages, the older page", first.NextBefore, 100)
	e.clock.Advance(31 * 24 * time.Hour)
	check("everything hidden by age", 0, 100)
	e.append(pid, "after a month")
	check("one visible", 0, 100)
}

// Messages too large to keep a page of in memory are read from the store
// each time, and history is the same.
func TestHistoryPastTheTailsBytesComesFromTheStore(t *testing.T) {
	e, counter := newTailEnv(t, session.DefaultRetention, 1<<10)
	identity := newIdentity(t, "acme")
	key, _ := session.ParseIdentity(identity)
	pid := e.spawn(identity)
	for i := 1; i <= 60; i++ {
		e.append(pid, strings.Repeat("x", 200)+fmt.Sprint(i))
	}
	for range 2 {
		page := ask[*session.Page](e, pid, &session.History{Limit: 50})
		want, next := e.storePage(key, 0, 50, session.DefaultRetention.MaxAge)
		if got := pageSeqs(page); !slices.Equal(got, want) || page.NextBefore != next {
			t.Fatalf("page: seqs %v next %d; the store's %v next %d", got, page.NextBefore, want, next)
		}
	}
	if got := counter.pages.Load(); got < 2 {
		t.Errorf("%d store reads for two pages of 50 of 200-byte messages held within 1 KiB, want 2", got)
	}
}
