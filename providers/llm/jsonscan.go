package llm

import (
	"strconv"
	"unicode/utf8"
)

// decoder is a validating JSON reader over one complete document, written for
// the request codec: it reads values straight into Go fields without building
// an intermediate tree, and allocates only for the strings and raw values the
// caller keeps.
//
// Strings are unescaped as encoding/json does: invalid UTF-8 and unpaired
// surrogate escapes become U+FFFD, control characters must be escaped.
// Nesting deeper than maxDepth is refused, so hostile input cannot exhaust the
// stack.
type decoder struct {
	data  []byte
	off   int
	depth int
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// syntaxError reports malformed JSON. It is wrapped in an *Error before it
// leaves the package.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.off) + ": " + e.msg
}

func (d *decoder) errSyntax(msg string) error {
	return &syntaxError{msg: msg, off: d.off}
}

// errUnexpected reports the byte at the cursor as unexpected, or the end of
// input.
func (d *decoder) errUnexpected(context string) error {
	if d.off >= len(d.data) {
		return d.errSyntax("unexpected end of JSON input")
	}
	return d.errSyntax("invalid character " + quoteByte(d.data[d.off]) + " " + context)
}

func quoteByte(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c >= 0x20 && c < 0x7f:
		return "'" + string(rune(c)) + "'"
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
}

func (d *decoder) skipWS() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, 0 at the end of input.
func (d *decoder) peek() byte {
	d.skipWS()
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

// atEnd reports whether only white space is left.
func (d *decoder) atEnd() bool {
	d.skipWS()
	return d.off == len(d.data)
}

// open consumes the '{' or '[' at the cursor.
func (d *decoder) open() error {
	d.depth++
	if d.depth > maxDepth {
		return d.errSyntax("exceeded max depth")
	}
	d.off++
	return nil
}

// nextMember advances to the next member of the object being read. It
// returns ok=false once the closing '}' is consumed. first is true before the
// first member. The returned key aliases the input unless it had escapes; it
// is valid until the next call.
func (d *decoder) nextMember(first bool) (key []byte, ok bool, err error) {
	c := d.peek()
	if c == '}' {
		d.off++
		d.depth--
		return nil, false, nil
	}
	if !first {
		if c != ',' {
			return nil, false, d.errUnexpected("after object key:value pair")
		}
		d.off++
		c = d.peek()
	}
	if c != '"' {
		return nil, false, d.errUnexpected("looking for beginning of object key string")
	}
	if key, err = d.readStringBytes(); err != nil {
		return nil, false, err
	}
	if d.peek() != ':' {
		return nil, false, d.errUnexpected("after object key")
	}
	d.off++
	return key, true, nil
}

// nextElem advances to the next element of the array being read. It returns
// false once the closing ']' is consumed.
func (d *decoder) nextElem(first bool) (bool, error) {
	c := d.peek()
	if c == ']' {
		d.off++
		d.depth--
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, d.errUnexpected("after array element")
		}
		d.off++
		if d.peek() == ']' {
			return false, d.errUnexpected("looking for beginning of value")
		}
	}
	return true, nil
}

