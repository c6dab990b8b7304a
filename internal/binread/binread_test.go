package binread

import (
	"encoding/binary"
	"testing"
)

func TestReaderReadsWhatAppendWrote(t *testing.T) {
	var b []byte
	b = append(b, 7)
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -5)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	r := New(b)
	if got := r.Byte(); got != 7 {
		t.Errorf("Byte %d", got)
	}
	if got := r.Uvarint(); got != 300 {
		t.Errorf("Uvarint %d", got)
	}
	if got := r.Varint(); got != -5 {
		t.Errorf("Varint %d", got)
	}
	if got := string(r.Bytes()); got != "abc" {
		t.Errorf("Bytes %q", got)
	}
	if !r.OK() || r.Len() != 0 {
		t.Errorf("OK %v, %d left", r.OK(), r.Len())
	}
	// Every cut of the input fails somewhere, and stays failed.
	for n := 0; n < len(b); n++ {
		r := New(b[:n])
		r.Byte()
		r.Uvarint()
		r.Varint()
		r.Bytes()
		if r.OK() {
			t.Fatalf("input cut to %d of %d bytes read without failure", n, len(b))
		}
		if r.Byte() != 0 || r.Uvarint() != 0 || r.Varint() != 0 || r.Bytes() != nil {
			t.Fatal("a failed Reader returned a value")
		}
	}
	r = New(binary.AppendUvarint(nil, 10)) // a length past the end
	if r.Bytes() != nil || r.OK() {
		t.Error("Bytes read past the end")
	}
}
