package cache

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/aigw/aigw/providers/llm"
)

// maxJSONDepth bounds the nesting canonJSON follows; deeper values are
// hashed verbatim.
const maxJSONDepth = 200

// canonJSON rewrites JSON values in a canonical form: object members
// sorted by key (bytewise, on the canonical encoding of the key; duplicate
// keys kept in their order), no white space, strings re-encoded as
// llm.AppendJSONString writes them (escapes decoded first), numbers in one
// form. Its buffers are reused from call to call: it is not safe for
// concurrent use, and the slice canonical returns is valid until the next
// call.
type canonJSON struct {
	src     []byte
	off     int
	depth   int
	out     []byte
	tmp     []byte
	members []member

	// Initial storage for out, tmp and members (see init), enough for
	// typical tool schemas without growing.
	outArr [2048]byte
	tmpArr [1024]byte
	memArr [32]member
}

// init points the buffers at the struct's own storage.
func (c *canonJSON) init() {
	c.out, c.tmp, c.members = c.outArr[:0], c.tmpArr[:0], c.memArr[:0]
}

// member is one object member written to out: its encoded key and the
// whole `"key":value` span.
type member struct {
	keyStart, keyEnd int
	start, end       int
}

// canonical returns the canonical form of src, or false when src is not
// one valid JSON value.
func (c *canonJSON) canonical(src []byte) ([]byte, bool) {
	c.src, c.off, c.depth = src, 0, 0
	c.out = c.out[:0]
	c.members = c.members[:0]
	ok := c.value()
	if ok {
		c.off = skipWS(c.src, c.off)
		ok = c.off == len(c.src)
	}
	c.src = nil
	return c.out, ok
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func (c *canonJSON) value() bool {
	c.off = skipWS(c.src, c.off)
	if c.off >= len(c.src) {
		return false
	}
	switch ch := c.src[c.off]; {
	case ch == '{':
		return c.object()
	case ch == '[':
		return c.array()
	case ch == '"':
		return c.str()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.number()
	}
	return false
}

func (c *canonJSON) literal(lit string) bool {
	if !bytes.HasPrefix(c.src[c.off:], []byte(lit)) {
		return false
	}
	c.off += len(lit)
	c.out = append(c.out, lit...)
	return true
}

func (c *canonJSON) object() bool {
	if c.depth++; c.depth > maxJSONDepth {
		return false
	}
	defer func() { c.depth-- }()
	c.off++ // '{'
	c.out = append(c.out, '{')
	base := len(c.members)
	start := len(c.out)
	c.off = skipWS(c.src, c.off)
	if c.off < len(c.src) && c.src[c.off] == '}' {
		c.off++
		c.out = append(c.out, '}')
		return true
	}
	for {
		c.off = skipWS(c.src, c.off)
		if c.off >= len(c.src) || c.src[c.off] != '"' {
			return false
		}
		m := member{start: len(c.out), keyStart: len(c.out)}
		if !c.str() {
			return false
		}
		m.keyEnd = len(c.out)
		c.off = skipWS(c.src, c.off)
		if c.off >= len(c.src) || c.src[c.off] != ':' {
			return false
		}
		c.off++
		c.out = append(c.out, ':')
		if !c.value() {
			return false
		}
		m.end = len(c.out)
		c.members = append(c.members, m)
		c.off = skipWS(c.src, c.off)
		if c.off >= len(c.src) {
			return false
		}
		if c.src[c.off] == '}' {
			c.off++
			break
		}
		if c.src[c.off] != ',' {
			return false
		}
		c.off++
	}
	ms := c.members[base:]
	// Members were written back to back, without commas; write them again
	// in key order, separated by commas.
	c.tmp = append(c.tmp[:0], c.out[start:]...)
	slices.SortStableFunc(ms, func(a, b member) int {
		return bytes.Compare(c.tmp[a.keyStart-start:a.keyEnd-start], c.tmp[b.keyStart-start:b.keyEnd-start])
	})
	c.out = c.out[:start]
	for i, m := range ms {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.tmp[m.start-start:m.end-start]...)
	}
	c.out = append(c.out, '}')
	c.members = c.members[:base]
	return true
}

