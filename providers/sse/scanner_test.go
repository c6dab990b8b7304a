package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// copyEvent returns a deep copy of e that keeps nil and empty apart.
func copyEvent(e *Event) Event {
	cp := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		return append([]byte{}, b...)
	}
	return Event{Name: cp(e.Name), Data: cp(e.Data), ID: cp(e.ID)}
}

// fmtEvent renders an event for diffs; nil slices print as <nil>.
func fmtEvent(e Event) string {
	f := func(b []byte) string {
		if b == nil {
			return "<nil>"
		}
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("{Name:%s Data:%s ID:%s}", f(e.Name), f(e.Data), f(e.ID))
}

func fmtEvents(evs []Event) string {
	var sb strings.Builder
	for _, e := range evs {
		sb.WriteString(fmtEvent(e))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// scanAll drains a Scanner over r, copying every event.
func scanAll(r io.Reader, maxEventBytes int) ([]Event, error) {
	s := NewScanner(r, maxEventBytes)
	var evs []Event
	for s.Next() {
		evs = append(evs, copyEvent(s.Event()))
	}
	return evs, s.Err()
}

// chunkReader returns its input in the given chunk sizes (the last size
// repeats), then io.EOF.
type chunkReader struct {
	p     []byte
	sizes []int
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.p) == 0 {
		return 0, io.EOF
	}
	n := c.sizes[0]
	if len(c.sizes) > 1 {
		c.sizes = c.sizes[1:]
	}
	n = min(n, len(b), len(c.p))
	copy(b, c.p[:n])
	c.p = c.p[n:]
	return n, nil
}

// readers returns the ways every table case is fed to the Scanner: whole,
// byte by byte, halved, with data and EOF together, and split in two at
// every offset.
func readers(in string) map[string]io.Reader {
	m := map[string]io.Reader{
		"whole":           strings.NewReader(in),
		"onebyte":         iotest.OneByteReader(strings.NewReader(in)),
		"half":            iotest.HalfReader(strings.NewReader(in)),
		"dataerr":         iotest.DataErrReader(strings.NewReader(in)),
		"dataerr-onebyte": iotest.DataErrReader(iotest.OneByteReader(strings.NewReader(in))),
	}
	for i := 1; i < len(in); i++ {
		m[fmt.Sprintf("split@%d", i)] = &chunkReader{p: []byte(in), sizes: []int{i, len(in)}}
	}
	return m
}

func b(s string) []byte { return []byte(s) }

func TestScanner(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int // 0: default
		want []Event
		err  error
	}{
		{name: "empty stream", in: ""},
		{name: "blank lines only", in: "\n\r\n\r\n\n"},
		{name: "simple", in: "data: hello\n\n", want: []Event{{Data: b("hello")}}},
		{name: "two events", in: "data: a\n\ndata: b\n\n", want: []Event{{Data: b("a")}, {Data: b("b")}}},
		{name: "extra blank lines", in: "\n\ndata: a\n\n\n\ndata: b\n\n\n", want: []Event{{Data: b("a")}, {Data: b("b")}}},
		{name: "multi-line data", in: "data: a\ndata: b\ndata: c\n\n", want: []Event{{Data: b("a\nb\nc")}}},
		{name: "CRLF", in: "data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n", want: []Event{{Data: b("a\nb")}, {Data: b("c")}}},
		{name: "lone CR", in: "data: a\rdata: b\r\rdata: c\r\r", want: []Event{{Data: b("a\nb")}, {Data: b("c")}}},
		{name: "mixed endings", in: "data: a\r\n\rdata: b\n\r\n", want: []Event{{Data: b("a")}, {Data: b("b")}}},
		// CR CR LF is a line, then a blank line (CR LF): the LF is not a third line.
		{name: "CR CR LF", in: "data: a\r\r\ndata: b\n\n", want: []Event{{Data: b("a")}, {Data: b("b")}}},
		{name: "LF CR is two terminators", in: "data: a\n\rdata: b\n\n", want: []Event{{Data: b("a")}, {Data: b("b")}}},
		{name: "comments only", in: ": hello\n\n:\n\n: x\r\n\r\n"},
		{name: "comment between data lines", in: "data: a\n: note\ndata: b\n\n", want: []Event{{Data: b("a\nb")}}},
		{name: "comment with data-like text", in: ":data: x\n\n"},
		{name: "event name", in: "event: ping\ndata: {}\n\n", want: []Event{{Name: b("ping"), Data: b("{}")}}},
		{name: "name only", in: "event: done\n\n", want: []Event{{Name: b("done")}}},
		{name: "last name wins", in: "event: a\nevent: b\ndata: x\n\n", want: []Event{{Name: b("b"), Data: b("x")}}},
		{name: "empty name without data skipped", in: "event:\n\nevent\n\n"},
		{name: "empty name resets name", in: "event: a\nevent:\ndata: x\n\n", want: []Event{{Data: b("x")}}},
		{name: "name does not carry over", in: "event: a\ndata: 1\n\ndata: 2\n\n", want: []Event{{Name: b("a"), Data: b("1")}, {Data: b("2")}}},
		{name: "id", in: "id: 42\ndata: x\n\n", want: []Event{{Data: b("x"), ID: b("42")}}},
		{name: "last id wins", in: "id: 1\nid: 2\ndata: x\n\n", want: []Event{{Data: b("x"), ID: b("2")}}},
		{name: "empty id", in: "id\ndata: x\n\nid:\ndata: y\n\n", want: []Event{{Data: b("x"), ID: b("")}, {Data: b("y"), ID: b("")}}},
		{name: "id with NUL ignored", in: "id: 1\nid: a\x00b\ndata: x\n\n", want: []Event{{Data: b("x"), ID: b("1")}}},
		{name: "id does not carry over", in: "id: 1\ndata: a\n\ndata: b\n\n", want: []Event{{Data: b("a"), ID: b("1")}, {Data: b("b")}}},
		{name: "id-only event skipped", in: "id: 1\n\ndata: a\n\n", want: []Event{{Data: b("a")}}},
		{name: "retry ignored", in: "retry: 1000\ndata: x\n\nretry: 5\n\n", want: []Event{{Data: b("x")}}},
		{name: "unknown fields ignored", in: "foo: bar\nDATA: y\nData: z\ndata: x\n\n", want: []Event{{Data: b("x")}}},
		{name: "no space after colon", in: "data:x\nevent:e\nid:7\n\n", want: []Event{{Name: b("e"), Data: b("x"), ID: b("7")}}},
		{name: "only one space stripped", in: "data:  x \n\n", want: []Event{{Data: b(" x ")}}},
		{name: "tab not stripped", in: "data:\tx\n\n", want: []Event{{Data: b("\tx")}}},
		{name: "colon in value", in: "data: {\"a\":\"b: c\"}\n\n", want: []Event{{Data: b(`{"a":"b: c"}`)}}},
		{name: "field with no colon", in: "data\n\n", want: []Event{{Data: b("")}}},
		{name: "no colon unknown field", in: "hello\ndata: x\n\n", want: []Event{{Data: b("x")}}},
		{name: "empty data line", in: "data:\n\n", want: []Event{{Data: b("")}}},
		{name: "empty data line with space", in: "data: \n\n", want: []Event{{Data: b("")}}},
		{name: "two empty data lines", in: "data:\ndata:\n\n", want: []Event{{Data: b("\n")}}},
		{name: "empty line inside data", in: "data: a\ndata:\ndata: b\n\n", want: []Event{{Data: b("a\n\nb")}}},
		{name: "missing final blank line", in: "data: a\n\ndata: b\n", want: []Event{{Data: b("a")}, {Data: b("b")}}},
		{name: "missing final newline", in: "data: a\n\nevent: e\ndata: b", want: []Event{{Data: b("a")}, {Name: b("e"), Data: b("b")}}},
		{name: "missing final CR", in: "data: b\r", want: []Event{{Data: b("b")}}},
		{name: "unterminated comment at EOF", in: "data: a\n\n: bye", want: []Event{{Data: b("a")}}},
		{name: "unterminated id-only at EOF", in: "id: 3"},
		{name: "BOM", in: "\xEF\xBB\xBFdata: x\n\n", want: []Event{{Data: b("x")}}},
		{name: "BOM then blank", in: "\xEF\xBB\xBF\ndata: x\n\n", want: []Event{{Data: b("x")}}},
		{name: "BOM only at start", in: "data: a\n\n\xEF\xBB\xBFdata: b\n\n", want: []Event{{Data: b("a")}}},
		{name: "second BOM not skipped", in: "\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n"},
		{name: "partial BOM", in: "\xEF\xBBdata: x\n\ndata: y\n\n", want: []Event{{Data: b("y")}}},
		{name: "BOM alone", in: "\xEF\xBB\xBF"},
		{name: "BOM in data kept", in: "data: \xEF\xBB\xBFx\n\n", want: []Event{{Data: b("\xEF\xBB\xBFx")}}},
		{name: "NUL and invalid UTF-8 in data kept", in: "data: \x00\xff\n\n", want: []Event{{Data: b("\x00\xff")}}},

		// Caps. "data: ok" is exactly 8 bytes.
		{name: "line at cap", max: 8, in: "data: ok\n\n", want: []Event{{Data: b("ok")}}},
		{name: "line at cap with BOM", max: 8, in: "\xEF\xBB\xBFdata: ok\n\n", want: []Event{{Data: b("ok")}}},
		{name: "oversize line", max: 8, in: "data: ok\n\ndata: 123\n\ndata: ok\n\n", want: []Event{{Data: b("ok")}}, err: ErrTooLarge},
		{name: "oversize first line with BOM", max: 8, in: "\xEF\xBB\xBFdata: 123\n\n", err: ErrTooLarge},
		{name: "oversize first line without BOM", max: 8, in: "data: 1\xEF\xBB\n\n", err: ErrTooLarge},
		{name: "oversize comment", max: 8, in: ": 12345678\ndata: ok\n\n", err: ErrTooLarge},
		{name: "oversize unterminated line", max: 8, in: "data: ok\n\ndata: 123", want: []Event{{Data: b("ok")}}, err: ErrTooLarge},
		{name: "oversize CR line", max: 8, in: "data: 123\r\r", err: ErrTooLarge},
		// Data "12345\n6789" is exactly 10 bytes; one more byte is too many.
		{name: "event data at cap", max: 10, in: "data:12345\ndata:6789\n\n", want: []Event{{Data: b("12345\n6789")}}},
		{name: "oversize event data", max: 10, in: "data:1\n\ndata:12345\ndata:67890\n\ndata:2\n\n", want: []Event{{Data: b("1")}}, err: ErrTooLarge},
		{name: "oversize event data of empty lines", max: 4, in: "data\ndata\ndata\ndata\ndata\ndata\n\n", err: ErrTooLarge},
		{name: "empty lines at cap", max: 4, in: "data\ndata\ndata\ndata\ndata\n\n", want: []Event{{Data: b("\n\n\n\n")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for rname, r := range readers(tt.in) {
				got, err := scanAll(r, tt.max)
				if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
					t.Errorf("%s: err = %v, want %v", rname, err, tt.err)
				}
				if g, w := fmtEvents(got), fmtEvents(tt.want); g != w {
					t.Errorf("%s: events\n got: %s\nwant: %s", rname, g, w)
				}
			}
		})
	}
}

func TestScannerReadError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		in   string
		want []Event
	}{
		{name: "after complete event", in: "data: a\n\n", want: []Event{{Data: b("a")}}},
		// An event that was not terminated when the read failed may be
		// truncated: it is dropped, unlike at a clean EOF.
		{name: "partial event dropped", in: "data: a\n\ndata: b\n", want: []Event{{Data: b("a")}}},
		{name: "partial line dropped", in: "data: a\n\ndata: b", want: []Event{{Data: b("a")}}},
		{name: "immediately", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for rname, r := range readers(tt.in) {
				got, err := scanAll(io.MultiReader(r, iotest.ErrReader(boom)), 0)
				if err != boom {
					t.Errorf("%s: err = %v, want %v", rname, err, boom)
				}
				if g, w := fmtEvents(got), fmtEvents(tt.want); g != w {
					t.Errorf("%s: events\n got: %s\nwant: %s", rname, g, w)
				}
			}
		})
	}
}

