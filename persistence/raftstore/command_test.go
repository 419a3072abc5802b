package raftstore

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/record"
)

func TestCommandRoundTrip(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	key := persistence.SessionKey{Tenant: "acme", Session: "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10"}
	kv := persistence.KVKey{Tenant: "acme", Space: "cache", Key: "\xff\xfe:a/b"} // not UTF-8: carried as bytes
	cmds := []command{
		{op: opAppend, session: key, expectedLast: 41, maxMessages: 1000, msgs: []persistence.Message{
			{Seq: 42, ID: "01J-ü", Role: persistence.RoleUser, Content: "héllo\x00🎉", TokenCount: -1, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, zone),
				IdempotencyKey: "retry-7f3a\xff"},
			{Seq: 43, Role: persistence.RoleSystem, CreatedAt: time.Time{}},
		}},
		{op: opDeleteSession, session: key},
		{op: opPut, kv: kv, value: []byte{0, 1, 2}, expiresAt: t0},
		{op: opPut, kv: kv, value: []byte{}, expiresAt: time.Time{}},
		{op: opDelete, kv: kv},
		{op: opSweep, now: t0, retention: map[string]time.Duration{"acme": time.Hour, "globex": 30 * 24 * time.Hour}},
		{op: opSweep, now: t0, retention: map[string]time.Duration{}},
		{op: opSweep, now: t0.Add(time.Hour), leaderNow: t0, retention: map[string]time.Duration{"acme": time.Hour}},
		{op: opDeleteTenant, tenant: "acme"},
	}
	for _, c := range cmds {
		got, err := decodeCommand(encodeCommand(c))
		if err != nil {
			t.Fatalf("decode %s: %v", c.op, err)
		}
		for i := range c.msgs {
			if !got.msgs[i].CreatedAt.Equal(c.msgs[i].CreatedAt) {
				t.Fatalf("%s: createdAt %v, want %v", c.op, got.msgs[i].CreatedAt, c.msgs[i].CreatedAt)
			}
			got.msgs[i].CreatedAt = c.msgs[i].CreatedAt
		}
		if c.op == opPut && !got.expiresAt.Equal(c.expiresAt) {
			t.Fatalf("put: expiresAt %v, want %v", got.expiresAt, c.expiresAt)
		}
		if c.op == opSweep && (!got.now.Equal(c.now) || !got.leaderNow.Equal(c.leaderNow)) {
			t.Fatalf("sweep: now %v and leaderNow %v, want %v and %v", got.now, got.leaderNow, c.now, c.leaderNow)
		}
		got.expiresAt, got.now, got.leaderNow = c.expiresAt, c.now, c.leaderNow
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip of %s:\n got  %+v\n want %+v", c.op, got, c)
		}
	}
}

func TestQueryAndResultRoundTrip(t *testing.T) {
	key := persistence.SessionKey{Tenant: "acme", Session: "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10"}
	for _, q := range []query{
		{kind: queryMeta, session: key},
		{kind: queryPage, session: key, before: 7, limit: -5, notBefore: t0},
		{kind: queryGet, kv: persistence.KVKey{Tenant: "acme", Space: "cache", Key: "k"}, now: t0},
	} {
		got, err := decodeQuery(encodeQuery(q))
		if err != nil || !reflect.DeepEqual(got, q) {
			t.Fatalf("query round trip: %+v, %v; want %+v", got, err, q)
		}
	}

	ok := result{
		meta:  persistence.SessionMeta{LastSeq: 9, FirstSeq: 3},
		stats: persistence.SweepStats{Messages: 1, KVEntries: 2, Sessions: 3},
		msgs: []persistence.Message{
			{Seq: 8, ID: "m8", Role: persistence.RoleUser, Content: "q", TokenCount: 1, CreatedAt: t0, IdempotencyKey: "k-8"},
			{Seq: 9, ID: "m9", Role: persistence.RoleAssistant, Content: "c", TokenCount: 4, CreatedAt: t0},
		},
		value: []byte("v"), exp: t0, found: true,
	}
	got, err := decodeResult(encodeResult(ok))
	if err != nil || !reflect.DeepEqual(got, ok) {
		t.Fatalf("result round trip: %+v, %v; want %+v", got, err, ok)
	}

	// Errors keep their meaning across the wire.
	for _, sentinel := range []error{persistence.ErrSequenceConflict, persistence.ErrInvalidKey, ErrNoQuorum, ErrUnavailable, errNotLeader} {
		sent := result{err: errors.Join(errors.New("context"), sentinel)}
		got, err := decodeResult(encodeResult(sent))
		if err != nil || !errors.Is(got.err, sentinel) || got.err.Error() != sent.err.Error() {
			t.Fatalf("error %v came back as %v (%v)", sent.err, got.err, err)
		}
	}
	// A remote member's closing is unavailability here, not ErrClosed.
	got, _ = decodeResult(encodeResult(result{err: persistence.ErrClosed}))
	if !errors.Is(got.err, ErrUnavailable) || errors.Is(got.err, persistence.ErrClosed) {
		t.Fatalf("remote ErrClosed came back as %v", got.err)
	}
	got, _ = decodeResult(encodeResult(result{err: errors.New("disk on fire")}))
	if got.err == nil || got.err.Error() != "disk on fire" || errors.Is(got.err, ErrUnavailable) {
		t.Fatalf("plain error came back as %v", got.err)
	}
}