func (c *canonJSON) array() bool {
	if c.depth++; c.depth > maxJSONDepth {
		return false
	}
	defer func() { c.depth-- }()
	c.off++ // '['
	c.out = append(c.out, '[')
	c.off = skipWS(c.src, c.off)
	if c.off < len(c.src) && c.src[c.off] == ']' {
		c.off++
		c.out = append(c.out, ']')
		return true
	}
	for first := true; ; first = false {
		if !first {
			c.out = append(c.out, ',')
		}
		if !c.value() {
			return false
		}
		c.off = skipWS(c.src, c.off)
		if c.off >= len(c.src) {
			return false
		}
		if c.src[c.off] == ']' {
			c.off++
			c.out = append(c.out, ']')
			return true
		}
		if c.src[c.off] != ',' {
			return false
		}
		c.off++
	}
}

// str copies the string at the cursor in canonical encoding.
func (c *canonJSON) str() bool {
	i := c.off + 1
	escaped, ascii := false, true
	for ; i < len(c.src); i++ {
		ch := c.src[i]
		if ch == '"' {
			break
		}
		if ch < 0x20 {
			return false
		}
		if ch >= utf8.RuneSelf {
			ascii = false
		}
		if ch == '\\' {
			escaped = true
			i++
		}
	}
	if i >= len(c.src) {
		return false
	}
	lit := c.src[c.off : i+1]
	body := lit[1 : len(lit)-1]
	c.off = i + 1
	// Without escapes, valid UTF-8 and no U+2028/U+2029, the literal is
	// already what AppendJSONString writes.
	if !escaped && (ascii || utf8.Valid(body) && !bytes.Contains(body, []byte("\u2028")) && !bytes.Contains(body, []byte("\u2029"))) {
		c.out = append(c.out, lit...)
		return true
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return false
	}
	c.out = llm.AppendJSONString(c.out, s)
	return true
}

// number copies the number at the cursor in canonical form: an integer
// literal as written (without a sign on zero); any other number as the
// float64 it denotes, written as an integer when it is one below 2^53,
// otherwise in strconv's shortest 'g' form.
func (c *canonJSON) number() bool {
	start := c.off
	i := c.off
	if i < len(c.src) && c.src[i] == '-' {
		i++
	}
	digits := i
	for i < len(c.src) && c.src[i] >= '0' && c.src[i] <= '9' {
		i++
	}
	if i == digits || (c.src[digits] == '0' && i-digits > 1) {
		return false // no digits, or a leading zero
	}
	integer := true
	if i < len(c.src) && c.src[i] == '.' {
		integer = false
		i++
		f := i
		for i < len(c.src) && c.src[i] >= '0' && c.src[i] <= '9' {
			i++
		}
		if i == f {
			return false
		}
	}
	if i < len(c.src) && (c.src[i] == 'e' || c.src[i] == 'E') {
		integer = false
		i++
		if i < len(c.src) && (c.src[i] == '+' || c.src[i] == '-') {
			i++
		}
		e := i
		for i < len(c.src) && c.src[i] >= '0' && c.src[i] <= '9' {
			i++
		}
		if i == e {
			return false
		}
	}
	lit := c.src[start:i]
	c.off = i
	if integer {
		if string(lit) == "-0" {
			lit = lit[1:]
		}
		c.out = append(c.out, lit...)
		return true
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		// Out of range: keep the literal; it is valid JSON.
		c.out = append(c.out, lit...)
		return true
	}
	if f == 0 {
		f = 0
	}
	if f < 1<<53 && f > -(1<<53) && f == float64(int64(f)) {
		c.out = strconv.AppendInt(c.out, int64(f), 10)
		return true
	}
	c.out = strconv.AppendFloat(c.out, f, 'g', -1, 64)
	return true
}
