package badgerstore

import (
	"github.com/parley-chat/parley/persistence"

	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/parley-chat/parley/persistence/record"
)

func TestCodecRoundTrip(t *testing.T) {
	zone := time.FixedZone("x", -7*3600)
	msgs := []persistence.Message{
		{},
		{ID: "id", Role: persistence.RoleAssistant, Content: "hé\x00llo", TokenCount: -42, CreatedAt: time.Date(2026, 5, 6, 7, 8, 9, 10, zone)},
		{ID: strings.Repeat("i", 300), Role: persistence.RoleUser, Content: strings.Repeat("c", 70_000), TokenCount: 1 << 30,
			CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), IdempotencyKey: "retry-\xff:" + strings.Repeat("k", 200)},
	}
	for _, m := range msgs {
		b := encodeMessage(m)
		got, err := decodeMessage(b)
		if err != nil {
			t.Fatalf("decodeMessage(encodeMessage(%q)): %v", m.ID, err)
		}
		if got.ID != m.ID || got.Role != m.Role || got.Content != m.Content || got.TokenCount != m.TokenCount ||
			!got.CreatedAt.Equal(m.CreatedAt) || got.CreatedAt.IsZero() != m.CreatedAt.IsZero() || got.IdempotencyKey != m.IdempotencyKey {
			t.Fatalf("round trip of %+v gave %+v", m, got)
		}
		created, err := messageCreatedAt(b)
		if err != nil || !created.Equal(m.CreatedAt) {
			t.Fatalf("messageCreatedAt = %v, %v; want %v", created, err, m.CreatedAt)
		}
	}

	for _, exp := range []time.Time{{}, time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC)} {
		value, gotExp, err := decodeKV(encodeKV([]byte("v\x00"), exp))
		if err != nil || string(value) != "v\x00" || !gotExp.Equal(exp) || gotExp.IsZero() != exp.IsZero() {
			t.Fatalf("KV round trip of expiry %v = %q, %v, %v", exp, value, gotExp, err)
		}
	}

	meta := persistence.SessionMeta{LastSeq: 1<<63 + 5, FirstSeq: 7}
	if got, err := decodeMeta(encodeMeta(meta)); err != nil || got != meta {
		t.Fatalf("meta round trip = %+v, %v", got, err)
	}
}

