package anthropic

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// FuzzStreamDecoder feeds arbitrary events to a StreamDecoder: an event
// (name, data) on its own, then a whole body through the SSE scanner. It
// must never panic, return only *llm.Error errors, track a bounded number
// of blocks, and never emit more text than it was given (bounded memory).
func FuzzStreamDecoder(f *testing.F) {
	files, _ := filepath.Glob("testdata/streams/*.sse")
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		sc := sse.NewScanner(bytes.NewReader(body), 1<<20)
		for sc.Next() {
			f.Add(string(sc.Event().Name), bytes.Clone(sc.Event().Data), body)
		}
	}
	f.Add("content_block_start", []byte(`{"type":"content_block_start","index":-1,"content_block":{"type":"tool_use","input":[1]}}`), []byte{})
	f.Add("", []byte(`{"type":"message_delta","usage":{"output_tokens":-5,"input_tokens":1e300}}`), []byte("data: {}\n\n"))

	f.Fuzz(func(t *testing.T, name string, data, body []byte) {
		d := Adapter{}.NewStreamDecoder(&llm.Request{Model: "m"})
		ev := sse.Event{Name: []byte(name), Data: data}
		out, err := d.Decode(&ev, nil)
		check(t, d, out, err, len(data))

		d = Adapter{}.NewStreamDecoder(nil)
		sc := sse.NewScanner(bytes.NewReader(body), 1<<16)
		var buf []llm.Delta
		for sc.Next() {
			e := sc.Event()
			buf, err = d.Decode(e, buf[:0])
			check(t, d, buf, err, len(e.Data))
			if err != nil {
				break
			}
		}
		u, _ := d.Usage()
		if u.TotalTokens != u.PromptTokens+u.CompletionTokens || u.PromptTokens < 0 || u.CompletionTokens < 0 {
			t.Fatalf("inconsistent usage %+v", u)
		}
	})
}

func check(t *testing.T, d *StreamDecoder, out []llm.Delta, err error, in int) {
	t.Helper()
	if err != nil {
		if _, ok := err.(*llm.Error); !ok {
			t.Fatalf("error %T is not *llm.Error", err)
		}
	}
	if len(d.blocks) > maxBlocks {
		t.Fatalf("%d blocks tracked", len(d.blocks))
	}
	n := 0
	for i := range out {
		n += len(out[i].Content)
		for _, tc := range out[i].ToolCalls {
			n += len(tc.Arguments) + len(tc.ID) + len(tc.Name) - 2 // "{}" may be added per call
		}
	}
	if n > in {
		t.Fatalf("%d bytes out of a %d byte event", n, in)
	}
}