// TestFormat1StillDecodes decodes a command and a result as versions
// before the idempotency key encoded them: a raft log written by one
// replays after an upgrade, and an earlier leader's answers still read.
func TestFormat1StillDecodes(t *testing.T) {
	msg := persistence.Message{Seq: 5, ID: "m5", Role: persistence.RoleUser, Content: "hi", TokenCount: 1, CreatedAt: time.Unix(1767225600, 5).UTC()}
	// encodeCommand of this append before format 2.
	cmd := mustHex(t, "01010461636d652436663163326134652d306237642d346333652d396135312d32643865346637613962313004d00f0105026d3504757365720280e4ad950d05026869")
	want := command{op: opAppend, session: persistence.SessionKey{Tenant: "acme", Session: "6f1c2a4e-0b7d-4c3e-9a51-2d8e4f7a9b10"},
		expectedLast: 4, maxMessages: 1000, msgs: []persistence.Message{msg}}
	got, err := decodeCommand(cmd)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("format 1 command decoded as %+v, %v; want %+v", got, err, want)
	}
	// encodeResult of an append's meta and this message before format 2.
	res := mustHex(t, "010005010000000000ffdb8ff9ce03000105026d3504757365720280e4ad950d05026869")
	r, err := decodeResult(res)
	if err != nil || r.err != nil || r.meta != (persistence.SessionMeta{LastSeq: 5, FirstSeq: 1}) || !reflect.DeepEqual(r.msgs, []persistence.Message{msg}) {
		t.Fatalf("format 1 result decoded as %+v, %v", r, err)
	}
	// A format 2 command, as versions between the idempotency key and
	// records wrote it, still decodes with its key.
	v2 := mustHex(t, "02010461636d652436663163326134652d306237642d346333652d396135312d32643865346637613962313004d00f0105026d3504757365720280e4ad950d05026869057265712d31")
	keyed := want
	keyed.msgs = []persistence.Message{msg}
	keyed.msgs[0].IdempotencyKey = "req-1"
	if got, err := decodeCommand(v2); err != nil || !reflect.DeepEqual(got, keyed) {
		t.Fatalf("format 2 command decoded as %+v, %v; want %+v", got, err, keyed)
	}
	// A finish reason, kept only by records, comes back.
	finished := keyed
	finished.msgs = []persistence.Message{msg}
	finished.msgs[0].FinishReason = "stopped"
	if got, err := decodeCommand(encodeCommand(finished)); err != nil || !reflect.DeepEqual(got.msgs, finished.msgs) {
		t.Fatalf("a command with a finish reason decoded as %+v, %v", got.msgs, err)
	}
	// A format 2 command marked format 1 has a key nobody reads.
	v2[0] = wireFormatV1
	if _, err := decodeCommand(v2); err == nil {
		t.Fatal("a format 2 command marked format 1 decoded")
	}
	// Today's encoding is a record, and reads back as the same command.
	b := encodeCommand(keyed)
	if b[0] != record.Format {
		t.Fatalf("a command encodes in format %d, want %d", b[0], record.Format)
	}
	if got, err := decodeCommand(b); err != nil || !reflect.DeepEqual(got, keyed) {
		t.Fatalf("today's command decoded as %+v, %v; want %+v", got, err, keyed)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRefusesMalformedInput(t *testing.T) {
	valid := encodeCommand(command{op: opAppend, session: persistence.SessionKey{Tenant: "a", Session: "b"}, msgs: []persistence.Message{{Seq: 1}}})
	inputs := map[string][]byte{
		"empty":          nil,
		"unknown format": {9, byte(opPut)},
		"unknown op":     {wireFormatV1, 99},
		"record, no op":  {record.Format, 0},
		"truncated":      valid[:len(valid)-1],
		"trailing bytes": append(append([]byte{}, valid...), 0),
		// An append claiming 2^62 messages in a few bytes must not allocate them.
		"huge count":           {wireFormatV2, byte(opAppend), 1, 'a', 1, 'b', 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40},
		"huge count, format 1": {wireFormatV1, byte(opAppend), 1, 'a', 1, 'b', 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40},
	}
	for name, b := range inputs {
		if _, err := decodeCommand(b); err == nil {
			t.Errorf("%s: decodeCommand succeeded", name)
		}
	}
	for name, b := range map[string][]byte{"empty": nil, "unknown kind": {wireFormatV1, 42}, "bad format": {9}, "record, cut": {record.Format, 5, 1}} {
		if _, err := decodeQuery(b); err == nil {
			t.Errorf("%s: decodeQuery succeeded", name)
		}
		if _, err := decodeResult(b); err == nil {
			t.Errorf("%s: decodeResult succeeded", name)
		}
	}
	if _, _, err := decodeEnvelope([]byte{wireFormatV1, 2}); err == nil || !strings.Contains(err.Error(), "forwarded request") {
		t.Errorf("decodeEnvelope of a truncated envelope: %v", err)
	}
}