// errWithDataReader returns all of p together with err in a single Read.
type errWithDataReader struct {
	p   []byte
	err error
}

func (r *errWithDataReader) Read(b []byte) (int, error) {
	n := copy(b, r.p)
	r.p = r.p[n:]
	if len(r.p) == 0 {
		return n, r.err
	}
	return n, nil
}

func TestScannerDataWithError(t *testing.T) {
	boom := errors.New("boom")
	s := NewScanner(&errWithDataReader{p: b("data: a\n\ndata: b\n"), err: boom}, 0)
	if !s.Next() || string(s.Event().Data) != "a" {
		t.Fatalf("first event: got %v, want Data a", fmtEvent(*s.Event()))
	}
	if s.Next() {
		t.Fatalf("Next after error = true, event %v", fmtEvent(*s.Event()))
	}
	if s.Err() != boom {
		t.Fatalf("Err = %v, want %v", s.Err(), boom)
	}
	// The error is sticky.
	if s.Next() || s.Err() != boom {
		t.Fatalf("second Next after error: Err = %v", s.Err())
	}
}

type zeroReader struct{ calls int }

func (z *zeroReader) Read([]byte) (int, error) { z.calls++; return 0, nil }

func TestScannerNoProgress(t *testing.T) {
	z := &zeroReader{}
	s := NewScanner(z, 0)
	if s.Next() {
		t.Fatal("Next = true on a reader that returns nothing")
	}
	if s.Err() != io.ErrNoProgress {
		t.Fatalf("Err = %v, want io.ErrNoProgress", s.Err())
	}
	if z.calls != maxConsecutiveEmptyReads {
		t.Fatalf("reads = %d, want %d", z.calls, maxConsecutiveEmptyReads)
	}
}

