package providertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

func runRequests[D StreamDecoder](t *testing.T, c *Case[D]) {
	for _, f := range inputs(t, c.Dir, "requests", ".json") {
		name := stem(f, ".json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			raw := readFile(t, f)
			var req, pristine llm.Request
			if err := req.UnmarshalJSON(raw); err != nil {
				t.Fatalf("fixture is not a canonical request: %v", err)
			}
			_ = pristine.UnmarshalJSON(raw)

			target := c.Target
			out, err := c.Adapter.EncodeChat(make([]byte, 0, 16), &req, &target)
			if !reflect.DeepEqual(req, pristine) {
				t.Error("EncodeChat modified its request")
			}
			if target != c.Target {
				t.Error("EncodeChat modified its target")
			}

			// Determinism, and dst is appended to, never overwritten.
			prefix := []byte("PREFIX")
			out2, err2 := c.Adapter.EncodeChat(prefix, &req, &target)
			if string(prefix) != "PREFIX" {
				t.Error("EncodeChat overwrote the bytes already in dst")
			}
			if (err == nil) != (err2 == nil) || !bytes.Equal(out.Body, out2.Body) {
				t.Errorf("EncodeChat is not deterministic or kept dst's bytes in Body: %q vs %q", out.Body, out2.Body)
			}

			if err != nil {
				e := DumpError(err)
				if e.Kind == "NOT llm.Error" {
					t.Errorf("EncodeChat returned %T, want *llm.Error: %v", err, err)
				}
				if removeGolden(t, name+".upstream.json") {
					t.Errorf("EncodeChat failed, but %s.upstream.json expects a body: %v", filepath.Base(name), err)
				}
				GoldenJSON(t, name+".error.json", e)
				return
			}
			if removeGolden(t, name+".error.json") {
				t.Errorf("EncodeChat succeeded, but %s.error.json expects an error", filepath.Base(name))
			}
			checkOutbound(t, c, &req, &out)
			GoldenJSON(t, name+".upstream.json", out.Body)
		})
	}
}

// checkOutbound checks what every outbound chat request must satisfy.
func checkOutbound[D StreamDecoder](t *testing.T, c *Case[D], req *llm.Request, out *llm.Outbound) {
	t.Helper()
	if out.Method != "POST" {
		t.Errorf("Method = %q, want POST", out.Method)
	}
	if c.Target.BaseURL != "" && !strings.HasPrefix(out.URL, strings.TrimRight(c.Target.BaseURL, "/")) {
		t.Errorf("URL = %q, want it under the target's base %q", out.URL, c.Target.BaseURL)
	}
	if out.Stream != req.Stream {
		t.Errorf("Outbound.Stream = %v, want %v", out.Stream, req.Stream)
	}
	if !json.Valid(out.Body) {
		t.Errorf("Body is not JSON: %q", out.Body)
	}
	headers := map[string][]string{}
	for _, h := range out.Header {
		k := strings.ToLower(h.Key)
		headers[k] = append(headers[k], h.Value)
	}
	if c.CredentialHeader != "" {
		want := c.CredentialValue
		if want == "" {
			want = c.Target.APIKey
		}
		got := headers[strings.ToLower(c.CredentialHeader)]
		if len(got) != 1 || got[0] != want {
			t.Errorf("credential header %s = %q, want exactly [%q]", c.CredentialHeader, got, want)
		}
		if !strings.EqualFold(c.CredentialHeader, "Authorization") {
			if v, ok := headers["authorization"]; ok {
				t.Errorf("Authorization header sent (%q) although the provider authenticates with %s", v, c.CredentialHeader)
			}
		}
	}
	for k, v := range c.Header {
		got := headers[strings.ToLower(k)]
		if len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want exactly [%q]", k, got, v)
		}
	}
	for k, vs := range headers {
		if len(vs) > 1 {
			t.Errorf("header %s sent %d times", k, len(vs))
		}
		if k == "accept-encoding" && req.Stream {
			t.Errorf("Accept-Encoding sent on a stream")
		}
	}
}

type responseGolden struct {
	Response *ResponseDump `json:"response,omitempty"`
	Error    *ErrorDump    `json:"error,omitempty"`
}