// TestCodecRejectsCorruption truncates and extends encoded values: every
// damaged value is an error, never a panic or a silently wrong message.
func TestCodecRejectsCorruption(t *testing.T) {
	b := encodeMessage(persistence.Message{ID: "id", Role: persistence.RoleUser, Content: "content", TokenCount: 3, CreatedAt: time.Unix(1e9, 5)})
	for n := range len(b) {
		if _, err := decodeMessage(b[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("decodeMessage of %d of %d bytes: %v, want errCorrupt", n, len(b), err)
		}
	}
	if _, err := decodeMessage(append(bytes.Clone(b), 0)); !errors.Is(err, errCorrupt) {
		t.Fatalf("decodeMessage with a trailing byte: %v, want errCorrupt", err)
	}
	wrongFormat := bytes.Clone(b)
	wrongFormat[0] = 9
	if _, err := decodeMessage(wrongFormat); !errors.Is(err, errCorrupt) {
		t.Fatalf("decodeMessage of format 9: %v, want errCorrupt", err)
	}
	// A format 1 byte on a format 2 message leaves the key unread.
	v2, err := hex.DecodeString(format2Message)
	if err != nil {
		t.Fatal(err)
	}
	v2[0] = formatV1
	if _, err := decodeMessage(v2); !errors.Is(err, errCorrupt) {
		t.Fatalf("decodeMessage of a format 2 message marked format 1: %v, want errCorrupt", err)
	}
	meta := encodeMeta(persistence.SessionMeta{LastSeq: 1})
	for n := range len(meta) {
		if _, err := decodeMeta(meta[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("decodeMeta of %d bytes: %v, want errCorrupt", n, err)
		}
	}
	kv := encodeKV(nil, time.Unix(1e9, 0))
	for n := range len(kv) {
		if _, _, err := decodeKV(kv[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("decodeKV of %d bytes: %v, want errCorrupt", n, err)
		}
	}
}

// TestCodecReadsFormat1Messages decodes a message as versions before the
// idempotency key wrote it: stored data is never rewritten, so it must
// keep reading.
func TestCodecReadsFormat1Messages(t *testing.T) {
	// encodeMessage(Message{ID: "m5", Role: RoleUser, Content: "hi", TokenCount: 1,
	// CreatedAt: time.Unix(1767225600, 5)}) before format 2.
	v1, err := hex.DecodeString("01026d3504757365720280e4ad950d05026869")
	if err != nil {
		t.Fatal(err)
	}
	want := persistence.Message{ID: "m5", Role: persistence.RoleUser, Content: "hi", TokenCount: 1, CreatedAt: time.Unix(1767225600, 5).UTC()}
	got, err := decodeMessage(v1)
	if err != nil || got != want {
		t.Fatalf("decodeMessage of format 1 = %+v, %v; want %+v", got, err, want)
	}
	if created, err := messageCreatedAt(v1); err != nil || !created.Equal(want.CreatedAt) {
		t.Fatalf("messageCreatedAt of format 1 = %v, %v; want %v", created, err, want.CreatedAt)
	}
	// Rewritten, it is a record and keeps its (empty) key.
	if b := encodeMessage(got); b[0] != record.Format {
		t.Fatalf("encodeMessage writes format %d, want %d", b[0], record.Format)
	}
}

// format2Message is encodeMessage(Message{ID: "m5", Role: RoleUser, Content:
// "hi", TokenCount: 1, CreatedAt: time.Unix(1767225600, 5), IdempotencyKey:
// "req-1"}) as the versions between the idempotency key and records wrote it.
const format2Message = "02026d3504757365720280e4ad950d05026869057265712d31"

// TestCodecReadsEarlierFormats decodes what versions before records wrote:
// format 2 messages, and format 1 meta and KV entries. Stored data is never
// rewritten, so all of it must keep reading, and the Sweep and Page scans
// must find its time.
func TestCodecReadsEarlierFormats(t *testing.T) {
	mustHex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := persistence.Message{ID: "m5", Role: persistence.RoleUser, Content: "hi", TokenCount: 1, CreatedAt: time.Unix(1767225600, 5).UTC(), IdempotencyKey: "req-1"}
	v2 := mustHex(format2Message)
	if got, err := decodeMessage(v2); err != nil || got != want {
		t.Fatalf("decodeMessage of format 2 = %+v, %v; want %+v", got, err, want)
	}
	if created, err := messageCreatedAt(v2); err != nil || !created.Equal(want.CreatedAt) {
		t.Fatalf("messageCreatedAt of format 2 = %v, %v", created, err)
	}
	// The bytes encodeMeta wrote for LastSeq 7, FirstSeq 3.
	if got, err := decodeMeta(mustHex("0100000000000000070000000000000003")); err != nil || got != (persistence.SessionMeta{LastSeq: 7, FirstSeq: 3}) {
		t.Fatalf("decodeMeta of format 1 = %+v, %v", got, err)
	}
	// encodeKV("v\x00", time.Unix(1767225600, 5)) and encodeKV("w", zero).
	if v, exp, err := decodeKV(mustHex("0180e4ad950d057600")); err != nil || string(v) != "v\x00" || !exp.Equal(time.Unix(1767225600, 5)) {
		t.Fatalf("decodeKV of format 1 = %q, %v, %v", v, exp, err)
	}
	if v, exp, err := decodeKV(mustHex("01ffdb8ff9ce030077")); err != nil || string(v) != "w" || !exp.IsZero() {
		t.Fatalf("decodeKV of format 1 without expiry = %q, %v, %v", v, exp, err)
	}
}

// TestCodecWritesRecords checks the bytes the current version writes: a
// record of persistence/record, whose time the scans read without decoding
// the rest.
func TestCodecWritesRecords(t *testing.T) {
	m := persistence.Message{Seq: 9, ID: "m5", Role: persistence.RoleUser, Content: "hi", TokenCount: 1, CreatedAt: time.Unix(1767225600, 5).UTC(), IdempotencyKey: "req-1"}
	b := encodeMessage(m)
	var r record.Message
	if err := record.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	m.Seq = 0 // the key carries it
	if got := r.AsMessage(); got != m {
		t.Fatalf("the stored record reads as %+v, want %+v", got, m)
	}
	if created, err := messageCreatedAt(b); err != nil || !created.Equal(m.CreatedAt) {
		t.Fatalf("messageCreatedAt of a record = %v, %v", created, err)
	}
	if created, err := messageCreatedAt(encodeMessage(persistence.Message{ID: "x"})); err != nil || !created.IsZero() {
		t.Fatalf("messageCreatedAt of a record without a time = %v, %v", created, err)
	}
}

func TestMessageKeysSortBySeq(t *testing.T) {
	prefix := messagePrefix(persistence.SessionKey{Tenant: "acme", Session: "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10"})
	seqs := []uint64{0, 1, 255, 256, 1 << 32, 1<<64 - 1}
	for i := 1; i < len(seqs); i++ {
		if bytes.Compare(messageKey(prefix, seqs[i-1]), messageKey(prefix, seqs[i])) >= 0 {
			t.Fatalf("key of seq %d does not sort before key of seq %d", seqs[i-1], seqs[i])
		}
	}
	for _, seq := range seqs {
		if got, err := seqOf(prefix, messageKey(prefix, seq)); err != nil || got != seq {
			t.Fatalf("seqOf(messageKey(%d)) = %d, %v", seq, got, err)
		}
	}
}

func TestSplitKeys(t *testing.T) {
	sid := "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10"
	key := persistence.SessionKey{Tenant: "acme", Session: sid}
	cases := []struct {
		key       []byte
		tenant    string
		kind      byte
		prefix    string // of a session key; "" when not one
		isMessage bool
	}{
		{metaKey(key), "acme", 's', "acme:s:" + sid + ":", false},
		{messageKey(messagePrefix(key), 7), "acme", 's', "acme:s:" + sid + ":", true},
		{kvKey(persistence.KVKey{Tenant: "acme", Space: "cache", Key: "s:x"}), "acme", 'k', "", false},
		{[]byte("acme:s:short:m"), "acme", 's', "", false},
		{[]byte("acme:s:" + sid + ":x"), "acme", 's', "", false},
	}
	for _, tc := range cases {
		tenant, kind, ok := splitKey(tc.key)
		if !ok || tenant != tc.tenant || kind != tc.kind {
			t.Fatalf("splitKey(%q) = %q, %c, %v", tc.key, tenant, kind, ok)
		}
		if kind != 's' {
			continue
		}
		prefix, isMessage := splitSessionKey(tc.key, tenant)
		if string(prefix) != tc.prefix || isMessage != tc.isMessage {
			t.Fatalf("splitSessionKey(%q) = %q, %v; want %q, %v", tc.key, prefix, isMessage, tc.prefix, tc.isMessage)
		}
	}
	for _, bad := range []string{"", ":", "acme", ":s:x", "acme:s"} {
		if _, _, ok := splitKey([]byte(bad)); ok {
			t.Fatalf("splitKey(%q) accepted it", bad)
		}
	}

	end := sessionEnd(sessionPrefix(key))
	last := messageKey(messagePrefix(key), 1<<64-1)
	next := metaKey(persistence.SessionKey{Tenant: "acme", Session: "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b11"})
	if bytes.Compare(last, end) >= 0 || bytes.Compare(end, next) > 0 {
		t.Fatalf("sessionEnd %q is not between the session's last key and the next session", end)
	}
}

// recordHandler keeps the level and message of every record.
type recordHandler struct{ records *[]slog.Record }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	*h.records = append(*h.records, r)
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

func TestBadgerLoggerLevels(t *testing.T) {
	var records []slog.Record
	l := badgerLogger{slog.New(recordHandler{&records})}
	l.Errorf("e %d\n", 1)
	l.Warningf("w %d\n", 2)
	l.Infof("i %d\n", 3)
	l.Debugf("d %d\n", 4)
	want := []struct {
		level slog.Level
		msg   string
	}{{slog.LevelError, "e 1"}, {slog.LevelWarn, "w 2"}, {slog.LevelDebug, "i 3"}, {slog.LevelDebug, "d 4"}}
	if len(records) != len(want) {
		t.Fatalf("%d records, want %d", len(records), len(want))
	}
	for i, w := range want {
		if records[i].Level != w.level || records[i].Message != w.msg {
			t.Fatalf("record %d = %v %q, want %v %q", i, records[i].Level, records[i].Message, w.level, w.msg)
		}
	}
}

// TestSweepScanReadsOneMessagePerSession checks that the scan queues a
// session once and jumps past its other messages, rather than visiting the
// whole history.
func TestSweepScanReadsOneMessagePerSession(t *testing.T) {
	s, err := Open(Options{InMemory: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sessions := []string{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"}
	for _, sid := range sessions {
		msgs := make([]persistence.Message, 50)
		for i := range msgs {
			msgs[i] = persistence.Message{Seq: uint64(i + 1), CreatedAt: old}
		}
		if _, err := s.Append(t.Context(), persistence.SessionKey{Tenant: "acme", Session: sid}, 0, msgs, persistence.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	s.limits = batchLimits{deleteBatch: 100, sweepScanChunk: 100}
	var work sweepWork
	var visited int
	cutoffOf := func(string) time.Time { visited++; return old.Add(time.Hour) }
	if err := s.db.View(func(txn *badger.Txn) error {
		work, err = s.scanForSweep(txn, nil, old, cutoffOf)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Each session costs two keys (meta, oldest message); with a chunk of
	// 100 keys, visiting every message would have stopped the scan early.
	if len(work.sessions) != 2 || work.sessions[0].key.Session != sessions[0] || work.sessions[1].key.Session != sessions[1] || work.next != nil {
		t.Fatalf("scan found %+v (next %q), want each session once and the end reached", work.sessions, work.next)
	}
	if visited != 4 {
		t.Fatalf("scan looked at %d session keys, want 4 (a meta and one message each)", visited)
	}
}

// TestSweepSkipsCorruptEntries plants undecodable values: the sweep logs and
// skips them and still does the rest of its work; Page reports the damage.
func TestSweepSkipsCorruptEntries(t *testing.T) {
	s, err := Open(Options{InMemory: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := old.Add(24 * time.Hour)

	damaged := persistence.SessionKey{Tenant: "acme", Session: "00000000-0000-4000-8000-000000000001"}
	healthy := persistence.SessionKey{Tenant: "acme", Session: "00000000-0000-4000-8000-000000000002"}
	for _, key := range []persistence.SessionKey{damaged, healthy} {
		if _, err := s.Append(ctx, key, 0, []persistence.Message{{Seq: 1, CreatedAt: old}, {Seq: 2, CreatedAt: old}}, persistence.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	expiredKV := persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "expired"}
	if err := s.Put(ctx, expiredKV, []byte("v"), old, persistence.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(messageKey(messagePrefix(damaged), 1), []byte{formatV1, 0xff}); err != nil {
			return err
		}
		return txn.Set(kvKey(persistence.KVKey{Tenant: "acme", Space: persistence.SpaceCache, Key: "broken"}), []byte{9})
	}); err != nil {
		t.Fatal(err)
	}

	stats, err := s.Sweep(ctx, now, func(string) time.Duration { return time.Hour })
	if want := (persistence.SweepStats{Messages: 2, KVEntries: 1, Sessions: 1}); err != nil || stats != want {
		t.Fatalf("Sweep = %+v, %v; want %+v (the healthy session and the expired entry)", stats, err, want)
	}
	if _, err := s.Page(ctx, damaged, 0, 10, time.Time{}); !errors.Is(err, errCorrupt) {
		t.Fatalf("Page over a corrupt message: %v, want errCorrupt", err)
	}
}
