package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
)

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
	if err := s.Put(t.Context(), key, []byte(value), expiresAt, persistence.PutOptions{}); err != nil {
		t.Fatalf("Put(%v): %v", key, err)
	}
}
