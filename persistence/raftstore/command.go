package raftstore

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-chat/parley/persistence"
)

// # Commands, queries and results
//
// Every write becomes a command, an entry of the raft log that each member's
// state machine decodes and carries out against its Badger store, in log
// order. Reads become queries that the leader answers from its own state
// machine. Both are sent to the leader by members that are not (forward.go),
// and their results come back the same way.
//
// All three are a format byte, then the fields of their kind in the framing
// of internal/wire. A later format gets a new first byte; a member refuses (and
// logs) a command it cannot decode, which every member does alike, so the
// copies never diverge over it. Every member of a group must therefore run a
// version that knows every format in its log before the group is asked to
// write one.

// The formats. A command or result is written in the oldest format that
// carries it: format 2 only when one of its messages has an idempotency
// key, format 3 only when one has a finish reason. All decode. So a log written by an earlier version replays, and a
// group can be upgraded one member at a time as long as clients send no
// Idempotency-Key until every member runs the new version (a member that
// only knows format 1 skips a format-2 entry). Queries (and the envelope
// of forward.go) carry no message and are format 1.
const (
	// wireFormatV1 is the first format.
	wireFormatV1 = 1
	// wireFormatV2 is wireFormatV1 with each message's idempotency key
	// after its content.
	wireFormatV2 = 2
	// wireFormatV3 is wireFormatV2 with each message's finish reason after
	// its idempotency key.
	wireFormatV3 = 3
)

// messageFormat reports whether f is a format of commands and results.
func messageFormat(f byte) bool { return f == wireFormatV1 || f == wireFormatV2 || f == wireFormatV3 }

// opCode names a write.
type opCode byte

const (
	opAppend opCode = iota + 1
	opDeleteSession
	opPut
	opDelete
	opSweep
	opDeleteTenant
)

func (op opCode) String() string {
	switch op {
	case opAppend:
		return "append"
	case opDeleteSession:
		return "delete session"
	case opPut:
		return "put"
	case opDelete:
		return "delete"
	case opSweep:
		return "sweep"
	case opDeleteTenant:
		return "delete tenant"
	}
	return fmt.Sprintf("op %d", byte(op))
}

// command is one write. Only the fields of its op are encoded.
type command struct {
	op opCode

	session      persistence.SessionKey // opAppend, opDeleteSession
	expectedLast uint64                 // opAppend
	msgs         []persistence.Message  // opAppend
	maxMessages  int                    // opAppend

	kv        persistence.KVKey // opPut, opDelete
	value     []byte            // opPut
	expiresAt time.Time         // opPut

	now       time.Time                // opSweep
	retention map[string]time.Duration // opSweep: the tenants whose messages expire

	tenant string // opDeleteTenant
}

// formatOf is the oldest format that carries msgs.
func formatOf(msgs []persistence.Message) byte {
	f := byte(wireFormatV1)
	for _, m := range msgs {
		if m.FinishReason != "" {
			return wireFormatV3
		}
		if m.IdempotencyKey != "" {
			f = wireFormatV2
		}
	}
	return f
}

func encodeCommand(c command) []byte {
	var e encoder
	f := formatOf(c.msgs)
	e.Byte(f)
	e.Byte(byte(c.op))
	switch c.op {
	case opAppend:
		e.sessionKey(c.session)
		e.Uvarint(c.expectedLast)
		e.Varint(int64(c.maxMessages))
		e.Uvarint(uint64(len(c.msgs)))
		for _, m := range c.msgs {
			e.message(m, f)
		}
	case opDeleteSession:
		e.sessionKey(c.session)
	case opPut:
		e.kvKey(c.kv)
		e.Bytes(c.value)
		e.Time(c.expiresAt)
	case opDelete:
		e.kvKey(c.kv)
	case opSweep:
		e.Time(c.now)
		tenants := make([]string, 0, len(c.retention))
		for t := range c.retention {
			tenants = append(tenants, t)
		}
		slices.Sort(tenants) // the same sweep always encodes the same way
		e.Uvarint(uint64(len(tenants)))
		for _, t := range tenants {
			e.String(t)
			e.Duration(c.retention[t])
		}
	case opDeleteTenant:
		e.String(c.tenant)
	default:
		panic(fmt.Sprintf("raftstore: encode of unknown %s", c.op))
	}
	return e.Encoded()
}

