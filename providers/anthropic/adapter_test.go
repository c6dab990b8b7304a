package anthropic_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

func userRequest() *llm.Request {
	return &llm.Request{Model: "client-model", Messages: []llm.Message{{Role: "user", Content: "hi", HasContent: true}}}
}

func header(out llm.Outbound, key string) string {
	for _, h := range out.Header {
		if strings.EqualFold(h.Key, key) {
			return h.Value
		}
	}
	return ""
}

func TestEncodeChatOutbound(t *testing.T) {
	a := testAdapter()
	cases := []struct {
		name    string
		target  func(*llm.Target)
		req     func(*llm.Request)
		url     string
		version string
		accept  string
		body    string // substring of the body
	}{
		{name: "defaults", url: "https://api.anthropic.test/v1/messages", version: "2023-06-01",
			accept: "application/json", body: `"model":"claude-sonnet-4-5","max_tokens":4096`},
		{name: "base with /v1 and slash", target: func(t *llm.Target) { t.BaseURL = "https://gw.example/anthropic/v1/" },
			url: "https://gw.example/anthropic/v1/messages", version: "2023-06-01", accept: "application/json"},
		{name: "version and default cap from target", target: func(t *llm.Target) { t.APIVersion = "2024-01-01"; t.DefaultMaxTokens = 777 },
			url: "https://api.anthropic.test/v1/messages", version: "2024-01-01", accept: "application/json", body: `"max_tokens":777`},
		{name: "client cap wins over target's", target: func(t *llm.Target) { t.DefaultMaxTokens = 777 },
			req: func(r *llm.Request) { n := 12; r.MaxTokens = &n },
			url: "https://api.anthropic.test/v1/messages", version: "2023-06-01", accept: "application/json", body: `"max_tokens":12`},
		{name: "model from request when target has none", target: func(t *llm.Target) { t.Model = "" },
			url: "https://api.anthropic.test/v1/messages", version: "2023-06-01", accept: "application/json", body: `"model":"client-model"`},
		{name: "stream", req: func(r *llm.Request) { r.Stream = true },
			url: "https://api.anthropic.test/v1/messages", version: "2023-06-01", accept: "text/event-stream", body: `"stream":true`},
		{name: "no HTML escaping", req: func(r *llm.Request) { r.Messages[0].Content = "a<b&c" },
			url: "https://api.anthropic.test/v1/messages", version: "2023-06-01", accept: "application/json", body: `"a<b&c"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := testTarget()
			if c.target != nil {
				c.target(&target)
			}
			req := userRequest()
			if c.req != nil {
				c.req(req)
			}
			out, err := a.EncodeChat(nil, req, &target)
			if err != nil {
				t.Fatal(err)
			}
			if out.URL != c.url {
				t.Errorf("URL = %q, want %q", out.URL, c.url)
			}
			if got := header(out, "anthropic-version"); got != c.version {
				t.Errorf("anthropic-version = %q, want %q", got, c.version)
			}
			if got := header(out, "accept"); got != c.accept {
				t.Errorf("accept = %q, want %q", got, c.accept)
			}
			if got := header(out, "x-api-key"); got != target.APIKey {
				t.Errorf("x-api-key = %q", got)
			}
			if header(out, "authorization") != "" {
				t.Error("Authorization sent")
			}
			if !bytes.Contains(out.Body, []byte(c.body)) {
				t.Errorf("body %s does not contain %s", out.Body, c.body)
			}
		})
	}
}

func TestEncodeChatRefusals(t *testing.T) {
	one, two, zero := 1, 2, 0
	hot, cold := 1.01, -0.1
	cases := []struct {
		name  string
		req   func(*llm.Request)
		param string
	}{
		{"n=2", func(r *llm.Request) { r.N = &two }, "n"},
		{"n=0", func(r *llm.Request) { r.N = &zero }, "n"},
		{"temperature>1", func(r *llm.Request) { r.Temperature = &hot }, "temperature"},
		{"temperature<0", func(r *llm.Request) { r.Temperature = &cold }, "temperature"},
		{"top_p>1", func(r *llm.Request) { r.TopP = &hot }, "top_p"},
		{"max_completion_tokens=0", func(r *llm.Request) { r.MaxCompletionTokens = &zero; r.MaxTokens = &one }, "max_completion_tokens"},
		{"json_object", func(r *llm.Request) { r.ResponseFormat = json.RawMessage(`{"type":"json_object"}`) }, "response_format"},
		{"response_format garbage", func(r *llm.Request) { r.ResponseFormat = json.RawMessage(`7`) }, "response_format"},
		{"role function", func(r *llm.Request) { r.Messages[0].Role = "function" }, "messages[0].role"},
		{"image ftp", func(r *llm.Request) {
			r.Messages[0].Parts = []llm.Part{{Type: "image_url", ImageURL: &llm.ImageURL{URL: "ftp://x/y.png"}}}
		}, "messages[0].content[0].image_url.url"},
		{"image data not base64", func(r *llm.Request) {
			r.Messages[0].Parts = []llm.Part{{Type: "image_url", ImageURL: &llm.ImageURL{URL: "data:image/png,abc"}}}
		}, "messages[0].content[0].image_url.url"},
		{"file id", func(r *llm.Request) {
			r.Messages[0].Parts = []llm.Part{{Type: "file", Raw: json.RawMessage(`{"type":"file","file":{"file_id":"file-1"}}`)}}
		}, "messages[0].content[0].file"},
		{"array arguments", func(r *llm.Request) {
			r.Messages = append(r.Messages, llm.Message{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "t", Type: "function", Function: llm.FunctionCall{Name: "f", Arguments: "[1]"}}}})
		}, "messages[1].tool_calls[0].function.arguments"},
		{"named tool_choice without tools", func(r *llm.Request) {
			r.ToolChoice = json.RawMessage(`{"type":"function","function":{"name":"f"}}`)
		}, "tool_choice"},
		{"unknown tool_choice", func(r *llm.Request) {
			r.Tools = []llm.Tool{{Type: "function", Function: llm.FunctionDecl{Name: "f"}}}
			r.ToolChoice = json.RawMessage(`"sometimes"`)
		}, "tool_choice"},
		{"parallel_tool_calls not bool", func(r *llm.Request) {
			r.Tools = []llm.Tool{{Type: "function", Function: llm.FunctionDecl{Name: "f"}}}
			r.Extra = map[string]json.RawMessage{"parallel_tool_calls": json.RawMessage(`"no"`)}
		}, "parallel_tool_calls"},
		{"top_k negative", func(r *llm.Request) { r.Extra = map[string]json.RawMessage{"top_k": json.RawMessage(`-3`)} }, "top_k"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := userRequest()
			c.req(req)
			target := testTarget()
			_, err := testAdapter().EncodeChat(nil, req, &target)
			var e *llm.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *llm.Error", err)
			}
			if e.Kind != llm.KindInvalidRequest || e.Param != c.param || e.Msg == "" {
				t.Errorf("got kind %v param %q msg %q, want invalid_request param %q", e.Kind, e.Param, e.Msg, c.param)
			}
		})
	}
	if _, err := testAdapter().EncodeChat(nil, nil, nil); llm.AsError(err).Kind != llm.KindInternal {
		t.Errorf("nil request: %v", err)
	}
}

func TestEmbeddingsUnsupported(t *testing.T) {
	a := testAdapter()
	target := testTarget()
	if _, err := a.EncodeEmbeddings(nil, &llm.EmbeddingRequest{Model: "m"}, &target); llm.AsError(err).Kind != llm.KindInvalidRequest {
		t.Errorf("EncodeEmbeddings: %v", err)
	}
	if _, err := a.DecodeEmbeddings([]byte(`{}`)); llm.AsError(err).Kind != llm.KindInvalidRequest {
		t.Errorf("DecodeEmbeddings: %v", err)
	}
}

func TestClassifyErrorRetryAfter(t *testing.T) {
	a := testAdapter()
	body := []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)
	cases := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"0", 0},
		{"-4", 0},
		{"soon", 0},
		{"Wed, 01 Jan 2025 00:01:00 GMT", time.Minute},
		{"Tue, 31 Dec 2024 23:59:00 GMT", 0}, // in the past
	}
	for _, c := range cases {
		err := a.ClassifyError(429, func(k string) string {
			if k == "Retry-After" {
				return c.value
			}
			return ""
		}, body)
		if got := llm.AsError(err).RetryAfter; got != c.want {
			t.Errorf("Retry-After %q: got %v, want %v", c.value, got, c.want)
		}
	}
	// A nil header lookup is allowed.
	e := llm.AsError(a.ClassifyError(529, nil, nil))
	if e.Kind != llm.KindOverloaded || !e.Retryable || e.Status != 529 || e.Msg == "" {
		t.Errorf("529 without body: %+v", e)
	}
}

func TestEncodeError(t *testing.T) {
	cases := map[llm.Kind]string{
		llm.KindInvalidRequest: "invalid_request_error",
		llm.KindContextLength:  "invalid_request_error",
		llm.KindAuth:           "authentication_error",
		llm.KindPermission:     "permission_error",
		llm.KindNotFound:       "not_found_error",
		llm.KindTooLarge:       "request_too_large",
		llm.KindRateLimit:      "rate_limit_error",
		llm.KindQuotaExceeded:  "rate_limit_error",
		llm.KindOverloaded:     "overloaded_error",
		llm.KindUnavailable:    "overloaded_error",
		llm.KindTimeout:        "timeout_error",
		llm.KindUpstream:       "api_error",
		llm.KindInternal:       "api_error",
		llm.KindCanceled:       "api_error",
	}
	for k, typ := range cases {
		out := anthropic.EncodeError([]byte("X"), &llm.Error{Kind: k, Msg: "m<&>", Err: errors.New("secret cause")})
		if out[0] != 'X' {
			t.Fatal("dst overwritten")
		}
		var got struct {
			Type  string `json:"type"`
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(out[1:], &got); err != nil {
			t.Fatal(err)
		}
		if got.Type != "error" || got.Error.Type != typ || got.Error.Message != "m<&>" {
			t.Errorf("%v: %s", k, out[1:])
		}
		if bytes.Contains(out, []byte("secret")) {
			t.Errorf("%v: cause leaked: %s", k, out)
		}
	}
	if !bytes.Contains(anthropic.EncodeError(nil, &llm.Error{Kind: llm.KindRateLimit}), []byte(`"message":"rate limit"`)) {
		t.Error("empty Msg should fall back to the kind's name")
	}
	if !json.Valid(anthropic.EncodeError(nil, nil)) {
		t.Error("EncodeError(nil) is not JSON")
	}
	if anthropic.ErrorStatus(llm.KindOverloaded) != 529 || anthropic.ErrorStatus(llm.KindRateLimit) != 429 {
		t.Error("ErrorStatus")
	}
}

func decodeEvents(t *testing.T, d *anthropic.StreamDecoder, events ...sse.Event) []llm.Delta {
	t.Helper()
	var out []llm.Delta
	for i := range events {
		var err error
		out, err = d.Decode(&events[i], out)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	return out
}

func ev(name, data string) sse.Event {
	var n []byte
	if name != "" {
		n = []byte(name)
	}
	return sse.Event{Name: n, Data: []byte(data)}
}

func TestStreamDecoderEdges(t *testing.T) {
	d := testAdapter().NewStreamDecoder(nil)
	if _, ok := d.Usage(); ok {
		t.Error("usage reported before any was seen")
	}
	if out, err := d.Decode(nil, nil); err != nil || len(out) != 0 {
		t.Error("nil event")
	}
	out := decodeEvents(t, d,
		ev("", ""), // empty event without name
		ev("ping", `{"type":"ping"}`),
		ev("content_block_delta", `{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{}"}}`), // unknown block
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}}`),
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`),
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":3}}`),
		ev("message_stop", `{"type":"message_stop"}`),
		ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"after stop"}}`),
	)
	if len(out) != 2 {
		t.Fatalf("deltas = %+v", out)
	}
	if tc := out[0].ToolCalls; len(tc) != 1 || tc[0].Arguments != `{"a":1}` || tc[0].ID != "toolu_1" {
		t.Errorf("tool start with a full input: %+v", tc)
	}
	if out[1].FinishReason != "" || out[1].Usage == nil || out[1].Usage.CompletionTokens != 3 {
		t.Errorf("usage-only message_delta: %+v", out[1])
	}
	if !d.Done() {
		t.Error("not done after message_stop")
	}

	// A malformed known event is an upstream error; an error event is
	// classified.
	d = testAdapter().NewStreamDecoder(userRequest())
	if _, err := d.Decode(&sse.Event{Name: []byte("message_start"), Data: []byte("{")}, nil); llm.AsError(err).Kind != llm.KindUpstream {
		t.Errorf("malformed: %v", err)
	}
	e := ev("error", `{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}`)
	if _, err := d.Decode(&e, nil); llm.AsError(err).Kind != llm.KindRateLimit || !llm.AsError(err).Retryable {
		t.Errorf("error event: %v", err)
	}
	e = ev("", `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}`)
	if _, err := d.Decode(&e, nil); llm.AsError(err).Kind != llm.KindContextLength {
		t.Errorf("unnamed error event: %v", err)
	}
	// The model of the request names deltas until message_start does.
	e = ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`)
	if out, _ := d.Decode(&e, nil); len(out) != 1 || out[0].Model != "client-model" || out[0].Created != fixedNow.Unix() {
		t.Errorf("before message_start: %+v", out)
	}
}

