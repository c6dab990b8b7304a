// Package sse reads and writes server-sent events (the text/event-stream
// format of the WHATWG HTML standard, "Server-sent events").
//
// Scanner parses an upstream body into events; AppendData, AppendEvent and
// AppendComment encode events for a client. Both sides are built for the hot
// path of a streaming proxy: after warm-up they allocate nothing per event.
//
// The package depends on the standard library only.
package sse

import (
	"bytes"
	"errors"
	"io"
)

// DefaultMaxEventBytes is the cap used by NewScanner when maxEventBytes <= 0.
const DefaultMaxEventBytes = 1 << 20

// readBufSize is the size of the Scanner's read buffer. Lines that fit in it
// are parsed in place; longer ones are assembled in a separate line buffer.
const readBufSize = 8 << 10

// maxConsecutiveEmptyReads is how many (0, nil) reads in a row Scanner
// tolerates before failing with io.ErrNoProgress, as bufio does.
const maxConsecutiveEmptyReads = 100

// ErrTooLarge is returned by Scanner.Err when a single line, or the data of a
// single event, is longer than the scanner's maxEventBytes.
var ErrTooLarge = errors.New("sse: line or event data exceeds size limit")

// errBadRead is returned when the underlying reader reports an impossible
// byte count.
var errBadRead = errors.New("sse: reader returned invalid count")

var bom = []byte("\xEF\xBB\xBF")

// Scanner reads server-sent events from an io.Reader.
//
// Lines may end in LF, CRLF or a lone CR. A blank line dispatches the event
// being built. Lines starting with ':' are comments and are ignored. Other
// lines are "field:value" (one space after the colon is removed) or a bare
// field name with an empty value. The fields are:
//
//   - data: the value plus '\n' is appended to the event's data; the final
//     '\n' is removed when the event is dispatched;
//   - event: sets the event's name;
//   - id: sets the event's ID, unless the value contains a NUL byte;
//   - retry and unknown fields are ignored.
//
// An event is returned only if it has at least one data line or a non-empty
// name; an event that only carries an id (or nothing) is skipped. A UTF-8
// byte order mark at the very start of the stream is skipped. At a clean
// EOF, an event that was being built but was not terminated by a blank line
// is still returned (some providers omit the final blank line); after any
// other read error it is discarded.
//
// The ID is per event: unlike a browser's EventSource, Scanner does not carry
// the last event ID over to later events.
//
// Memory is bounded by the cap given to NewScanner: a line longer than the
// cap, or an event whose data would be longer than the cap, stops the
// scanner with ErrTooLarge before the buffers grow past it. The cap counts
// bytes as they arrive, without line terminators (a leading byte order mark
// is not counted).
//
// The slices of the Event returned by Event alias the Scanner's internal
// buffers and are valid only until the next call to Next or Reset; copy what
// must outlive it. A Scanner is not safe for concurrent use.
type Scanner struct {
	rd   io.Reader
	buf  []byte // read buffer; unread bytes are buf[r:w]
	r, w int
	rerr error // error from rd, reported once buf[r:w] is consumed
	err  error // terminal error, returned by Err
	max  int

	line    []byte // a line that spans more than one read, without terminator
	skipLF  bool   // the last line ended in CR: a following LF belongs to it
	started bool   // the first line (and a possible BOM) has been seen

	// The event being built.
	data    []byte // data lines, each followed by '\n'
	name    []byte
	id      []byte
	hasData bool
	hasID   bool

	ev Event

	beforeRead func() // called before each Read of rd; nil for none
}

// BeforeRead sets f to be called, on the scanning goroutine, each time the
// scanner is about to Read from its reader: that is, when every event
// already received has been returned and Next must wait for more. A relay
// uses it to flush what it wrote so far, so events reach the client as soon
// as the upstream pauses, without a flush per event. nil removes it.
func (s *Scanner) BeforeRead(f func()) { s.beforeRead = f }

// NewScanner returns a Scanner reading from r. maxEventBytes caps both the
// length of a single line and the length of one event's data; if it is <= 0,
// DefaultMaxEventBytes is used.
func NewScanner(r io.Reader, maxEventBytes int) *Scanner {
	if maxEventBytes <= 0 {
		maxEventBytes = DefaultMaxEventBytes
	}
	return &Scanner{
		rd:  r,
		buf: make([]byte, readBufSize),
		max: maxEventBytes,
	}
}

// Reset makes s read from r as if it were new, keeping its cap and its
// buffers so that a pooled Scanner allocates nothing for the next stream.
// Events returned before Reset are no longer valid.
func (s *Scanner) Reset(r io.Reader) {
	s.rd = r
	s.r, s.w = 0, 0
	s.rerr, s.err = nil, nil
	s.line = s.line[:0]
	s.skipLF, s.started = false, false
	s.resetEvent()
	s.ev = Event{}
}

// Next advances to the next event that has at least one data line or a
// name. It returns false at the end of the stream or on error; Err then
// tells which. Next invalidates the slices of the previous Event.
func (s *Scanner) Next() bool {
	s.ev = Event{}
	if s.err != nil {
		return false
	}
	s.resetEvent()
	for {
		line, ok := s.readLine()
		if !ok {
			if s.err != nil {
				return false
			}
			// Clean EOF: hand out a final event that lacked its blank line.
			return s.dispatch()
		}
		if len(line) == 0 {
			if s.dispatch() {
				return true
			}
			continue
		}
		if !s.field(line) {
			return false
		}
	}
}

