package raftstore

import (
	"errors"
	"fmt"
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
// All three are records of persistence/record (records.go): a format byte,
// a length and a protobuf message. A member refuses (and logs) a command it
// cannot decode, which every member of one version does alike, so the
// copies never diverge over it.
//
// Earlier versions wrote hand-framed formats (a format byte, then the
// fields of the kind in the framing of internal/wire), which still decode
// here so that a log written by one replays: format 1; format 2, format 1
// with each message's idempotency key; format 3, format 2 with a sweep's
// leaderNow. A member of such a version cannot decode records; what a group
// of mixed versions does is in docs/durability.md (Upgrades). The envelope
// of forward.go is format 1 still.
const (
	// wireFormatV1 is the first hand-framed format.
	wireFormatV1 = 1
	// wireFormatV2 is wireFormatV1 with each message's idempotency key
	// after its content.
	wireFormatV2 = 2
	// wireFormatV3 is wireFormatV2 with a sweep's leaderNow after its now.
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
	quota        persistence.Quota      // opAppend, opPut: the tenant's, decided by every member alike

	kv        persistence.KVKey // opPut, opDelete
	value     []byte            // opPut
	expiresAt time.Time         // opPut

	now       time.Time                // opSweep
	leaderNow time.Time                // opSweep: the leader's clock when it proposed (zero in format 1 and 2)
	retention map[string]time.Duration // opSweep: the tenants whose messages expire

	tenant string // opDeleteTenant
}

// decodeLegacyCommand decodes a command of formats 1 to 3.
func decodeLegacyCommand(b []byte) (command, error) {
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
		if f == wireFormatV3 {
			c.leaderNow = d.Time()
		}
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

// decodeLegacyQuery decodes a query of format 1.
func decodeLegacyQuery(b []byte) (query, error) {
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
	codeQuotaExceeded
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
	case errors.Is(err, persistence.ErrQuotaExceeded):
		return codeQuotaExceeded
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
	case codeQuotaExceeded:
		sentinel = persistence.ErrQuotaExceeded
	}
	return &remoteError{msg: msg, sentinel: sentinel}
}

// decodeLegacyResult decodes a result of formats 1 and 2.
func decodeLegacyResult(b []byte) (result, error) {
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
// byte for each of its fields (six in format 1, seven in format 2) but
// the time, which takes two.
func minMessageSize(f byte) int {
	if f == wireFormatV1 {
		return 7
	}
	return 8
}

// message reads a message of format f; format 1 has no idempotency key.
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
	return m
}

func (d *decoder) sessionKey() persistence.SessionKey {
	return persistence.SessionKey{Tenant: d.String(), Session: d.String()}
}

func (d *decoder) kvKey() persistence.KVKey {
	return persistence.KVKey{Tenant: d.String(), Space: d.String(), Key: d.String()}
}