func runResponses[D StreamDecoder](t *testing.T, c *Case[D]) {
	for _, f := range inputs(t, c.Dir, "responses", ".json") {
		name := stem(f, ".json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			body := readFile(t, f)
			resp, err := c.Adapter.DecodeChat(body)
			// The response must not alias the body: scribble over it
			// before dumping.
			for i := range body {
				body[i] = 'x'
			}
			var g responseGolden
			if err != nil {
				g.Error = DumpError(err)
				if g.Error.Kind == "NOT llm.Error" {
					t.Errorf("DecodeChat returned %T, want *llm.Error: %v", err, err)
				}
			} else {
				if resp == nil {
					t.Fatal("DecodeChat returned nil and no error")
				}
				d := DumpResponse(resp)
				g.Response = &d
				if resp.Usage != nil {
					checkUsage(t, *resp.Usage)
				}
			}
			GoldenJSON(t, name+".expected.json", g)
		})
	}
}

// checkUsage checks the invariants of llm.Usage's OpenAI convention.
func checkUsage(t *testing.T, u llm.Usage) {
	t.Helper()
	if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage total %d != prompt %d + completion %d", u.TotalTokens, u.PromptTokens, u.CompletionTokens)
	}
	if u.CachedTokens+u.CacheWriteTokens > u.PromptTokens {
		t.Errorf("usage cached %d + cache writes %d exceed prompt %d", u.CachedTokens, u.CacheWriteTokens, u.PromptTokens)
	}
	if u.ReasoningTokens > u.CompletionTokens {
		t.Errorf("usage reasoning %d exceeds completion %d", u.ReasoningTokens, u.CompletionTokens)
	}
	if u.PromptTokens < 0 || u.CompletionTokens < 0 || u.CachedTokens < 0 || u.CacheWriteTokens < 0 || u.ReasoningTokens < 0 {
		t.Errorf("negative usage figure: %+v", u)
	}
}

// StreamResult is what ReplayStream saw.
type StreamResult struct {
	Deltas []DeltaDump `json:"deltas"`
	Usage  *UsageDump  `json:"usage"`
	Done   bool        `json:"done"`
	// Error is the first error Decode returned; decoding stops there.
	Error *ErrorDump `json:"error"`
	// ScanError is the SSE scanner's error, if any.
	ScanError string `json:"scan_error,omitempty"`
}

// ReplayStream scans body as SSE (events up to maxEventBytes) and feeds
// every event to dec, as the proxy's stream pump does, reusing one delta
// buffer. It stops at the first Decode error.
func ReplayStream(dec StreamDecoder, body io.Reader, maxEventBytes int) StreamResult {
	res := StreamResult{Deltas: []DeltaDump{}}
	sc := sse.NewScanner(body, maxEventBytes)
	var buf []llm.Delta
	for sc.Next() {
		var err error
		buf, err = dec.Decode(sc.Event(), buf[:0])
		for i := range buf {
			res.Deltas = append(res.Deltas, DumpDelta(&buf[i]))
		}
		if err != nil {
			res.Error = DumpError(err)
			break
		}
	}
	if err := sc.Err(); err != nil {
		res.ScanError = err.Error()
	}
	if u, ok := dec.Usage(); ok {
		d := DumpUsage(u)
		res.Usage = &d
	}
	res.Done = dec.Done()
	return res
}

func streamRequest(t *testing.T, name string) *llm.Request {
	t.Helper()
	req := &llm.Request{Model: "test-model", Stream: true,
		Messages: []llm.Message{{Role: "user", Content: "hi", HasContent: true}}}
	raw, err := readOptional(name + ".request.json")
	if err != nil {
		t.Fatal(err)
	}
	if raw != nil {
		req = &llm.Request{}
		if err := req.UnmarshalJSON(raw); err != nil {
			t.Fatalf("%s.request.json: %v", name, err)
		}
	}
	return req
}

func runStreams[D StreamDecoder](t *testing.T, c *Case[D]) {
	for _, f := range inputs(t, c.Dir, "streams", ".sse") {
		name := stem(f, ".sse")
		t.Run(filepath.Base(name), func(t *testing.T) {
			body := readFile(t, f)
			req := streamRequest(t, name)
			res := ReplayStream(c.Adapter.NewStreamDecoder(req), bytes.NewReader(body), c.MaxEventBytes)
			if res.Error != nil && res.Error.Kind == "NOT llm.Error" {
				t.Errorf("Decode returned a non-*llm.Error: %s", res.Error.Msg)
			}
			if res.Usage != nil {
				checkUsage(t, llm.Usage(*res.Usage))
			}
			// The same stream read one byte at a time (scanner buffers
			// reused differently) must decode the same.
			res1 := ReplayStream(c.Adapter.NewStreamDecoder(req), iotest.OneByteReader(bytes.NewReader(body)), c.MaxEventBytes)
			a, _ := jsonText(res)
			b, _ := jsonText(res1)
			if d := JSONDiff(a, b); d != "" {
				t.Errorf("decoding depends on how the body is read: %s", d)
			}
			GoldenJSON(t, name+".expected.json", res)
		})
	}
}

