package wire

import (
	"errors"
	"testing"
	"time"
)

func TestRoundTripAndStickyFailure(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 5, time.UTC)
	var e Encoder
	e.Grow(64)
	e.Byte(7)
	e.Uvarint(1 << 40)
	e.Varint(-3)
	e.String("héllo\xff") // not valid UTF-8: kept as bytes
	e.Bytes([]byte{1, 2})
	e.Time(at)
	e.Time(time.Time{})
	e.Bool(true)
	e.Duration(time.Minute)
	e.Uvarint(2) // a count of two one-byte items
	e.Byte(1)
	e.Byte(2)

	d := NewDecoder(e.Encoded())
	if d.Byte() != 7 || d.Uvarint() != 1<<40 || d.Varint() != -3 || d.String() != "héllo\xff" ||
		string(d.Bytes()) != "\x01\x02" || !d.Time().Equal(at) || !d.Time().IsZero() || !d.Bool() ||
		d.Duration() != time.Minute || d.Count(1) != 2 {
		t.Fatal("a field did not round-trip")
	}
	d.Byte()
	d.Byte()
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}

	// A count the input cannot hold, then every later read: zero values
	// and the first error.
	d = NewDecoder([]byte{200, 1})
	if d.Count(1) != 0 || d.Uvarint() != 0 || !errors.Is(d.Finish(), ErrMalformed) {
		t.Fatal("an impossible count was accepted")
	}
	// Trailing bytes and out-of-range nanoseconds are refused.
	d = NewDecoder([]byte{1, 2})
	d.Byte()
	if !errors.Is(d.Finish(), ErrMalformed) {
		t.Fatal("trailing bytes accepted")
	}
	d = NewDecoder([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	if d.Time(); !errors.Is(d.Err(), ErrMalformed) {
		t.Fatal("nanoseconds past a second accepted")
	}
}
