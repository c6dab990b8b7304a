package sse

import (
	"bytes"
	"fmt"
	"testing"
)

// openAIStream returns n chat.completion.chunk events and the [DONE] marker,
// shaped like OpenAI's streaming output.
func openAIStream(n int) []byte {
	var buf []byte
	for i := range n {
		chunk := fmt.Sprintf(`{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"content":" token%d"},"logprobs":null,"finish_reason":null}]}`, i)
		buf = AppendData(buf, []byte(chunk))
	}
	return AppendData(buf, []byte("[DONE]"))
}

// cycleReader replays p forever, at most chunk bytes per Read.
type cycleReader struct {
	p     []byte
	off   int
	chunk int
}

func (c *cycleReader) Read(b []byte) (int, error) {
	n := min(len(b), c.chunk)
	for i := range n {
		b[i] = c.p[c.off]
		c.off++
		if c.off == len(c.p) {
			c.off = 0
		}
	}
	return n, nil
}

// After warm-up, scanning an event allocates nothing, whether the reads
// return whole buffers or split lines at odd offsets.
func TestScannerNoAllocs(t *testing.T) {
	stream := openAIStream(8)
	stream = AppendEvent(stream, []byte("ping"), []byte("{}"))
	stream = AppendComment(stream, "keepalive")
	stream = append(stream, "id: 7\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n"...)
	evs, err := scanAll(bytes.NewReader(stream), 0)
	if err != nil {
		t.Fatal(err)
	}
	perCycle := len(evs)
	for _, chunk := range []int{readBufSize, 1000, 7, 1} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			s := NewScanner(&cycleReader{p: stream, chunk: chunk}, 0)
			for range 100 {
				if !s.Next() {
					t.Fatal(s.Err())
				}
			}
			// AllocsPerRun rounds down, so each run covers a whole cycle of
			// the stream: an allocation on any one event fails the test.
			allocs := testing.AllocsPerRun(200, func() {
				for range perCycle {
					if !s.Next() {
						t.Fatal(s.Err())
					}
				}
			})
			if allocs != 0 {
				t.Fatalf("allocs per %d events = %v, want 0", perCycle, allocs)
			}
		})
	}
}

// A Scanner reused with Reset allocates nothing per stream.
func TestScannerResetNoAllocs(t *testing.T) {
	stream := openAIStream(4)
	r := bytes.NewReader(stream)
	s := NewScanner(r, 0)
	run := func() {
		r.Reset(stream)
		s.Reset(r)
		n := 0
		for s.Next() {
			n++
		}
		if n != 5 || s.Err() != nil {
			t.Fatalf("events = %d, err = %v", n, s.Err())
		}
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Fatalf("allocs per stream = %v, want 0", allocs)
	}
}

func benchmarkScanner(b *testing.B, chunk int) {
	const events = 64
	stream := openAIStream(events - 1) // plus [DONE]
	r := &chunkReader{}
	sizes := []int{chunk}
	s := NewScanner(r, 0)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		*r = chunkReader{p: stream, sizes: sizes}
		s.Reset(r)
		n := 0
		for s.Next() {
			n++
		}
		if n != events || s.Err() != nil {
			b.Fatalf("events = %d, err = %v", n, s.Err())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}

// BenchmarkScanner parses 64 OpenAI-like chunk events per op.
func BenchmarkScanner(b *testing.B) {
	b.Run("reads=8KiB", func(b *testing.B) { benchmarkScanner(b, readBufSize) })
	// Network reads often end mid-line: this exercises the line buffer.
	b.Run("reads=100B", func(b *testing.B) { benchmarkScanner(b, 100) })
}

func BenchmarkAppendEvent(b *testing.B) {
	data := []byte(`{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}`)
	name := []byte("message_delta")
	dst := make([]byte, 0, 1024)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendEvent(dst[:0], name, data)
	}
}