func decodeCommand(b []byte) (command, error) {
	d := newDecoder(b)
	f := d.Byte()
	if d.Err() == nil && !messageFormat(f) {
		return command{}, fmt.Errorf("command format %d unknown", f)
	}
	c := command{op: opCode(d.Byte())}
	switch c.op {
	case opAppend:
		c.session = d.sessionKey()
		c.expectedLast = d.Uvarint()
		c.maxMessages = int(d.Varint())
		n := d.Count(minMessageSize(f))
		c.msgs = make([]persistence.Message, n)
		for i := range c.msgs {
			c.msgs[i] = d.message(f)
		}
	case opDeleteSession:
		c.session = d.sessionKey()
	case opPut:
		c.kv = d.kvKey()
		c.value = d.Bytes()
		c.expiresAt = d.Time()
	case opDelete:
		c.kv = d.kvKey()
	case opSweep:
		c.now = d.Time()
		n := d.Count(2)
		c.retention = make(map[string]time.Duration, n)
		for range n {
			t := d.String()
			c.retention[t] = d.Duration()
		}
	case opDeleteTenant:
		c.tenant = d.String()
	default:
		if d.Err() == nil {
			return command{}, fmt.Errorf("unknown %s", c.op)
		}
	}
	if err := d.Finish(); err != nil {
		return command{}, fmt.Errorf("%s command: %w", c.op, err)
	}
	return c, nil
}

// queryKind names a read.
type queryKind byte

const (
	queryMeta queryKind = iota + 1
	queryPage
	queryGet
)

// query is one read. Only the fields of its kind are encoded.
type query struct {
	kind queryKind

	session   persistence.SessionKey // queryMeta, queryPage
	before    uint64                 // queryPage
	limit     int                    // queryPage
	notBefore time.Time              // queryPage

	kv  persistence.KVKey // queryGet
	now time.Time         // queryGet
}

func encodeQuery(q query) []byte {
	var e encoder
	e.Byte(wireFormatV1)
	e.Byte(byte(q.kind))
	switch q.kind {
	case queryMeta:
		e.sessionKey(q.session)
	case queryPage:
		e.sessionKey(q.session)
		e.Uvarint(q.before)
		e.Varint(int64(q.limit))
		e.Time(q.notBefore)
	case queryGet:
		e.kvKey(q.kv)
		e.Time(q.now)
	default:
		panic(fmt.Sprintf("raftstore: encode of unknown query %d", q.kind))
	}
	return e.Encoded()
}

func decodeQuery(b []byte) (query, error) {
	d := newDecoder(b)
	if f := d.Byte(); d.Err() == nil && f != wireFormatV1 {
		return query{}, fmt.Errorf("query format %d unknown", f)
	}
	q := query{kind: queryKind(d.Byte())}
	switch q.kind {
	case queryMeta:
		q.session = d.sessionKey()
	case queryPage:
		q.session = d.sessionKey()
		q.before = d.Uvarint()
		q.limit = int(d.Varint())
		q.notBefore = d.Time()
	case queryGet:
		q.kv = d.kvKey()
		q.now = d.Time()
	default:
		if d.Err() == nil {
			return query{}, fmt.Errorf("unknown query %d", q.kind)
		}
	}
	if err := d.Finish(); err != nil {
		return query{}, fmt.Errorf("query: %w", err)
	}
	return q, nil
}

// result is the outcome of a command or a query: err, or the fields its
// kind fills.
type result struct {
	err error

	meta  persistence.SessionMeta // opAppend, queryMeta
	stats persistence.SweepStats  // opSweep
	msgs  []persistence.Message   // queryPage
	value []byte                  // queryGet
	exp   time.Time               // queryGet
	found bool                    // queryGet
}

// errCode carries an error's meaning across the wire, so that errors.Is
// still works on the member that forwarded the request.
type errCode byte

const (
	codeOK errCode = iota
	codeConflict
	codeInvalidKey
	codeNotLeader
	codeNoQuorum
	codeUnavailable
	codeOther
)

func codeOf(err error) errCode {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, errNotLeader):
		return codeNotLeader
	case errors.Is(err, ErrNoQuorum):
		return codeNoQuorum
	case errors.Is(err, ErrUnavailable), errors.Is(err, persistence.ErrClosed):
		// A leader that is closing cannot serve the request; to the
		// member that forwarded it, that is unavailability, not its own
		// closing.
		return codeUnavailable
	case errors.Is(err, persistence.ErrSequenceConflict):
		return codeConflict
	case errors.Is(err, persistence.ErrInvalidKey):
		return codeInvalidKey
	}
	return codeOther
}

