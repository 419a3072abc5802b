// Package record is the one binary encoding of what Parley stores and
// replicates: protobuf messages (record.proto) behind a format byte.
//
// Every value the Badger store writes and every command, query and result
// the replicated store sends starts with one byte naming its format.
// Format is the protobuf framing; the formats before it (1 to 3) were
// hand-written and are still decoded by the packages that wrote them, so
// data already on disk and entries already in a raft log stay readable.
package record

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parley-chat/parley/persistence"
)

// Format is the first byte of every record in this encoding. It is above
// every hand-written format (1 to 3), so a reader tells them apart by the
// first byte alone.
const Format byte = 16

// ErrMalformed reports bytes that are not a record of the expected kind.
var ErrMalformed = errors.New("malformed record")

// Marshal returns Format, the length of m's protobuf encoding as a uvarint,
// then that encoding. The length makes a truncated or extended record an
// error: protobuf alone would read a record cut at a field boundary as one
// with fewer fields.
func Marshal(m proto.Message) []byte {
	opts := proto.MarshalOptions{Deterministic: true}
	size := opts.Size(m)
	b := make([]byte, 1, 1+protowire.SizeVarint(uint64(size))+size)
	b[0] = Format
	b = protowire.AppendVarint(b, uint64(size))
	b, err := opts.MarshalAppend(b, m)
	if err != nil {
		// Every field is bytes or a number: marshalling fails only on a
		// programmer's mistake.
		panic(fmt.Sprintf("record: marshal %T: %v", m, err))
	}
	return b
}

// Unmarshal decodes b, written by Marshal, into m.
func Unmarshal(b []byte, m proto.Message) error {
	body, err := body(b)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// body returns the protobuf encoding inside a record.
func body(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != Format {
		return nil, fmt.Errorf("%w: not format %d", ErrMalformed, Format)
	}
	size, n := protowire.ConsumeVarint(b[1:])
	if n < 0 || uint64(len(b)-1-n) != size {
		return nil, fmt.Errorf("%w: length does not match (%d bytes)", ErrMalformed, len(b))
	}
	return b[1+n:], nil
}

// TimeOf returns t as a Time; nil for the zero time.
func TimeOf(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	return &Time{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}
}

// AsTime returns the instant t names, in UTC; the zero time for nil.
func (t *Time) AsTime() time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Unix(t.Seconds, int64(t.Nanos)).UTC()
}

// MessageOf returns m as a Message record.
func MessageOf(m persistence.Message) *Message {
	return &Message{
		Seq:            m.Seq,
		Id:             []byte(m.ID),
		Role:           []byte(m.Role),
		TokenCount:     int64(m.TokenCount),
		CreatedAt:      TimeOf(m.CreatedAt),
		Content:        []byte(m.Content),
		IdempotencyKey: []byte(m.IdempotencyKey),
		FinishReason:   m.FinishReason,
	}
}

// AsMessage returns the persistence.Message m records.
func (m *Message) AsMessage() persistence.Message {
	return persistence.Message{
		Seq:            m.GetSeq(),
		ID:             string(m.GetId()),
		Role:           persistence.Role(m.GetRole()),
		Content:        string(m.GetContent()),
		TokenCount:     int(m.GetTokenCount()),
		CreatedAt:      m.GetCreatedAt().AsTime(),
		IdempotencyKey: string(m.GetIdempotencyKey()),
		FinishReason:   m.GetFinishReason(),
	}
}

// SessionKeyOf returns k as a SessionKey record.
func SessionKeyOf(k persistence.SessionKey) *SessionKey {
	return &SessionKey{Tenant: []byte(k.Tenant), Session: []byte(k.Session)}
}

// AsSessionKey returns the persistence.SessionKey k records.
func (k *SessionKey) AsSessionKey() persistence.SessionKey {
	return persistence.SessionKey{Tenant: string(k.GetTenant()), Session: string(k.GetSession())}
}

// KVKeyOf returns k as a KVKey record.
func KVKeyOf(k persistence.KVKey) *KVKey {
	return &KVKey{Tenant: []byte(k.Tenant), Space: []byte(k.Space), Key: []byte(k.Key)}
}

// AsKVKey returns the persistence.KVKey k records.
func (k *KVKey) AsKVKey() persistence.KVKey {
	return persistence.KVKey{Tenant: string(k.GetTenant()), Space: string(k.GetSpace()), Key: string(k.GetKey())}
}

// MetaOf returns m as a Meta record.
func MetaOf(m persistence.SessionMeta) *Meta {
	return &Meta{LastSeq: m.LastSeq, FirstSeq: m.FirstSeq}
}

// AsMeta returns the persistence.SessionMeta m records.
func (m *Meta) AsMeta() persistence.SessionMeta {
	return persistence.SessionMeta{LastSeq: m.GetLastSeq(), FirstSeq: m.GetFirstSeq()}
}

// SweepStatsOf returns s as a SweepStats record.
func SweepStatsOf(s persistence.SweepStats) *SweepStats {
	return &SweepStats{Messages: int64(s.Messages), KvEntries: int64(s.KVEntries), Sessions: int64(s.Sessions)}
}

// AsSweepStats returns the persistence.SweepStats s records.
func (s *SweepStats) AsSweepStats() persistence.SweepStats {
	return persistence.SweepStats{Messages: int(s.GetMessages()), KVEntries: int(s.GetKvEntries()), Sessions: int(s.GetSessions())}
}

// QuotaOf returns q's record, nil for the zero Quota (no limit).
func QuotaOf(q persistence.Quota) *Quota {
	if q == (persistence.Quota{}) {
		return nil
	}
	return &Quota{MaxStoredBytes: q.MaxStoredBytes, MaxSessions: q.MaxSessions, MaxCacheEntries: q.MaxCacheEntries}
}

// AsQuota returns the persistence.Quota of q; the zero Quota for nil.
func (q *Quota) AsQuota() persistence.Quota {
	return persistence.Quota{MaxStoredBytes: q.GetMaxStoredBytes(), MaxSessions: q.GetMaxSessions(), MaxCacheEntries: q.GetMaxCacheEntries()}
}

// MessageCreatedAt reads only the creation time of a Message record in b,
// for scans that look at nothing else (a sweep, a page's notBefore cut).
func MessageCreatedAt(b []byte) (time.Time, error) {
	b, err := body(b)
	if err != nil {
		return time.Time{}, err
	}
	var created []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return time.Time{}, fmt.Errorf("%w: message: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if num == 5 && typ == protowire.BytesType { // Message.created_at
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return time.Time{}, fmt.Errorf("%w: message: %v", ErrMalformed, protowire.ParseError(n))
			}
			created = v // Marshal writes it once
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return time.Time{}, fmt.Errorf("%w: message: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if created == nil {
		return time.Time{}, nil
	}
	var t Time
	if err := proto.Unmarshal(created, &t); err != nil {
		return time.Time{}, fmt.Errorf("%w: message time: %v", ErrMalformed, err)
	}
	return t.AsTime(), nil
}
