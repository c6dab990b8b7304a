package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// FuzzStreamDecoder feeds arbitrary SSE bodies to a stream decoder: it must
// not panic, must return only *llm.Error values, must emit a bounded number
// of deltas per event, keep its own state bounded, and produce well-formed
// deltas (tool call arguments are JSON, usage figures add up).
func FuzzStreamDecoder(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/streams/*.sse")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("data: {\"candidates\":[{\"index\":63,\"finishReason\":\"STOP\"},{\"index\":0}]}\n\n"))
	f.Add([]byte("data: {\"usageMetadata\":{\"promptTokenCount\":-5,\"thoughtsTokenCount\":-1}}\n\n"))
	f.Add([]byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":null}}]}}]}\n\n"))
	f.Add([]byte("data: {\"error\":{\"code\":-1,\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"google.rpc.RetryInfo\",\"retryDelay\":\"-3s\"}]}}\n\n"))

	a := New(fixedNow)
	f.Fuzz(func(t *testing.T, body []byte) {
		d := a.NewStreamDecoder(nil)
		sc := sse.NewScanner(bytes.NewReader(body), 1<<16)
		var buf []llm.Delta
		for sc.Next() {
			ev := sc.Event()
			var err error
			buf, err = d.Decode(ev, buf[:0])
			if len(buf) > len(ev.Data)+1 {
				t.Fatalf("%d deltas from %d bytes of data", len(buf), len(ev.Data))
			}
			if len(d.cands) > maxCandidates {
				t.Fatalf("decoder state grew to %d candidates", len(d.cands))
			}
			for i := range buf {
				checkDelta(t, &buf[i])
			}
			if err != nil {
				var e *llm.Error
				if !errors.As(err, &e) {
					t.Fatalf("Decode returned %T: %v", err, err)
				}
				if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
					t.Fatalf("RetryAfter %v out of range", e.RetryAfter)
				}
				break
			}
		}
		if u, ok := d.Usage(); ok {
			checkUsageInvariants(t, u)
		}
		d.Done()
	})
}

func checkDelta(t *testing.T, d *llm.Delta) {
	t.Helper()
	if d.Index < 0 || d.Index >= maxCandidates {
		t.Fatalf("delta index %d", d.Index)
	}
	for _, tc := range d.ToolCalls {
		if !json.Valid([]byte(tc.Arguments)) || tc.ID == "" || tc.Type != "function" {
			t.Fatalf("malformed tool call delta %+v", tc)
		}
		if _, sig := splitToolCallID(tc.ID); sig != "" && !validSignature(sig) {
			t.Fatalf("tool call id carries a malformed signature: %q", tc.ID)
		}
	}
	if d.Usage != nil {
		checkUsageInvariants(t, *d.Usage)
	}
}

func checkUsageInvariants(t *testing.T, u llm.Usage) {
	t.Helper()
	if u.PromptTokens < 0 || u.CompletionTokens < 0 || u.CachedTokens < 0 || u.ReasoningTokens < 0 {
		t.Fatalf("negative usage %+v", u)
	}
	if u.TotalTokens != u.PromptTokens+u.CompletionTokens || u.ReasoningTokens > u.CompletionTokens {
		t.Fatalf("inconsistent usage %+v", u)
	}
}