type badCountReader struct{}

func (badCountReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestScannerBadReadCount(t *testing.T) {
	s := NewScanner(badCountReader{}, 0)
	if s.Next() || s.Err() != errBadRead {
		t.Fatalf("Err = %v, want errBadRead", s.Err())
	}
}

func TestScannerEOFIsFinal(t *testing.T) {
	s := NewScanner(strings.NewReader("data: a"), 0)
	if !s.Next() || string(s.Event().Data) != "a" {
		t.Fatal("want event a")
	}
	for range 3 {
		if s.Next() {
			t.Fatal("Next after EOF = true")
		}
		if s.Err() != nil {
			t.Fatalf("Err = %v, want nil", s.Err())
		}
		if e := s.Event(); e.Data != nil || e.Name != nil || e.ID != nil {
			t.Fatalf("Event after EOF = %v, want zero", fmtEvent(*e))
		}
	}
}

// endless yields 'a' forever, counting bytes.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	e.n += len(p)
	return len(p), nil
}

// An endless line must stop at the cap, without buffering beyond it.
func TestScannerOversizeLineMemory(t *testing.T) {
	for _, max := range []int{1, 100, readBufSize - 1, readBufSize, readBufSize + 1, 3*readBufSize + 7, 1 << 20} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			for _, prefix := range []string{"", "data: ", "data: x\ndata: "} {
				src := &endless{}
				s := NewScanner(io.MultiReader(strings.NewReader(prefix), src), max)
				if s.Next() {
					t.Fatal("Next = true")
				}
				if s.Err() != ErrTooLarge {
					t.Fatalf("Err = %v, want ErrTooLarge", s.Err())
				}
				if cap(s.line) > max+len(bom) || cap(s.data) > max+1 {
					t.Fatalf("cap(line) = %d, cap(data) = %d, cap = %d", cap(s.line), cap(s.data), max)
				}
				if src.n > max+len(bom)+readBufSize {
					t.Fatalf("read %d bytes for cap %d", src.n, max)
				}
			}
		})
	}
}

