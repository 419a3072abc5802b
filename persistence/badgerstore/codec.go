package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/persistence"
	"github.com/parley-chat/parley/persistence/record"
)

// Keys and values of Store; the layout is described at the top of
// store.go.

// The first byte of every value names its format, so that a later encoding
// can be told apart from an earlier one without rewriting stored data.
// Values are written as records (persistence/record, whose first byte is
// record.Format); the hand-written formats of earlier versions still
// decode.
const (
	// formatV1 was every value's first format.
	formatV1 = 1
	// formatV2 was a message's formatV1 fields followed by its idempotency
	// key.
	formatV2 = 2
)

// errCorrupt reports a stored value this code cannot decode.
var errCorrupt = errors.New("corrupt stored value")

func sessionPrefix(k persistence.SessionKey) []byte {
	return []byte(k.Tenant + ":s:" + k.Session + ":")
}

func metaKey(k persistence.SessionKey) []byte { return append(sessionPrefix(k), 'm') }

func messagePrefix(k persistence.SessionKey) []byte { return append(sessionPrefix(k), 'q', ':') }

// messageKey returns prefix followed by seq in big-endian, in a new slice.
func messageKey(prefix []byte, seq uint64) []byte {
	key := make([]byte, len(prefix), len(prefix)+8)
	copy(key, prefix)
	return binary.BigEndian.AppendUint64(key, seq)
}

func kvKey(k persistence.KVKey) []byte { return []byte(k.Tenant + ":k:" + k.Space + ":" + k.Key) }

func tenantPrefix(tenant string) []byte { return []byte(tenant + ":") }

// seqOf returns the sequence number at the end of a message key.
func seqOf(prefix, key []byte) (uint64, error) {
	if len(key) != len(prefix)+8 {
		return 0, fmt.Errorf("%w: message key of %d bytes", errCorrupt, len(key))
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), nil
}

func encodeMeta(m persistence.SessionMeta) []byte { return record.Marshal(record.MetaOf(m)) }

// decodeMeta decodes a value written by encodeMeta, or by an earlier
// version in formatV1 (LastSeq and FirstSeq as 8-byte big-endian integers).
func decodeMeta(b []byte) (persistence.SessionMeta, error) {
	if len(b) > 0 && b[0] == record.Format {
		var m record.Meta
		if err := record.Unmarshal(b, &m); err != nil {
			return persistence.SessionMeta{}, fmt.Errorf("%w: session meta: %v", errCorrupt, err)
		}
		return m.AsMeta(), nil
	}
	if len(b) != 17 || b[0] != formatV1 {
		return persistence.SessionMeta{}, fmt.Errorf("%w: session meta of %d bytes", errCorrupt, len(b))
	}
	return persistence.SessionMeta{
		LastSeq:  binary.BigEndian.Uint64(b[1:9]),
		FirstSeq: binary.BigEndian.Uint64(b[9:17]),
	}, nil
}

// encodeMessage encodes everything but Seq, which the key carries.
func encodeMessage(m persistence.Message) []byte {
	m.Seq = 0
	return record.Marshal(record.MessageOf(m))
}

// decodeMessage decodes a value written by encodeMessage, or by an earlier
// version in formatV1 or formatV2. The strings it returns are copies, so b
// may be reused by Badger afterwards.
func decodeMessage(b []byte) (persistence.Message, error) {
	if len(b) > 0 && b[0] == record.Format {
		var m record.Message
		if err := record.Unmarshal(b, &m); err != nil {
			return persistence.Message{}, fmt.Errorf("%w: message: %v", errCorrupt, err)
		}
		return m.AsMessage(), nil
	}
	if !isLegacyMessage(b) {
		return persistence.Message{}, fmt.Errorf("%w: message format", errCorrupt)
	}
	d := wire.NewDecoder(b[1:])
	var m persistence.Message
	m.ID = d.String()
	m.Role = persistence.Role(d.String())
	tokens := d.Varint()
	m.CreatedAt = d.Time()
	m.Content = d.String()
	if b[0] == formatV2 {
		m.IdempotencyKey = d.String()
	}
	if d.Finish() != nil {
		return persistence.Message{}, fmt.Errorf("%w: message", errCorrupt)
	}
	m.TokenCount = int(tokens)
	return m, nil
}

// isLegacyMessage reports whether b starts with a hand-written message
// format.
func isLegacyMessage(b []byte) bool {
	return len(b) > 0 && (b[0] == formatV1 || b[0] == formatV2)
}

// messageCreatedAt decodes only as much of a message as its creation time
// needs, for the scans of Sweep and Page's notBefore cut.
func messageCreatedAt(b []byte) (time.Time, error) {
	if len(b) > 0 && b[0] == record.Format {
		t, err := record.MessageCreatedAt(b)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: message: %v", errCorrupt, err)
		}
		return t, nil
	}
	if !isLegacyMessage(b) {
		return time.Time{}, fmt.Errorf("%w: message format", errCorrupt)
	}
	// Both hand-written formats put the time before the content.
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
	return record.Marshal(&record.KVEntry{ExpiresAt: record.TimeOf(expiresAt), Value: value})
}

// decodeKV splits a stored KV value, written by encodeKV or by an earlier
// version in formatV1 (expiresAt, then the value bytes). The value it
// returns may alias b.
func decodeKV(b []byte) (value []byte, expiresAt time.Time, err error) {
	if len(b) > 0 && b[0] == record.Format {
		var e record.KVEntry
		if err := record.Unmarshal(b, &e); err != nil {
			return nil, time.Time{}, fmt.Errorf("%w: kv entry: %v", errCorrupt, err)
		}
		return e.GetValue(), e.GetExpiresAt().AsTime(), nil
	}
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
