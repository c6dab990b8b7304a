// Package binread reads the compact binary encodings the gateway writes
// with encoding/binary's Append functions (the ledger's spill records, the
// response cache's entries): bytes, varints and length-prefixed byte
// strings, with a sticky failure so that a decoder reads every field and
// checks once at the end. Standard library only; any package may use it.
package binread

import "encoding/binary"

// Reader reads from a byte slice it does not copy. After the first read
// that runs past the end (or finds a malformed varint) every read returns
// zero values and OK reports false. The zero Reader is empty. Not safe for
// concurrent use.
type Reader struct {
	b   []byte
	bad bool
}

// New returns a Reader over b.
func New(b []byte) Reader { return Reader{b: b} }

// OK reports whether every read so far succeeded.
func (r *Reader) OK() bool { return !r.bad }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) }

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.bad || len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Uvarint reads an unsigned varint (binary.AppendUvarint).
func (r *Reader) Uvarint() uint64 { return varint(r, binary.Uvarint) }

// Varint reads a signed varint (binary.AppendVarint).
func (r *Reader) Varint() int64 { return varint(r, binary.Varint) }

// varint reads one varint with dec (binary.Uvarint or binary.Varint).
func varint[T uint64 | int64](r *Reader, dec func([]byte) (T, int)) T {
	if r.bad {
		return 0
	}
	v, n := dec(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes reads a uvarint length and that many bytes. The result shares the
// Reader's slice: copy it (string(...)) to keep it past the input's life.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}