func TestScannerOversizeDataMemory(t *testing.T) {
	const max = 1000
	// Lines of 100 data bytes: the 10th line would make the data 1009 bytes.
	line := "data: " + strings.Repeat("x", 100) + "\n"
	src := strings.NewReader(strings.Repeat(line, 100))
	s := NewScanner(src, max)
	if s.Next() || s.Err() != ErrTooLarge {
		t.Fatalf("Next/Err = %v, want ErrTooLarge", s.Err())
	}
	if cap(s.data) > max+1 {
		t.Fatalf("cap(data) = %d, want <= %d", cap(s.data), max+1)
	}
}

func TestScannerDefaultCap(t *testing.T) {
	for _, max := range []int{0, -1} {
		s := NewScanner(strings.NewReader(""), max)
		if s.max != DefaultMaxEventBytes {
			t.Fatalf("NewScanner(_, %d).max = %d, want %d", max, s.max, DefaultMaxEventBytes)
		}
	}
	// A line just under the default cap goes through; one byte more fails.
	ok := "data:" + strings.Repeat("x", DefaultMaxEventBytes-5) + "\n\n"
	evs, err := scanAll(strings.NewReader(ok), 0)
	if err != nil || len(evs) != 1 || len(evs[0].Data) != DefaultMaxEventBytes-5 {
		t.Fatalf("at default cap: err = %v, %d events", err, len(evs))
	}
	_, err = scanAll(strings.NewReader("data:"+strings.Repeat("x", DefaultMaxEventBytes-4)+"\n\n"), 0)
	if err != ErrTooLarge {
		t.Fatalf("over default cap: err = %v, want ErrTooLarge", err)
	}
}

