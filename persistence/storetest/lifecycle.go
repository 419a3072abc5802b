package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

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
	checks["Put"] = s.Put(ctx, kv, []byte("v"), time.Time{}, persistence.PutOptions{})
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
