package record_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/record"
)

func TestMessageRoundTrip(t *testing.T) {
	zone := time.FixedZone("x", -7*3600)
	for _, m := range []persistence.Message{
		{},
		{Seq: 1<<64 - 1, ID: "id", Role: persistence.RoleAssistant, Content: "hé\x00llo 🎉", TokenCount: -42, CreatedAt: time.Date(2026, 5, 6, 7, 8, 9, 10, zone), IdempotencyKey: "retry-\xff\xfe", FinishReason: "length"},
		{ID: "old", Role: persistence.RoleSystem, CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		var r record.Message
		if err := record.Unmarshal(record.Marshal(record.MessageOf(m)), &r); err != nil {
			t.Fatal(err)
		}
		got := r.AsMessage()
		if !got.CreatedAt.Equal(m.CreatedAt) || got.CreatedAt.IsZero() != m.CreatedAt.IsZero() {
			t.Fatalf("createdAt %v, want %v", got.CreatedAt, m.CreatedAt)
		}
		got.CreatedAt = m.CreatedAt
		if got != m {
			t.Fatalf("round trip %+v, want %+v", got, m)
		}
	}
}

// TestDamagedRecordsAreErrors cuts and extends a record: protobuf alone
// would read a record cut at a field boundary as a shorter one.
func TestDamagedRecordsAreErrors(t *testing.T) {
	b := record.Marshal(record.MessageOf(persistence.Message{ID: "id", Role: persistence.RoleUser, Content: "content", CreatedAt: time.Unix(1e9, 5)}))
	for n := range len(b) {
		var r record.Message
		if err := record.Unmarshal(b[:n], &r); !errors.Is(err, record.ErrMalformed) {
			t.Fatalf("Unmarshal of %d of %d bytes: %v, want ErrMalformed", n, len(b), err)
		}
		if _, err := record.MessageCreatedAt(b[:n]); !errors.Is(err, record.ErrMalformed) {
			t.Fatalf("MessageCreatedAt of %d of %d bytes: %v, want ErrMalformed", n, len(b), err)
		}
	}
	var r record.Message
	if err := record.Unmarshal(append(bytes.Clone(b), 0), &r); !errors.Is(err, record.ErrMalformed) {
		t.Fatalf("Unmarshal with a trailing byte: %v, want ErrMalformed", err)
	}
	other := bytes.Clone(b)
	other[0] = 2
	if err := record.Unmarshal(other, &r); !errors.Is(err, record.ErrMalformed) {
		t.Fatalf("Unmarshal of format 2: %v, want ErrMalformed", err)
	}
}

func TestMessageCreatedAtReadsOnlyTheTime(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 7, time.UTC)
	b := record.Marshal(record.MessageOf(persistence.Message{Seq: 3, ID: "id", Content: "x", TokenCount: 9, CreatedAt: created, IdempotencyKey: "k"}))
	if got, err := record.MessageCreatedAt(b); err != nil || !got.Equal(created) {
		t.Fatalf("MessageCreatedAt = %v, %v; want %v", got, err, created)
	}
	if got, err := record.MessageCreatedAt(record.Marshal(record.MessageOf(persistence.Message{ID: "id"}))); err != nil || !got.IsZero() {
		t.Fatalf("MessageCreatedAt without a time = %v, %v; want the zero time", got, err)
	}
}

// TestTodaysBytes pins what this version writes for one message, so that a
// change to record.proto that would change stored or replicated bytes (a
// renumbered field, a changed type) fails here rather than on a node that
// reads data an earlier version wrote. Adding a field does not change it.
func TestTodaysBytes(t *testing.T) {
	m := persistence.Message{ID: "m5", Role: persistence.RoleUser, Content: "hi", TokenCount: 1, CreatedAt: time.Unix(1767225600, 5), IdempotencyKey: "req-1"}
	const want = "102112026d351a047573657220012a080880f2d6ca061005320268693a057265712d31"
	b := record.Marshal(record.MessageOf(m))
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("a message encodes as %s, want %s", got, want)
	}
	var r record.Message
	if err := record.Unmarshal(b, &r); err != nil || !r.AsMessage().CreatedAt.Equal(m.CreatedAt) || r.AsMessage().IdempotencyKey != "req-1" {
		t.Fatalf("the pinned bytes read as %+v, %v", r.AsMessage(), err)
	}
}