func TestStreamEncoderEdges(t *testing.T) {
	// Finish without any delta still writes a complete message.
	enc := anthropic.NewStreamEncoder("msg_1", "m")
	out := enc.Finish(nil, llm.Usage{PromptTokens: 3, CompletionTokens: 0, TotalTokens: 3})
	res := decodeAll(t, out)
	if !res.Done || res.Usage == nil || res.Usage.PromptTokens != 3 || len(res.Deltas) != 2 || res.Deltas[1].FinishReason != "stop" {
		t.Errorf("empty stream: %+v\n%s", res, out)
	}
	if enc.Append(nil, &llm.Delta{Content: "late"}) != nil || enc.AppendError(nil, &llm.Error{}) != nil {
		t.Error("wrote after close")
	}

	// Choices other than 0 are not written; refusals are text; arguments of
	// an earlier call go to that call's block; names come from deltas.
	enc = anthropic.NewStreamEncoder("", "")
	out = nil
	for _, d := range []llm.Delta{
		{ID: "chatcmpl-9", Model: "gpt-4o", Role: "assistant"},
		{Index: 1, Content: "other choice"},
		{ToolCalls: []llm.ToolCallDelta{{Index: 0, ID: "c0", Name: "f"}, {Index: 1, ID: "c1", Name: "g"}}},
		{ToolCalls: []llm.ToolCallDelta{{Index: 0, Arguments: `{"a":1}`}, {Index: 1, Arguments: `{}`}}},
		{Refusal: "no"},
		{FinishReason: llm.FinishContentFilter, Usage: &llm.Usage{PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}},
	} {
		out = enc.Append(out, &d)
	}
	out = enc.Finish(out, llm.Usage{})
	if bytes.Contains(out, []byte("other choice")) {
		t.Error("choice 1 written")
	}
	res = decodeAll(t, out)
	var text, args0, args1 string
	for _, d := range res.Deltas {
		text += d.Content
		for _, tc := range d.ToolCalls {
			if tc.Index == 0 {
				args0 += tc.Arguments
			} else {
				args1 += tc.Arguments
			}
		}
	}
	last := res.Deltas[len(res.Deltas)-1]
	if text != "no" || args0 != `{"a":1}` || args1 != `{}` || last.FinishReason != llm.FinishContentFilter ||
		last.Usage == nil || last.Usage.TotalTokens != 7 || res.Deltas[0].ID != "chatcmpl-9" || res.Deltas[0].Model != "gpt-4o" {
		t.Errorf("got text %q args %q %q last %+v first %+v\n%s", text, args0, args1, last, res.Deltas[0], out)
	}
	// Every content_block_start index is the next one, as the SDK requires.
	next := 0
	sc := sse.NewScanner(bytes.NewReader(out), 1<<16)
	for sc.Next() {
		if string(sc.Event().Name) != "content_block_start" {
			continue
		}
		var s struct{ Index int }
		_ = json.Unmarshal(sc.Event().Data, &s)
		if s.Index != next {
			t.Errorf("block %d started as %d", next, s.Index)
		}
		next++
	}
}
