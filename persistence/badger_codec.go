package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
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
	// key. Messages are written in it; formatV1 messages, written by
	// earlier versions, still decode (with no key).
	formatV2 = 2
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
// formatV2.
func encodeMessage(m Message) []byte {
	b := make([]byte, 0, 1+len(m.ID)+len(m.Role)+len(m.Content)+len(m.IdempotencyKey)+45)
	b = append(b, formatV2)
	b = appendString(b, m.ID)
	b = appendString(b, string(m.Role))
	b = binary.AppendVarint(b, int64(m.TokenCount))
	b = appendTime(b, m.CreatedAt)
	b = appendString(b, m.Content)
	return appendString(b, m.IdempotencyKey)
}

// decodeMessage decodes a value written by encodeMessage, or by an earlier
// version in formatV1. The strings it returns are copies, so b may be
// reused by Badger afterwards.
func decodeMessage(b []byte) (Message, error) {
	if !isMessageFormat(b) {
		return Message{}, fmt.Errorf("%w: message format", errCorrupt)
	}
	d := decoder{b: b[1:]}
	var m Message
	m.ID = d.string()
	m.Role = Role(d.string())
	tokens := d.varint()
	m.CreatedAt = d.time()
	m.Content = d.string()
	if b[0] == formatV2 {
		m.IdempotencyKey = d.string()
	}
	if d.err != nil || len(d.b) != 0 {
		return Message{}, fmt.Errorf("%w: message", errCorrupt)
	}
	m.TokenCount = int(tokens)
	return m, nil
}

// isMessageFormat reports whether b starts with a message format this code
// decodes.
func isMessageFormat(b []byte) bool {
	return len(b) > 0 && (b[0] == formatV1 || b[0] == formatV2)
}

// messageCreatedAt decodes only as much of a message as its creation time
// needs, for the scans of Sweep and Page's notBefore cut. Both formats put
// the time before the content.
func messageCreatedAt(b []byte) (time.Time, error) {
	if !isMessageFormat(b) {
		return time.Time{}, fmt.Errorf("%w: message format", errCorrupt)
	}
	d := decoder{b: b[1:]}
	d.skipString()
	d.skipString()
	d.varint()
	t := d.time()
	if d.err != nil {
		return time.Time{}, fmt.Errorf("%w: message", errCorrupt)
	}
	return t, nil
}

func encodeKV(value []byte, expiresAt time.Time) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+binary.MaxVarintLen32+len(value))
	b = append(b, formatV1)
	b = appendTime(b, expiresAt)
	return append(b, value...)
}

// decodeKV splits a stored KV value. The value it returns aliases b.
func decodeKV(b []byte) (value []byte, expiresAt time.Time, err error) {
	if len(b) == 0 || b[0] != formatV1 {
		return nil, time.Time{}, fmt.Errorf("%w: kv format", errCorrupt)
	}
	d := decoder{b: b[1:]}
	expiresAt = d.time()
	if d.err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: kv entry", errCorrupt)
	}
	return d.b, expiresAt, nil
}

// expired reports whether an entry with expiry expiresAt is gone at now: the
// zero time never expires, and an entry is gone at its expiry instant.
func expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !expiresAt.After(now)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime stores t as Unix seconds and nanoseconds, which round-trips
// every time including the zero one (decoded in UTC, so the zero time comes
// back as time.Time{}).
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decoder reads varint-framed fields; the first failure sticks in err and
// later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) skipString() { d.bytes() }

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.err = errCorrupt
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