// kindOf names the JSON type starting with c, for type errors, in OpenAI's
// words.
func kindOf(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// valueStart returns the first byte of the next value, or a syntax error if
// no value can start there.
func (d *decoder) valueStart() (byte, error) {
	c := d.peek()
	switch c {
	case '"', '{', '[', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return c, nil
	}
	return 0, d.errUnexpected("looking for beginning of value")
}

// param names a request field in errors, such as
// "messages[2].content[0].text": a[i].b[j].c, where a negative index and an
// empty name are left out. It is a value so that naming a field costs
// nothing until an error needs the name.
type param struct {
	a string
	i int
	b string
	j int
	c string
}

// field names a top-level field.
func field(name string) param { return param{a: name, i: -1, j: -1} }

// at names a.[i].b.
func at(a string, i int, b string) param { return param{a: a, i: i, b: b, j: -1} }

// at2 names a[i].b[j].c.
func at2(a string, i int, b string, j int, c string) param {
	return param{a: a, i: i, b: b, j: j, c: c}
}

func (p param) String() string {
	s := p.a
	if p.i >= 0 {
		s += "[" + strconv.Itoa(p.i) + "]"
	}
	s = joinField(s, p.b)
	if p.j >= 0 {
		s += "[" + strconv.Itoa(p.j) + "]"
	}
	return joinField(s, p.c)
}

func joinField(s, f string) string {
	switch {
	case f == "":
		return s
	case s == "":
		return f
	}
	return s + "." + f
}

// typeError skips the value at the cursor (so that a syntax error in it wins)
// and reports that the field named p should have been want.
func (d *decoder) typeError(p param, want string) error {
	param := p.String()
	c := d.peek()
	if err := d.skipValue(); err != nil {
		return err
	}
	got := kindOf(c)
	msg := "Invalid type for '" + param + "': expected " + want + ", but got " + got + " instead."
	if param == "" {
		msg = "The request body must be " + want + ", but got " + got + " instead."
	}
	return &Error{Kind: KindInvalidRequest, Msg: msg, Param: param, Code: "invalid_type"}
}

// readNull consumes a null literal if one is next.
func (d *decoder) readNull() (bool, error) {
	if d.peek() != 'n' {
		return false, nil
	}
	return true, d.literal("null")
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.off < len(lit) || string(d.data[d.off:d.off+len(lit)]) != lit {
		// Point at the first differing byte, as encoding/json does.
		for i := 0; i < len(lit); i++ {
			if d.off+i >= len(d.data) || d.data[d.off+i] != lit[i] {
				d.off += i
				return d.errUnexpected("in literal " + lit)
			}
		}
	}
	d.off += len(lit)
	return nil
}

// readStringBytes reads the string at the cursor (which must be '"'). The
// result aliases the input when the string has no escapes and is valid
// UTF-8; otherwise it is a new slice.
func (d *decoder) readStringBytes() ([]byte, error) {
	start := d.off + 1
	i := start
	for i < len(d.data) {
		c := d.data[i]
		if c == '"' {
			d.off = i + 1
			return d.data[start:i], nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
			continue
		}
		i++
	}
	// Slow path: escapes, control characters or invalid UTF-8.
	buf := make([]byte, 0, i-start+16)
	buf = append(buf, d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.off = i + 1
			return buf, nil
		case c == '\\':
			if i+1 >= len(d.data) {
				d.off = len(d.data)
				return nil, d.errSyntax("unexpected end of JSON input")
			}
			e := d.data[i+1]
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(d.data, i+2)
				if !ok {
					d.off = i + 1
					return nil, d.errSyntax("invalid \\u escape in string")
				}
				i += 6
				if r >= 0xD800 && r < 0xDC00 {
					// A high surrogate needs its low half.
					if r2, ok := hex4(d.data, i+2); ok && i+1 < len(d.data) && d.data[i] == '\\' && d.data[i+1] == 'u' && r2 >= 0xDC00 && r2 < 0xE000 {
						r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else if r >= 0xDC00 && r < 0xE000 {
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
				continue
			default:
				d.off = i + 1
				return nil, d.errSyntax("invalid escape character " + quoteByte(e) + " in string")
			}
			i += 2
		case c < 0x20:
			d.off = i
			return nil, d.errSyntax("invalid control character " + quoteByte(c) + " in string literal")
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, "\uFFFD"...)
			} else {
				buf = append(buf, d.data[i:i+size]...)
			}
			i += size
		}
	}
	d.off = len(d.data)
	return nil, d.errSyntax("unexpected end of JSON input")
}

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipString validates and skips the string at the cursor without
// unescaping it.
func (d *decoder) skipString() error {
	i := d.off + 1
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.off = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(d.data) {
				d.off = len(d.data)
				return d.errSyntax("unexpected end of JSON input")
			}
			switch d.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(d.data, i+2); !ok {
					d.off = i + 1
					return d.errSyntax("invalid \\u escape in string")
				}
				i += 6
			default:
				d.off = i + 1
				return d.errSyntax("invalid escape character " + quoteByte(d.data[i+1]) + " in string")
			}
		case c < 0x20:
			d.off = i
			return d.errSyntax("invalid control character " + quoteByte(c) + " in string literal")
		default:
			i++
		}
	}
	d.off = len(d.data)
	return d.errSyntax("unexpected end of JSON input")
}

// readNumber validates and returns the number literal at the cursor.
func (d *decoder) readNumber() ([]byte, error) {
	start := d.off
	i := d.off
	b := d.data
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		d.off = i
		return nil, d.errUnexpected("in numeric literal")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.off = i
			return nil, d.errUnexpected("after decimal point in numeric literal")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.off = i
			return nil, d.errUnexpected("in exponent of numeric literal")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.off = i
	return b[start:i], nil
}

