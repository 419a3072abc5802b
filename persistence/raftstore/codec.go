package raftstore

import (
	"encoding/binary"
	"errors"
	"time"
)

// The binary framing shared by log entries, commands, queries and results:
// varint integers, length-prefixed byte strings, and times as Unix seconds
// and nanoseconds (decoded in UTC, so time.Time{} round-trips to itself).
// Strings are carried as bytes, never re-encoded, so keys that are not
// valid UTF-8 survive.

// errMalformed reports bytes this code cannot decode.
var errMalformed = errors.New("malformed encoding")

type encoder struct{ b []byte }

func (e *encoder) byte(v byte)              { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64)         { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)           { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) string(s string)          { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(b []byte)           { e.uvarint(uint64(len(b))); e.b = append(e.b, b...) }
func (e *encoder) time(t time.Time)         { e.varint(t.Unix()); e.uvarint(uint64(t.Nanosecond())) }
func (e *encoder) bool(v bool)              { e.byte(boolByte(v)) }
func (e *encoder) duration(d time.Duration) { e.varint(int64(d)) }

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decoder reads what encoder wrote; the first failure sticks in err and
// later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = errMalformed }

func (d *decoder) byte() byte {
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

func (d *decoder) uvarint() uint64 {
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

func (d *decoder) varint() int64 {
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

// bytes returns a slice of the input, not a copy.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
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

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *decoder) duration() time.Duration { return time.Duration(d.varint()) }

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// count reads a length that announces n items of at least minSize bytes
// each, and refuses one the remaining input cannot hold, so that a corrupt
// length never makes the caller allocate a huge slice.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/max(minSize, 1)) {
		d.fail()
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

// finish reports the first failure, or trailing bytes nobody read.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errMalformed
	}
	return d.err
}
