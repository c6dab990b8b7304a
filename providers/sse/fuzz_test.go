package sse

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// refParse is a deliberately plain reference parser over a whole input,
// written straight from the rules in the Scanner doc. The fuzzer checks the
// streaming Scanner against it.
func refParse(in []byte, maxEventBytes int) ([]Event, error) {
	if maxEventBytes <= 0 {
		maxEventBytes = DefaultMaxEventBytes
	}
	// Split into lines; a final unterminated line still counts.
	var lines [][]byte
	for len(in) > 0 {
		i := bytes.IndexAny(in, "\r\n")
		if i < 0 {
			lines = append(lines, in)
			break
		}
		lines = append(lines, in[:i])
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			i++
		}
		in = in[i+1:]
	}
	if len(lines) > 0 {
		lines[0] = bytes.TrimPrefix(lines[0], bom)
	}
	var (
		evs            []Event
		data, name, id []byte
		hasData, hasID bool
	)
	dispatch := func() {
		if hasData || len(name) > 0 {
			var e Event
			if hasData {
				e.Data = append([]byte{}, data[:len(data)-1]...)
			}
			if len(name) > 0 {
				e.Name = append([]byte{}, name...)
			}
			if hasID {
				e.ID = append([]byte{}, id...)
			}
			evs = append(evs, e)
		}
		data, name, id, hasData, hasID = nil, nil, nil, false, false
	}
	for _, line := range lines {
		if len(line) > maxEventBytes {
			return evs, ErrTooLarge
		}
		if len(line) == 0 {
			dispatch()
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "data":
			if len(data)+len(value) > maxEventBytes {
				return evs, ErrTooLarge
			}
			data = append(append(data, value...), '\n')
			hasData = true
		case "event":
			name = append([]byte{}, value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				id = append([]byte{}, value...)
				hasID = true
			}
		}
	}
	dispatch()
	return evs, nil
}

// randomChunks yields its input in random-sized reads (0 to 2*readBufSize
// bytes, sometimes empty), sometimes returning io.EOF with the last bytes.
type randomChunks struct {
	p   []byte
	rng *rand.Rand
}

func (r *randomChunks) Read(b []byte) (int, error) {
	if len(r.p) == 0 {
		return 0, io.EOF
	}
	var n int
	switch r.rng.IntN(4) {
	case 0:
		n = r.rng.IntN(4)
	case 1:
		n = r.rng.IntN(64)
	default:
		n = r.rng.IntN(2 * readBufSize)
	}
	n = min(n, len(b), len(r.p))
	copy(b, r.p[:n])
	r.p = r.p[n:]
	if len(r.p) == 0 && r.rng.IntN(2) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func FuzzScanner(f *testing.F) {
	seeds := []string{
		"",
		"data: hello\n\n",
		"data: a\ndata: b\n\n",
		"data: a\r\ndata: b\r\n\r\n",
		"data: a\rdata: b\r\r",
		"data: a\r\r\ndata: b\n\n",
		": comment\n\ndata: x\n: mid\ndata: y\n\n",
		"event: ping\ndata: {}\n\nevent: done\n\n",
		"id: 1\ndata: x\n\nid\ndata: y\n\nid: a\x00b\ndata: z\n\n",
		"data:x\ndata\nfoo\nretry: 10\n\n",
		"data: last",
		"data: a\n\ndata: b\n",
		"data:\n\ndata:\ndata:\n\n",
		"\xEF\xBB\xBFdata: bom\n\n",
		"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n",
		"data: 0123456789abcdef0123456789abcdef\n\n",
		"data:12345\ndata:6789\n\ndata:12345\ndata:67890\n\n",
		string(openAIStream(3)),
		"event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint64(i)*7919)
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		// Mostly small caps, so that limits are hit; sometimes the default.
		maxEventBytes := int(seed % 97)
		effMax := maxEventBytes
		if effMax <= 0 {
			effMax = DefaultMaxEventBytes
		}

		want, wantErr := refParse(in, maxEventBytes)
		for _, e := range want {
			if len(e.Data) > effMax {
				t.Fatalf("reference parser produced oversize event")
			}
		}

		rng := rand.New(rand.NewPCG(seed, seed>>32|1))
		readers := []struct {
			name string
			r    io.Reader
		}{
			{"whole", bytes.NewReader(in)},
			{"onebyte", iotest.OneByteReader(bytes.NewReader(in))},
			{"dataerr", iotest.DataErrReader(bytes.NewReader(in))},
			{"random", &randomChunks{p: in, rng: rng}},
		}
		for _, rd := range readers {
			s := NewScanner(rd.r, maxEventBytes)
			var got []Event
			for s.Next() {
				e := s.Event()
				if len(e.Data) > effMax || len(e.Name) > effMax || len(e.ID) > effMax {
					t.Fatalf("%s: event over cap %d: data %d, name %d, id %d bytes",
						rd.name, effMax, len(e.Data), len(e.Name), len(e.ID))
				}
				if e.Data == nil && len(e.Name) == 0 {
					t.Fatalf("%s: dispatched an event with neither data nor name", rd.name)
				}
				got = append(got, copyEvent(e))
			}
			if cap(s.line) > effMax+len(bom) || cap(s.data) > effMax+1 || cap(s.name) > effMax || cap(s.id) > max(effMax, 64) {
				t.Fatalf("%s: buffers grew past the cap %d: line %d, data %d, name %d, id %d",
					rd.name, effMax, cap(s.line), cap(s.data), cap(s.name), cap(s.id))
			}
			if err := s.Err(); !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
				t.Fatalf("%s: err = %v, want %v", rd.name, err, wantErr)
			}
			if g, w := fmtEvents(got), fmtEvents(want); g != w {
				t.Fatalf("%s: events differ from reference\n got: %s\nwant: %s", rd.name, g, w)
			}
		}
	})
}

// FuzzRoundTrip checks that the encoders' output parses back to what was
// encoded, and that comments, however they are worded, never become events.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("ping"), []byte("{}"), "keepalive")
	f.Add([]byte(""), []byte("a\nb\n"), "")
	f.Add([]byte("a\r\nb"), []byte("x\r\ny\rz"), "c\ndata: evil\n\n")
	f.Add([]byte(" "), []byte(""), "\r")
	f.Fuzz(func(t *testing.T, name, data []byte, comment string) {
		var stream []byte
		stream = AppendComment(stream, comment)
		stream = AppendEvent(stream, name, data)
		stream = AppendComment(stream, comment)

		// Expected: CR and LF dropped from the name, CRLF and CR in data
		// turned into LF.
		wn := []byte(strings.NewReplacer("\r", "", "\n", "").Replace(string(name)))
		if len(wn) == 0 {
			wn = nil
		}
		wd := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		wd = append([]byte{}, bytes.ReplaceAll(wd, []byte("\r"), []byte("\n"))...) // non-nil
		want := []Event{{Name: wn, Data: wd}}

		got, err := scanAll(bytes.NewReader(stream), 0)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmtEvents(got), fmtEvents(want); g != w {
			t.Fatalf("stream %q\n got: %s\nwant: %s", stream, g, w)
		}
	})
}
