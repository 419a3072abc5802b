// Package wire is the binary framing Parley's storage writes: varint
// integers, length-prefixed byte strings, and times as Unix seconds and
// nanoseconds (decoded in UTC, so time.Time{} round-trips to itself).
// Strings are carried as bytes, never re-encoded, so keys that are not
// valid UTF-8 survive. persistence stores its values in it and raftstore
// its log entries, commands and results; each puts its own format byte in
// front.
package wire

import (
	"encoding/binary"
	"errors"
	"time"
)

// ErrMalformed reports bytes a Decoder cannot decode.
var ErrMalformed = errors.New("malformed encoding")

// Encoder appends fields to a buffer. The zero value is ready to use.
type Encoder struct{ buf []byte }

// Grow makes room for n more bytes, for a caller that knows the size.
func (e *Encoder) Grow(n int) {
	if cap(e.buf)-len(e.buf) < n {
		e.buf = append(make([]byte, 0, len(e.buf)+n), e.buf...)
	}
}

// Encoded returns what was written.
func (e *Encoder) Encoded() []byte { return e.buf }

func (e *Encoder) Byte(v byte)              { e.buf = append(e.buf, v) }
func (e *Encoder) Uvarint(v uint64)         { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *Encoder) Varint(v int64)           { e.buf = binary.AppendVarint(e.buf, v) }
func (e *Encoder) String(s string)          { e.Uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *Encoder) Bytes(b []byte)           { e.Uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *Encoder) Time(t time.Time)         { e.Varint(t.Unix()); e.Uvarint(uint64(t.Nanosecond())) }
func (e *Encoder) Duration(d time.Duration) { e.Varint(int64(d)) }

func (e *Encoder) Bool(v bool) {
	if v {
		e.Byte(1)
	} else {
		e.Byte(0)
	}
}

// Decoder reads what an Encoder wrote. The first failure sticks (Err) and
// later reads return zero values, so a caller checks once at the end.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder reads b.
func NewDecoder(b []byte) Decoder { return Decoder{b: b} }

// Err is the first failure, or nil.
func (d *Decoder) Err() error { return d.err }

// Rest returns the bytes not read yet.
func (d *Decoder) Rest() []byte { return d.b }

// Finish reports the first failure, or trailing bytes nobody read.
func (d *Decoder) Finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrMalformed
	}
	return d.err
}

func (d *Decoder) fail() { d.err = ErrMalformed }

func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Bytes returns a slice of the input, not a copy.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// String returns a copy, so the input may be reused afterwards.
func (d *Decoder) String() string { return string(d.Bytes()) }

// Skip passes over a string or byte field without copying it.
func (d *Decoder) Skip() { d.Bytes() }

func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *Decoder) Duration() time.Duration { return time.Duration(d.Varint()) }

func (d *Decoder) Time() time.Time {
	sec := d.Varint()
	nsec := d.Uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// Count reads a length that announces items of at least minSize bytes
// each, and refuses one the remaining input cannot hold, so that a corrupt
// length never makes the caller allocate a huge slice.
func (d *Decoder) Count(minSize int) int {
	n := d.Uvarint()
	if d.err == nil && n > uint64(len(d.b)/max(minSize, 1)) {
		d.fail()
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}