// errorFixture is an errors/NAME.json file.
type errorFixture struct {
	Status int               `json:"status"`
	Header map[string]string `json:"header"`
	Body   json.RawMessage   `json:"body"`
}

func (f *errorFixture) body() []byte {
	var s string
	if len(f.Body) > 0 && f.Body[0] == '"' && json.Unmarshal(f.Body, &s) == nil {
		return []byte(s)
	}
	return f.Body
}

func (f *errorFixture) header(key string) string {
	for k, v := range f.Header {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func runErrors[D StreamDecoder](t *testing.T, c *Case[D]) {
	for _, f := range inputs(t, c.Dir, "errors", ".json") {
		name := stem(f, ".json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			var fx errorFixture
			if err := json.Unmarshal(readFile(t, f), &fx); err != nil {
				t.Fatalf("bad fixture: %v", err)
			}
			err := c.Adapter.ClassifyError(fx.Status, fx.header, fx.body())
			if err == nil {
				t.Fatal("ClassifyError returned nil")
			}
			var e *llm.Error
			if !errors.As(err, &e) {
				t.Fatalf("ClassifyError returned %T, want *llm.Error", err)
			}
			if e.Status != fx.Status {
				t.Errorf("Status = %d, want the upstream's %d", e.Status, fx.Status)
			}
			if e.Msg == "" {
				t.Error("Msg is empty")
			}
			GoldenJSON(t, name+".expected.json", DumpError(err))
		})
	}
}

type embeddingsGolden struct {
	Object string            `json:"object"`
	Model  string            `json:"model"`
	Data   []json.RawMessage `json:"data"`
	Usage  *UsageDump        `json:"usage,omitempty"`
}

func runEmbeddings[D StreamDecoder](t *testing.T, c *Case[D]) {
	for _, f := range inputs(t, c.Dir, "embeddings", ".json") {
		name := stem(f, ".json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			var req llm.EmbeddingRequest
			if err := req.UnmarshalJSON(readFile(t, f)); err != nil {
				t.Fatalf("fixture is not a canonical embeddings request: %v", err)
			}
			target := c.Target
			out, err := c.Adapter.EncodeEmbeddings(nil, &req, &target)
			if err != nil {
				if removeGolden(t, name+".upstream.json") {
					t.Errorf("EncodeEmbeddings failed, but a body is expected: %v", err)
				}
				GoldenJSON(t, name+".error.json", DumpError(err))
				return
			}
			if removeGolden(t, name+".error.json") {
				t.Error("EncodeEmbeddings succeeded, but an error is expected")
			}
			if c.CredentialHeader != "" {
				found := false
				for _, h := range out.Header {
					found = found || strings.EqualFold(h.Key, c.CredentialHeader)
				}
				if !found {
					t.Errorf("credential header %s missing", c.CredentialHeader)
				}
			}
			GoldenJSON(t, name+".upstream.json", out.Body)
		})
	}
	for _, f := range inputs(t, c.Dir, "embedding_responses", ".json") {
		name := stem(f, ".json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			resp, err := c.Adapter.DecodeEmbeddings(readFile(t, f))
			var g struct {
				Response *embeddingsGolden `json:"response,omitempty"`
				Error    *ErrorDump        `json:"error,omitempty"`
			}
			if err != nil {
				g.Error = DumpError(err)
			} else {
				eg := &embeddingsGolden{Object: resp.Object, Model: resp.Model, Data: []json.RawMessage{}}
				for _, d := range resp.Data {
					b, _ := json.Marshal(d)
					eg.Data = append(eg.Data, b)
				}
				if resp.Usage != nil {
					u := DumpUsage(*resp.Usage)
					eg.Usage = &u
				}
				g.Response = eg
			}
			GoldenJSON(t, name+".expected.json", g)
		})
	}
}
