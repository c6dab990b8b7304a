package anthropic_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/providertest"
	"github.com/aigw/aigw/providers/sse"
)

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		base := filepath.Base(f)
		if strings.Count(base, ".") > 1 { // goldens: NAME.kind.json
			continue
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		t.Fatalf("no fixtures match %s", pattern)
	}
	return out
}

// TestNativeRequestRoundTrip decodes Anthropic-native requests into
// canonical ones (golden NAME.canonical.json, OpenAI format), encodes them
// back for Anthropic (golden NAME.roundtrip.json), and requires the round
// trip to give back the client's body, except for fixtures named lossy_*,
// which hold fields the canonical form drops.
func TestNativeRequestRoundTrip(t *testing.T) {
	for _, f := range glob(t, "testdata/native/requests/*.json") {
		name := strings.TrimSuffix(f, ".json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req, err := anthropic.DecodeMessagesRequest(body)
			if err != nil {
				var e *llm.Error
				if !errors.As(err, &e) || e.Kind != llm.KindInvalidRequest {
					t.Errorf("error %v is not a KindInvalidRequest *llm.Error", err)
				}
				if !strings.HasPrefix(filepath.Base(name), "err_") {
					t.Errorf("unexpected error: %v", err)
				}
				providertest.GoldenJSON(t, name+".error.json", providertest.DumpError(err))
				return
			}
			if strings.HasPrefix(filepath.Base(name), "err_") {
				t.Fatal("DecodeMessagesRequest accepted a request it must refuse")
			}
			providertest.GoldenJSON(t, name+".canonical.json", req.AppendJSON(nil))

			// The canonical request must survive its own OpenAI encoding,
			// as it does when the proxy forwards it to an OpenAI upstream.
			var again llm.Request
			if err := again.UnmarshalJSON(req.AppendJSON(nil)); err != nil {
				t.Fatalf("canonical request does not re-parse: %v", err)
			}

			target := testTarget()
			target.Model = req.Model
			out, err := testAdapter().EncodeChat(nil, req, &target)
			if err != nil {
				t.Fatalf("EncodeChat: %v", err)
			}
			providertest.GoldenJSON(t, name+".roundtrip.json", out.Body)
			if !strings.HasPrefix(filepath.Base(name), "lossy_") {
				if d := providertest.JSONDiff(body, out.Body); d != "" {
					t.Errorf("round trip changed the request: %s\n%s", d, out.Body)
				}
			}
		})
	}
}

// TestNativeResponse encodes the canonical form of every recorded answer
// back into a Messages API answer, and requires the simple ones to match
// what Anthropic sent.
func TestNativeResponse(t *testing.T) {
	exact := map[string]bool{"text": true, "tool_use": true, "tool_only": true, "cache_usage": false}
	for _, f := range glob(t, "testdata/responses/*.json") {
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(base, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := testAdapter().DecodeChat(body)
			if err != nil {
				return // error answers are covered by the conformance suite
			}
			out := anthropic.EncodeMessagesResponse([]byte("KEEP"), resp)
			if string(out[:4]) != "KEEP" {
				t.Fatal("EncodeMessagesResponse overwrote dst")
			}
			out = out[4:]
			providertest.GoldenJSON(t, filepath.Join("testdata/native/responses", base+".json"), out)
			if exact[base] {
				var orig, got map[string]any
				_ = json.Unmarshal(body, &orig)
				_ = json.Unmarshal(out, &got)
				delete(orig, "stop_sequence")
				delete(got, "stop_sequence")
				// Anthropic omits cache fields in some answers; we always
				// write them.
				u := got["usage"].(map[string]any)
				ou := orig["usage"].(map[string]any)
				for _, k := range []string{"cache_creation_input_tokens", "cache_read_input_tokens"} {
					if _, ok := ou[k]; !ok && u[k] == float64(0) {
						delete(u, k)
					}
				}
				delete(ou, "service_tier")
				a, _ := json.Marshal(orig)
				b, _ := json.Marshal(got)
				if d := providertest.JSONDiff(a, b); d != "" {
					t.Errorf("re-encoded answer differs from Anthropic's: %s", d)
				}
			}
		})
	}
}

