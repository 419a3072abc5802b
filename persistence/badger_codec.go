package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/internal/wire"
)

// Keys and values of BadgerStore; the layout is described at the top of
// badger.go.

// The first byte of every value names its format, so that a later encoding
// can be told apart from an earlier one without rewriting stored data.
const (
	// formatV1 is every value's first format, and still that of session
	// meta and KV entries.
	formatV1 = 1
	// formatV2 is a message's formatV1 fields followed by its idempotency
	// key. formatV1 messages, written by earlier versions, still decode
	// (with no key).
	formatV2 = 2
	// formatV3 is formatV2 followed by the message's finish reason.
	// Messages are written in it; the earlier formats still decode (with
	// no finish reason).
	formatV3 = 3
)

// errCorrupt reports a stored value this code cannot decode.
var errCorrupt = errors.New("corrupt stored value")

func sessionPrefix(k SessionKey) []byte {
	return []byte(k.Tenant + ":s:" + k.Session + ":")
}

func metaKey(k SessionKey) []byte { return append(sessionPrefix(k), 'm') }

func messagePrefix(k SessionKey) []byte { return append(sessionPrefix(k), 'q', ':') }

// messageKey returns prefix followed by seq in big-endian, in a new slice.
func messageKey(prefix []byte, seq uint64) []byte {
	key := make([]byte, len(prefix), len(prefix)+8)
	copy(key, prefix)
	return binary.BigEndian.AppendUint64(key, seq)
}

func kvKey(k KVKey) []byte { return []byte(k.Tenant + ":k:" + k.Space + ":" + k.Key) }

func tenantPrefix(tenant string) []byte { return []byte(tenant + ":") }

// seqOf returns the sequence number at the end of a message key.
func seqOf(prefix, key []byte) (uint64, error) {
	if len(key) != len(prefix)+8 {
		return 0, fmt.Errorf("%w: message key of %d bytes", errCorrupt, len(key))
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), nil
}

func encodeMeta(m SessionMeta) []byte {
	b := make([]byte, 0, 17)
	b = append(b, formatV1)
	b = binary.BigEndian.AppendUint64(b, m.LastSeq)
	return binary.BigEndian.AppendUint64(b, m.FirstSeq)
}

func decodeMeta(b []byte) (SessionMeta, error) {
	if len(b) != 17 || b[0] != formatV1 {
		return SessionMeta{}, fmt.Errorf("%w: session meta of %d bytes", errCorrupt, len(b))
	}
	return SessionMeta{
		LastSeq:  binary.BigEndian.Uint64(b[1:9]),
		FirstSeq: binary.BigEndian.Uint64(b[9:17]),
	}, nil
}

// encodeMessage encodes everything but Seq, which the key carries, in
// formatV3.
func encodeMessage(m Message) []byte {
	var e wire.Encoder
	e.Grow(1 + len(m.ID) + len(m.Role) + len(m.Content) + len(m.IdempotencyKey) + len(m.FinishReason) + 46)
	e.Byte(formatV3)
	e.String(m.ID)
	e.String(string(m.Role))
	e.Varint(int64(m.TokenCount))
	e.Time(m.CreatedAt)
	e.String(m.Content)
	e.String(m.IdempotencyKey)
	e.String(m.FinishReason)
	return e.Encoded()
}

// decodeMessage decodes a value written by encodeMessage, or by an earlier
// version in formatV1 or formatV2. The strings it returns are copies, so b may be
// reused by Badger afterwards.
func decodeMessage(b []byte) (Message, error) {
	if !isMessageFormat(b) {
		return Message{}, fmt.Errorf("%w: message format", errCorrupt)
	}
	d := wire.NewDecoder(b[1:])
	var m Message
	m.ID = d.String()
	m.Role = Role(d.String())
	tokens := d.Varint()
	m.CreatedAt = d.Time()
	m.Content = d.String()
	if b[0] != formatV1 {
		m.IdempotencyKey = d.String()
	}
	if b[0] == formatV3 {
		m.FinishReason = d.String()
	}
	if d.Finish() != nil {
		return Message{}, fmt.Errorf("%w: message", errCorrupt)
	}
	m.TokenCount = int(tokens)
	return m, nil
}

// isMessageFormat reports whether b starts with a message format this code
// decodes.
func isMessageFormat(b []byte) bool {
	return len(b) > 0 && (b[0] == formatV1 || b[0] == formatV2 || b[0] == formatV3)
}

// messageCreatedAt decodes only as much of a message as its creation time
// needs, for the scans of Sweep and Page's notBefore cut. Every format puts
// the time before the content.
func messageCreatedAt(b []byte) (time.Time, error) {
	if !isMessageFormat(b) {
		return time.Time{}, fmt.Errorf("%w: message format", errCorrupt)
	}
	d := wire.NewDecoder(b[1:])
	d.Skip()
	d.Skip()
	d.Varint()
	t := d.Time()
	if d.Err() != nil {
		return time.Time{}, fmt.Errorf("%w: message", errCorrupt)
	}
	return t, nil
}

func encodeKV(value []byte, expiresAt time.Time) []byte {
	var e wire.Encoder
	e.Grow(1 + binary.MaxVarintLen64 + binary.MaxVarintLen32 + len(value))
	e.Byte(formatV1)
	e.Time(expiresAt)
	return append(e.Encoded(), value...)
}

// decodeKV splits a stored KV value. The value it returns aliases b.
func decodeKV(b []byte) (value []byte, expiresAt time.Time, err error) {
	if len(b) == 0 || b[0] != formatV1 {
		return nil, time.Time{}, fmt.Errorf("%w: kv format", errCorrupt)
	}
	d := wire.NewDecoder(b[1:])
	expiresAt = d.Time()
	if d.Err() != nil {
		return nil, time.Time{}, fmt.Errorf("%w: kv entry", errCorrupt)
	}
	return d.Rest(), expiresAt, nil
}

// expired reports whether an entry with expiry expiresAt is gone at now: the
// zero time never expires, and an entry is gone at its expiry instant.
func expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !expiresAt.After(now)
}
