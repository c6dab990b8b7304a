package sse

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestAppendData(t *testing.T) {
	tests := []struct{ data, want string }{
		{"hello", "data: hello\n\n"},
		{"", "data: \n\n"},
		{"a\nb", "data: a\ndata: b\n\n"},
		{"a\n", "data: a\ndata: \n\n"},
		{"\n", "data: \ndata: \n\n"},
		{" lead", "data:  lead\n\n"},
		{"a:b", "data: a:b\n\n"},
		// CR cannot be sent inside a line: CRLF and CR become line breaks.
		{"a\r\nb", "data: a\ndata: b\n\n"},
		{"a\rb", "data: a\ndata: b\n\n"},
		{"a\r\rb", "data: a\ndata: \ndata: b\n\n"},
		{"a\n\rb", "data: a\ndata: \ndata: b\n\n"},
		{"a\r", "data: a\ndata: \n\n"},
		// Field injection attempts stay inside data lines.
		{"x\n\nevent: evil\ndata: y", "data: x\ndata: \ndata: event: evil\ndata: data: y\n\n"},
	}
	for _, tt := range tests {
		if got := string(AppendData(nil, []byte(tt.data))); got != tt.want {
			t.Errorf("AppendData(%q) = %q, want %q", tt.data, got, tt.want)
		}
	}
}

func TestAppendEvent(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"", "x", "data: x\n\n"},
		{"ping", "{}", "event: ping\ndata: {}\n\n"},
		{"message_delta", "a\nb", "event: message_delta\ndata: a\ndata: b\n\n"},
		{" sp", "", "event:  sp\ndata: \n\n"},
		{"a\nb", "x", "event: ab\ndata: x\n\n"},
		{"a\r\ndata: evil\r", "x", "event: adata: evil\ndata: x\n\n"},
		{"\n", "x", "event: \ndata: x\n\n"},
	}
	for _, tt := range tests {
		if got := string(AppendEvent(nil, []byte(tt.name), []byte(tt.data))); got != tt.want {
			t.Errorf("AppendEvent(%q, %q) = %q, want %q", tt.name, tt.data, got, tt.want)
		}
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct{ text, want string }{
		{"keepalive", ": keepalive\n\n"},
		{"", ": \n\n"},
		{"a\nb", ": a\n: b\n\n"},
		{"a\r\nb\rc", ": a\n: b\n: c\n\n"},
		{"x\ndata: evil", ": x\n: data: evil\n\n"},
	}
	for _, tt := range tests {
		if got := string(AppendComment(nil, tt.text)); got != tt.want {
			t.Errorf("AppendComment(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	dst := []byte("prefix|")
	dst = AppendEvent(dst, []byte("e"), []byte("d"))
	dst = AppendComment(dst, "c")
	dst = AppendData(dst, []byte("x"))
	if want := "prefix|event: e\ndata: d\n\n: c\n\ndata: x\n\n"; string(dst) != want {
		t.Fatalf("got %q, want %q", dst, want)
	}
}

// Whatever the encoders write, a Scanner reads back as written.
func TestRoundTrip(t *testing.T) {
	in := []Event{
		{Data: b("hello")},
		{Name: b("ping"), Data: b("{}")},
		{Data: b("")},
		{Data: b("\n")},
		{Data: b("a\nb\n\nc\n")},
		{Name: b("message_start"), Data: b(`{"type":"message_start","message":{"id":"msg_1"}}`)},
		{Data: b(" leading space")},
		{Data: b("  two")},
		{Name: b("  named "), Data: b(": not a comment")},
		{Data: b("data: not a field")},
		{Data: b("\xEF\xBB\xBFbom")},
		{Data: b("\x00\xff binary")},
		{Data: bytes.Repeat(b("long "), 5000)},
		{Data: b("[DONE]")},
	}
	for _, mode := range []string{"whole", "onebyte", "half"} {
		var stream []byte
		stream = AppendComment(stream, "start")
		for i, e := range in {
			if len(e.Name) > 0 {
				stream = AppendEvent(stream, e.Name, e.Data)
			} else if i%2 == 0 {
				stream = AppendData(stream, e.Data)
			} else {
				stream = AppendEvent(stream, nil, e.Data)
			}
			stream = AppendComment(stream, "heartbeat\nline two")
		}
		var r io.Reader = bytes.NewReader(stream)
		switch mode {
		case "onebyte":
			r = iotest.OneByteReader(r)
		case "half":
			r = iotest.HalfReader(r)
		}
		got, err := scanAll(r, 0)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmtEvents(got), fmtEvents(in); g != w {
			t.Fatalf("%s: round trip\n got: %s\nwant: %s", mode, g, w)
		}
	}
}

// CR in data is normalised to LF by the encoder; the result round-trips.
func TestRoundTripCR(t *testing.T) {
	got, err := scanAll(bytes.NewReader(AppendData(nil, b("a\r\nb\rc\n\r"))), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Event{{Data: b("a\nb\nc\n\n")}}; fmtEvents(got) != fmtEvents(want) {
		t.Fatalf("got %s, want %s", fmtEvents(got), fmtEvents(want))
	}
}

func TestAppendNoAllocs(t *testing.T) {
	name := b("message_delta")
	data := b(strings.Repeat(`{"choices":[{"delta":{"content":"hi"}}]}`+"\n", 3))
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		dst = AppendEvent(dst[:0], name, data)
		dst = AppendData(dst, data)
		dst = AppendComment(dst, "keepalive")
	})
	if allocs != 0 {
		t.Fatalf("allocs per run = %v, want 0", allocs)
	}
}