// skipValue validates and skips the value at the cursor.
func (d *decoder) skipValue() error {
	c, err := d.valueStart()
	if err != nil {
		return err
	}
	switch c {
	case '"':
		return d.skipString()
	case '{':
		if err := d.open(); err != nil {
			return err
		}
		for first := true; ; first = false {
			_, ok, err := d.nextMember(first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := d.skipValue(); err != nil {
				return err
			}
		}
	case '[':
		if err := d.open(); err != nil {
			return err
		}
		for first := true; ; first = false {
			ok, err := d.nextElem(first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := d.skipValue(); err != nil {
				return err
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	_, err = d.readNumber()
	return err
}

// readRaw validates the value at the cursor and returns a copy of its text.
func (d *decoder) readRaw() ([]byte, error) {
	d.skipWS()
	start := d.off
	if err := d.skipValue(); err != nil {
		return nil, err
	}
	return append([]byte(nil), d.data[start:d.off]...), nil
}

// readRawNonNull is readRaw, except that null yields nil.
func (d *decoder) readRawNonNull() ([]byte, error) {
	if null, err := d.readNull(); null || err != nil {
		return nil, err
	}
	return d.readRaw()
}

// readString reads a string field; null yields "". Common short values are
// interned so that roles and part types cost no allocation.
func (d *decoder) readString(p param) (string, error) {
	switch c, err := d.valueStart(); {
	case err != nil:
		return "", err
	case c == 'n':
		return "", d.literal("null")
	case c != '"':
		return "", d.typeError(p, "a string")
	}
	b, err := d.readStringBytes()
	if err != nil {
		return "", err
	}
	return intern(b), nil
}

// intern returns a constant for the handful of values every request repeats.
func intern(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "user":
		return "user"
	case "assistant":
		return "assistant"
	case "system":
		return "system"
	case "developer":
		return "developer"
	case "tool":
		return "tool"
	case "text":
		return "text"
	case "image_url":
		return "image_url"
	case "function":
		return "function"
	case "auto":
		return "auto"
	case "low":
		return "low"
	case "high":
		return "high"
	case "float":
		return "float"
	case "base64":
		return "base64"
	}
	return string(b)
}

// readBool reads a boolean field; null yields false.
func (d *decoder) readBool(p param) (bool, error) {
	switch c, err := d.valueStart(); {
	case err != nil:
		return false, err
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return false, d.literal("null")
	}
	return false, d.typeError(p, "a boolean")
}

// readBoolPtr reads an optional boolean; null yields nil.
func (d *decoder) readBoolPtr(p param) (*bool, error) {
	if null, err := d.readNull(); null || err != nil {
		return nil, err
	}
	v, err := d.readBool(p)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// readInt reads an integer. A number with an integral value written with a
// fraction or exponent (1.0, 1e3) is accepted; 1.5 is not.
func (d *decoder) readInt(p param) (int64, error) {
	c, err := d.valueStart()
	if err != nil {
		return 0, err
	}
	if c != '-' && (c < '0' || c > '9') {
		return 0, d.typeError(p, "an integer")
	}
	start := d.off
	lit, err := d.readNumber()
	if err != nil {
		return 0, err
	}
	if n, ok := parseSmallInt(lit); ok {
		return n, nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err == nil && f == float64(int64(f)) && f >= -(1<<53) && f <= 1<<53 {
		return int64(f), nil
	}
	d.off = start
	return 0, d.typeError(p, "an integer")
}

// parseSmallInt parses an optionally negative run of at most 18 digits.
func parseSmallInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// readIntPtr reads an optional int; null yields nil.
func (d *decoder) readIntPtr(p param) (*int, error) {
	if null, err := d.readNull(); null || err != nil {
		return nil, err
	}
	n, err := d.readInt(p)
	if err != nil {
		return nil, err
	}
	v := int(n)
	if int64(v) != n {
		return nil, &Error{Kind: KindInvalidRequest, Param: p.String(), Code: "invalid_value",
			Msg: "Invalid '" + p.String() + "': integer out of range."}
	}
	return &v, nil
}

// readInt64Ptr reads an optional int64; null yields nil.
func (d *decoder) readInt64Ptr(p param) (*int64, error) {
	if null, err := d.readNull(); null || err != nil {
		return nil, err
	}
	n, err := d.readInt(p)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// readFloatPtr reads an optional number; null yields nil.
func (d *decoder) readFloatPtr(p param) (*float64, error) {
	c, err := d.valueStart()
	if err != nil {
		return nil, err
	}
	if c == 'n' {
		return nil, d.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return nil, d.typeError(p, "a number")
	}
	lit, err := d.readNumber()
	if err != nil {
		return nil, err
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return nil, &Error{Kind: KindInvalidRequest, Param: p.String(), Code: "invalid_value",
			Msg: "Invalid '" + p.String() + "': number out of range."}
	}
	return &f, nil
}

// with names field f inside p.
func (p param) with(f string) param {
	switch {
	case p.j >= 0 || p.b != "":
		p.c = joinField(p.c, f)
	case p.i >= 0:
		p.b = joinField(p.b, f)
	default:
		p.a = joinField(p.a, f)
	}
	return p
}