// remoteError is an error that came back from the leader: its text, and the
// sentinel its code stands for.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func errorOf(code errCode, msg string) error {
	var sentinel error
	switch code {
	case codeOK:
		return nil
	case codeConflict:
		sentinel = persistence.ErrSequenceConflict
	case codeInvalidKey:
		sentinel = persistence.ErrInvalidKey
	case codeNotLeader:
		sentinel = errNotLeader
	case codeNoQuorum:
		sentinel = ErrNoQuorum
	case codeUnavailable:
		sentinel = ErrUnavailable
	}
	return &remoteError{msg: msg, sentinel: sentinel}
}

func encodeResult(r result) []byte {
	var e encoder
	f := formatOf(r.msgs)
	e.Byte(f)
	e.Byte(byte(codeOf(r.err)))
	if r.err != nil {
		e.String(r.err.Error())
		return e.Encoded()
	}
	e.Uvarint(r.meta.LastSeq)
	e.Uvarint(r.meta.FirstSeq)
	e.Varint(int64(r.stats.Messages))
	e.Varint(int64(r.stats.KVEntries))
	e.Varint(int64(r.stats.Sessions))
	e.Bool(r.found)
	e.Bytes(r.value)
	e.Time(r.exp)
	e.Uvarint(uint64(len(r.msgs)))
	for _, m := range r.msgs {
		e.message(m, f)
	}
	return e.Encoded()
}

func decodeResult(b []byte) (result, error) {
	d := newDecoder(b)
	f := d.Byte()
	if d.Err() == nil && !messageFormat(f) {
		return result{}, fmt.Errorf("result format %d unknown", f)
	}
	var r result
	if code := errCode(d.Byte()); code != codeOK {
		r.err = errorOf(code, d.String())
		return r, d.Finish()
	}
	r.meta.LastSeq = d.Uvarint()
	r.meta.FirstSeq = d.Uvarint()
	r.stats.Messages = int(d.Varint())
	r.stats.KVEntries = int(d.Varint())
	r.stats.Sessions = int(d.Varint())
	r.found = d.Bool()
	if v := d.Bytes(); r.found {
		r.value = append([]byte{}, v...)
	}
	r.exp = d.Time()
	n := d.Count(minMessageSize(f))
	if n > 0 {
		r.msgs = make([]persistence.Message, n)
		for i := range r.msgs {
			r.msgs[i] = d.message(f)
		}
	}
	if err := d.Finish(); err != nil {
		return result{}, fmt.Errorf("result: %w", err)
	}
	return r, nil
}

// minMessageSize is the fewest bytes one message of format f takes: a
// byte for each of its fields (six in format 1, seven in format 2, eight
// in format 3) but the time, which takes two.
func minMessageSize(f byte) int {
	switch f {
	case wireFormatV1:
		return 7
	case wireFormatV2:
		return 8
	}
	return 9
}

// message writes m in format f; format 1 has no idempotency key, formats
// 1 and 2 no finish reason.
func (e *encoder) message(m persistence.Message, f byte) {
	e.Uvarint(m.Seq)
	e.String(m.ID)
	e.String(string(m.Role))
	e.Varint(int64(m.TokenCount))
	e.Time(m.CreatedAt)
	e.String(m.Content)
	if f != wireFormatV1 {
		e.String(m.IdempotencyKey)
	}
	if f == wireFormatV3 {
		e.String(m.FinishReason)
	}
}

// message reads a message of format f (see encoder.message).
func (d *decoder) message(f byte) persistence.Message {
	var m persistence.Message
	m.Seq = d.Uvarint()
	m.ID = d.String()
	m.Role = persistence.Role(d.String())
	m.TokenCount = int(d.Varint())
	m.CreatedAt = d.Time()
	m.Content = d.String()
	if f != wireFormatV1 {
		m.IdempotencyKey = d.String()
	}
	if f == wireFormatV3 {
		m.FinishReason = d.String()
	}
	return m
}

func (e *encoder) sessionKey(k persistence.SessionKey) {
	e.String(k.Tenant)
	e.String(k.Session)
}

func (d *decoder) sessionKey() persistence.SessionKey {
	return persistence.SessionKey{Tenant: d.String(), Session: d.String()}
}

func (e *encoder) kvKey(k persistence.KVKey) {
	e.String(k.Tenant)
	e.String(k.Space)
	e.String(k.Key)
}

func (d *decoder) kvKey() persistence.KVKey {
	return persistence.KVKey{Tenant: d.String(), Space: d.String(), Key: d.String()}
}