func TestEncodeMessagesResponseMapping(t *testing.T) {
	cases := []struct {
		finish, stop string
	}{
		{llm.FinishStop, "end_turn"},
		{llm.FinishLength, "max_tokens"},
		{llm.FinishToolCalls, "tool_use"},
		{"function_call", "tool_use"},
		{llm.FinishContentFilter, "refusal"},
		{"", "end_turn"},
	}
	for _, c := range cases {
		r := &llm.Response{ID: "chatcmpl-1", Model: "gpt-4o", Choices: []llm.Choice{{
			Message: llm.Message{Role: "assistant", Content: "x", HasContent: true,
				ToolCalls: []llm.ToolCall{{ID: "call_1", Type: "function", Function: llm.FunctionCall{Name: "f", Arguments: "not json"}}}},
			FinishReason: c.finish,
		}}, Usage: &llm.Usage{PromptTokens: 100, CompletionTokens: 7, TotalTokens: 107, CachedTokens: 60, CacheWriteTokens: 10}}
		var got struct {
			StopReason string `json:"stop_reason"`
			Content    []struct {
				Type  string          `json:"type"`
				Input json.RawMessage `json:"input"`
			} `json:"content"`
			Usage map[string]int `json:"usage"`
		}
		if err := json.Unmarshal(anthropic.EncodeMessagesResponse(nil, r), &got); err != nil {
			t.Fatal(err)
		}
		if got.StopReason != c.stop {
			t.Errorf("finish %q -> stop_reason %q, want %q", c.finish, got.StopReason, c.stop)
		}
		if len(got.Content) != 2 || string(got.Content[1].Input) != "{}" {
			t.Errorf("invalid arguments should give input {}: %+v", got.Content)
		}
		want := map[string]int{"input_tokens": 30, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 10, "output_tokens": 7}
		for k, v := range want {
			if got.Usage[k] != v {
				t.Errorf("usage %s = %d, want %d", k, got.Usage[k], v)
			}
		}
	}
	// A nil response is still a well-formed message.
	if !json.Valid(anthropic.EncodeMessagesResponse(nil, nil)) {
		t.Error("EncodeMessagesResponse(nil) is not JSON")
	}
}

// decodeAll replays an SSE body through a fresh decoder.
func decodeAll(t *testing.T, body []byte) providertest.StreamResult {
	t.Helper()
	return providertest.ReplayStream(testAdapter().NewStreamDecoder(nil), bytes.NewReader(body), 1<<20)
}

// TestStreamEncoderRoundTrip decodes every recorded stream, re-encodes the
// deltas with StreamEncoder (golden testdata/native/streams/NAME.sse), and
// decodes that again: the deltas, usage and end state must be the same.
func TestStreamEncoderRoundTrip(t *testing.T) {
	for _, f := range glob(t, "testdata/streams/*.sse") {
		base := strings.TrimSuffix(filepath.Base(f), ".sse")
		t.Run(base, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// Decode the recorded stream, keeping canonical deltas.
			dec := testAdapter().NewStreamDecoder(nil)
			sc := sse.NewScanner(bytes.NewReader(body), 1<<20)
			enc := anthropic.NewStreamEncoder("", "")
			var out []byte
			var buf []llm.Delta
			var upstreamErr error
			for sc.Next() {
				buf, upstreamErr = dec.Decode(sc.Event(), buf[:0])
				for i := range buf {
					out = enc.Append(out, &buf[i])
				}
				if upstreamErr != nil {
					break
				}
			}
			if upstreamErr != nil {
				out = enc.AppendError(out, llm.AsError(upstreamErr))
			} else {
				u, _ := dec.Usage()
				out = enc.Finish(out, u)
			}
			if !enc.Closed() {
				t.Error("encoder not closed after Finish/AppendError")
			}
			if n := len(out); enc.Finish(out, llm.Usage{}) == nil || len(enc.Finish(out, llm.Usage{})) != n {
				t.Error("Finish after close wrote more events")
			}
			golden := filepath.Join("testdata/native/streams", base+".sse")
			if providertest.Updating() {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(want, out) {
				t.Errorf("stream differs from %s (run with -update):\n%s", golden, out)
			}

			orig := decodeAll(t, body)
			again := decodeAll(t, out)
			switch {
			case upstreamErr != nil:
				// The client gets an error event of the same kind (the
				// message and retry hint are the gateway's to choose).
				if again.Error == nil || again.Error.Kind != orig.Error.Kind {
					t.Errorf("error event: got %+v, want kind of %+v", again.Error, orig.Error)
				}
				// Usage reaches the client in message_delta, which a
				// failed stream never gets to.
				orig.Error, again.Error = nil, nil
				orig.Usage, again.Usage = nil, nil
			case !orig.Done:
				// The proxy finishes an upstream stream that broke off;
				// the client sees a complete message ending in end_turn.
				if !again.Done {
					t.Error("re-encoded stream is not complete")
				}
				last := again.Deltas[len(again.Deltas)-1]
				if last.FinishReason != llm.FinishStop {
					t.Errorf("finished stream ends with %q", last.FinishReason)
				}
				again.Deltas = again.Deltas[:len(again.Deltas)-1]
				orig.Done = true
			}
			a, _ := json.Marshal(orig)
			b, _ := json.Marshal(again)
			if d := providertest.JSONDiff(a, b); d != "" {
				t.Errorf("round trip changed the stream: %s\n%s", d, out)
			}
		})
	}
}