// Event slices alias the scanner's buffers: they stay intact until the next
// Next, which may overwrite them.
func TestScannerEventLifetime(t *testing.T) {
	s := NewScanner(strings.NewReader("event: e1\nid: 1\ndata: first\n\nevent: e2\nid: 2\ndata: second\n\n"), 0)
	if !s.Next() {
		t.Fatal(s.Err())
	}
	e := s.Event()
	if string(e.Name) != "e1" || string(e.ID) != "1" || string(e.Data) != "first" {
		t.Fatalf("event 1 = %v", fmtEvent(*e))
	}
	if !s.Next() {
		t.Fatal(s.Err())
	}
	if e != s.Event() {
		t.Fatal("Event returned a different pointer")
	}
	if string(e.Name) != "e2" || string(e.ID) != "2" || string(e.Data) != "second" {
		t.Fatalf("event 2 = %v", fmtEvent(*e))
	}
}

func TestScannerReset(t *testing.T) {
	s := NewScanner(strings.NewReader("data: 123456789\n"), 8)
	if s.Next() || s.Err() != ErrTooLarge {
		t.Fatalf("Err = %v, want ErrTooLarge", s.Err())
	}
	// Reset clears the error, the BOM state and a half-read CRLF.
	s.Reset(strings.NewReader("\xEF\xBB\xBFdata: a\r"))
	if !s.Next() || string(s.Event().Data) != "a" {
		t.Fatalf("after Reset: Next/Err = %v, event %v", s.Err(), fmtEvent(*s.Event()))
	}
	s.Reset(strings.NewReader("\ndata: b\n\n"))
	evs := []Event{}
	for s.Next() {
		evs = append(evs, copyEvent(s.Event()))
	}
	if s.Err() != nil || fmtEvents(evs) != fmtEvents([]Event{{Data: b("b")}}) {
		t.Fatalf("after second Reset: err %v, events %s", s.Err(), fmtEvents(evs))
	}
	if s.max != 8 {
		t.Fatalf("Reset changed the cap to %d", s.max)
	}
}

// A long stream with lines longer than the read buffer and events split
// across reads at every kind of boundary.
func TestScannerLongLines(t *testing.T) {
	var in []byte
	var want []Event
	for i, n := range []int{0, 1, readBufSize - 7, readBufSize - 6, readBufSize, readBufSize + 1, 3 * readBufSize, 17} {
		data := bytes.Repeat([]byte{byte('a' + i)}, n)
		name := []byte(fmt.Sprint("e", i))
		in = AppendEvent(in, name, data)
		want = append(want, Event{Name: name, Data: data})
	}
	for _, size := range []int{1, 2, 3, 100, readBufSize - 1, readBufSize + 1, len(in)} {
		got, err := scanAll(&chunkReader{p: in, sizes: []int{size}}, 0)
		if err != nil {
			t.Fatalf("chunk %d: err %v", size, err)
		}
		if g, w := fmtEvents(got), fmtEvents(want); g != w {
			t.Fatalf("chunk %d: events differ\n got: %.300s\nwant: %.300s", size, g, w)
		}
	}
}

// TestBeforeRead: the hook runs before each read of the underlying reader,
// never while complete events are still buffered.
func TestBeforeRead(t *testing.T) {
	in := "data: a\n\ndata: b\n\n"
	sc := NewScanner(strings.NewReader(in), 0)
	reads := 0
	sc.BeforeRead(func() { reads++ })
	if !sc.Next() || string(sc.Event().Data) != "a" || reads != 1 {
		t.Fatalf("first event: reads=%d", reads)
	}
	if !sc.Next() || string(sc.Event().Data) != "b" || reads != 1 {
		t.Fatalf("second event was buffered, yet the hook ran again: reads=%d", reads)
	}
	if sc.Next() || reads < 2 {
		t.Fatalf("EOF needs another read: reads=%d", reads)
	}
}
