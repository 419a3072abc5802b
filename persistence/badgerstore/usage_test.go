package badgerstore

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/parley-chat/parley/persistence"
)

var usageT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// checkBookMatchesKeys fails unless the store's usage book is what its keys
// add up to.
func checkBookMatchesKeys(t *testing.T, s *Store) {
	t.Helper()
	counted, err := countUsage(s.db)
	if err != nil {
		t.Fatal(err)
	}
	s.usage.mu.Lock()
	book := maps.Clone(s.usage.by)
	s.usage.mu.Unlock()
	if !maps.Equal(book, counted) {
		t.Fatalf("usage book %+v, but the stored keys add up to %+v", book, counted)
	}
}

// exercise writes, replaces, trims, deletes and sweeps a little of
// everything, some of it concurrently.
func exercise(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	s.SetBatchLimits(3, 2, 5) // several transactions per delete and sweep
	sessions := []string{
		"6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10", "0c9b8a7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d", "ffffffff-ffff-4fff-bfff-ffffffffffff",
	}
	var wg sync.WaitGroup
	for w, tenant := range []string{"acme", "globex", "acme"} {
		wg.Go(func() {
			for i := range 20 {
				key := persistence.SessionKey{Tenant: tenant, Session: sessions[(w+i)%len(sessions)]}
				meta, err := s.Meta(ctx, key)
				if err != nil {
					t.Error(err)
					return
				}
				msg := persistence.Message{Seq: meta.LastSeq + 1, ID: fmt.Sprint(i), Role: persistence.RoleUser,
					Content: fmt.Sprintf("message %d of writer %d", i, w), CreatedAt: usageT0.Add(time.Duration(i) * time.Minute)}
				_, err = s.Append(ctx, key, meta.LastSeq, []persistence.Message{msg}, persistence.AppendOptions{MaxMessages: 4})
				if err != nil && !errors.Is(err, persistence.ErrSequenceConflict) {
					t.Error(err)
					return
				}
				kv := persistence.KVKey{Tenant: tenant, Space: persistence.SpaceCache, Key: fmt.Sprint(i % 7)}
				if err := s.Put(ctx, kv, make([]byte, i*10), usageT0.Add(time.Duration(i)*time.Minute), persistence.PutOptions{}); err != nil {
					t.Error(err)
					return
				}
				counter := persistence.KVKey{Tenant: tenant, Space: persistence.SpaceRateLimit, Key: fmt.Sprint(i)}
				if err := s.Put(ctx, counter, []byte("n"), time.Time{}, persistence.PutOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Delete(ctx, persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "3"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, persistence.SessionKey{Tenant: "globex", Session: sessions[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(ctx, usageT0.Add(12*time.Minute), func(string) time.Duration { return 5 * time.Minute }); err != nil {
		t.Fatal(err)
	}
}

func TestUsageBookMatchesWhatIsStored(t *testing.T) {
	s, err := Open(Options{InMemory: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	exercise(t, s)
	checkBookMatchesKeys(t, s)
	if u, _ := s.Usage("acme"); u.Sessions == 0 || u.CacheEntries == 0 || u.StoredBytes == 0 {
		t.Fatalf("acme's usage %+v after the exercise; want some of each", u)
	}
	if err := s.DeleteTenant(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	checkBookMatchesKeys(t, s)
}

func TestUsageSurvivesCloseAndACrash(t *testing.T) {
	dir := t.TempDir()
	open := func() *Store {
		t.Helper()
		s, err := Open(Options{Dir: dir, NoSync: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	exercise(t, s)
	want, _ := s.Usage("acme")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open() // from the book Close saved
	if got, _ := s.Usage("acme"); got != want {
		t.Fatalf("usage after a reopen %+v, want %+v", got, want)
	}
	checkBookMatchesKeys(t, s)
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(usageKey)
		return err
	})
	if !errors.Is(err, badger.ErrKeyNotFound) {
		t.Fatalf("the saved book is still stored after Open (%v): a crash now would reload a stale one", err)
	}
	// A crash: no book was saved, so Open counts.
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	s.closed = true
	close(s.stop)
	<-s.gcDone
	s = open()
	t.Cleanup(func() { _ = s.Close() })
	if got, _ := s.Usage("acme"); got != want {
		t.Fatalf("usage after a crash %+v, want %+v", got, want)
	}
}