// Event returns the current event, set by the last Next that returned true.
// The returned pointer and the slices in it are owned by s and are valid
// only until the next call to Next or Reset.
func (s *Scanner) Event() *Event { return &s.ev }

// Err returns the error that stopped the scanner: nil after a clean EOF,
// ErrTooLarge when a line or an event's data exceeded the cap, otherwise
// the error returned by the underlying reader.
func (s *Scanner) Err() error { return s.err }

func (s *Scanner) resetEvent() {
	s.data = s.data[:0]
	s.name = s.name[:0]
	s.id = s.id[:0]
	s.hasData, s.hasID = false, false
}

// dispatch publishes the event being built if it has data or a name, and
// otherwise discards it. It reports whether an event was published.
func (s *Scanner) dispatch() bool {
	if !s.hasData && len(s.name) == 0 {
		s.resetEvent()
		return false
	}
	s.ev = Event{}
	if s.hasData {
		s.ev.Data = s.data[:len(s.data)-1]
	}
	if len(s.name) > 0 {
		s.ev.Name = s.name
	}
	if s.hasID {
		s.ev.ID = s.id
	}
	return true
}

// field processes one non-empty line. It returns false, with s.err set, if
// the event's data would exceed the cap.
func (s *Scanner) field(line []byte) bool {
	if line[0] == ':' {
		return true // comment
	}
	name, value := line, []byte(nil)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		name, value = line[:c], line[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		// s.data already ends in '\n' per earlier line; that '\n' becomes a
		// separator, and this line's own '\n' is dropped at dispatch.
		if len(s.data)+len(value) > s.max {
			s.err = ErrTooLarge
			return false
		}
		s.data = grow(s.data, len(value)+1, s.max+1)
		s.data = append(s.data, value...)
		s.data = append(s.data, '\n')
		s.hasData = true
	case "event":
		s.name = grow(s.name[:0], len(value), s.max)
		s.name = append(s.name, value...)
	case "id":
		if bytes.IndexByte(value, 0) >= 0 {
			break
		}
		if s.id == nil {
			s.id = make([]byte, 0, 64) // ID must be non-nil even when empty
		}
		s.id = grow(s.id[:0], len(value), s.max)
		s.id = append(s.id, value...)
		s.hasID = true
	}
	return true
}

// readLine returns the next line without its terminator. It returns false at
// EOF (s.err nil) or on error (s.err set). The line aliases s.buf or s.line
// and is valid until the next readLine.
func (s *Scanner) readLine() ([]byte, bool) {
	limit := s.max
	if !s.started {
		limit += len(bom) // a leading BOM does not count against the cap
	}
	s.line = s.line[:0]
	spilled := false
	for {
		if s.r == s.w {
			if s.rerr != nil {
				break
			}
			s.fill()
			continue
		}
		if s.skipLF {
			s.skipLF = false
			if s.buf[s.r] == '\n' {
				s.r++
				continue
			}
		}
		b := s.buf[s.r:s.w]
		i := indexLineEnd(b)
		if i < 0 {
			// No terminator yet: keep the partial line and read more.
			if !s.spill(b, limit) {
				return nil, false
			}
			s.r = s.w
			spilled = true
			continue
		}
		seg := b[:i]
		s.skipLF = b[i] == '\r'
		s.r += i + 1
		if spilled {
			if !s.spill(seg, limit) {
				return nil, false
			}
			return s.finishLine(s.line)
		}
		if len(seg) > limit {
			s.err = ErrTooLarge
			return nil, false
		}
		return s.finishLine(seg)
	}
	// The buffer is drained and the reader has failed or ended.
	if s.rerr != io.EOF {
		s.err = s.rerr
		return nil, false
	}
	if spilled {
		return s.finishLine(s.line) // final line without terminator
	}
	return nil, false
}

// finishLine strips a BOM from the stream's first line and applies the cap.
func (s *Scanner) finishLine(line []byte) ([]byte, bool) {
	if !s.started {
		s.started = true
		line = bytes.TrimPrefix(line, bom)
	}
	if len(line) > s.max {
		s.err = ErrTooLarge
		return nil, false
	}
	return line, true
}

// spill appends p to the line buffer, failing with ErrTooLarge if the line
// would exceed limit.
func (s *Scanner) spill(p []byte, limit int) bool {
	if len(s.line)+len(p) > limit {
		s.err = ErrTooLarge
		return false
	}
	s.line = grow(s.line, len(p), limit)
	s.line = append(s.line, p...)
	return true
}

// fill reads into the (empty) read buffer, recording any error in s.rerr.
func (s *Scanner) fill() {
	s.r, s.w = 0, 0
	if s.beforeRead != nil {
		s.beforeRead()
	}
	for range maxConsecutiveEmptyReads {
		n, err := s.rd.Read(s.buf)
		if n < 0 || n > len(s.buf) {
			s.rerr = errBadRead
			return
		}
		s.w = n
		if err != nil {
			s.rerr = err
			return
		}
		if n > 0 {
			return
		}
	}
	s.rerr = io.ErrNoProgress
}

// indexLineEnd returns the index of the first CR or LF in b, or -1.
func indexLineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	j := i
	if j < 0 {
		j = len(b)
	}
	if k := bytes.IndexByte(b[:j], '\r'); k >= 0 {
		return k
	}
	return i
}

// grow returns b with room for n more bytes. The new capacity never exceeds
// limit; callers guarantee len(b)+n <= limit.
func grow(b []byte, n, limit int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	c := max(2*cap(b), len(b)+n, 256)
	c = min(c, limit)
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}
