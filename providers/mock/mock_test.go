package mock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/openai"
	"github.com/aigw/aigw/providers/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var target = &llm.Target{BaseURL: "mock://p", Model: "mock-model"}

func encodeChat(t *testing.T, body string) *llm.Outbound {
	t.Helper()
	var r llm.Request
	if err := r.UnmarshalJSON([]byte(body)); err != nil {
		t.Fatal(err)
	}
	out, err := openai.Adapter{}.EncodeChat(nil, &r, target)
	if err != nil {
		t.Fatal(err)
	}
	return &out
}

func do(t *testing.T, u *Upstream, out *llm.Outbound) (*llm.Inbound, []byte) {
	t.Helper()
	in, err := u.Do(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Body.Close()
	b, err := io.ReadAll(in.Body)
	if err != nil {
		t.Fatal(err)
	}
	return in, b
}

func TestChatNonStream(t *testing.T) {
	u := New(Config{Reply: "Hello there, friend!"}) // 20 bytes: 5 tokens
	in, body := do(t, u, encodeChat(t, `{"model":"alias","messages":[{"role":"system","content":"Be nice."},{"role":"user","content":"Hi <you> & me"}]}`))
	if in.Status != 200 || in.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d header %v", in.Status, in.Header)
	}
	r, err := openai.Adapter{}.DecodeChat(body)
	if err != nil {
		t.Fatal(err)
	}
	// Prompt: 8 + 13 bytes -> ceil(21/4) = 6, plus 4 per message.
	want := llm.Usage{PromptTokens: 6 + 8, CompletionTokens: 5, TotalTokens: 19}
	if !strings.HasPrefix(r.ID, "chatcmpl-mock-") || r.Object != "chat.completion" || r.Model != "mock-model" || r.Created == 0 ||
		len(r.Choices) != 1 || r.Choices[0].Message.Content != "Hello there, friend!" || r.Choices[0].Message.Role != "assistant" ||
		r.Choices[0].FinishReason != "stop" || *r.Usage != want {
		t.Fatalf("%+v usage %+v", r, r.Usage)
	}
	if !bytes.Contains(body, []byte(`"refusal":null`)) || !bytes.Contains(body, []byte(`"logprobs":null`)) {
		t.Fatalf("body lacks OpenAI's null fields: %s", body)
	}
	// Two answers get two ids.
	_, body2 := do(t, u, encodeChat(t, `{"model":"a","messages":[{"role":"user","content":"x"}]}`))
	r2, _ := openai.Adapter{}.DecodeChat(body2)
	if r2.ID == r.ID {
		t.Fatal("ids repeat")
	}
}

func TestChatMaxTokensAndN(t *testing.T) {
	u := New(Config{Reply: "0123456789abcdef"})
	_, body := do(t, u, encodeChat(t, `{"model":"a","messages":[{"role":"user","content":"x"}],"max_tokens":2,"n":2}`))
	r, err := openai.Adapter{}.DecodeChat(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Choices) != 2 || r.Choices[1].Index != 1 || r.Choices[0].Message.Content != "01234567" ||
		r.Choices[0].FinishReason != "length" || r.Usage.CompletionTokens != 4 {
		t.Fatalf("%+v %+v", r.Choices, r.Usage)
	}
}

func readStream(t *testing.T, body []byte) (content map[int]string, finish map[int]string, usage *llm.Usage, raw [][]byte, done bool) {
	t.Helper()
	content, finish = map[int]string{}, map[int]string{}
	dec := openai.Adapter{}.NewStreamDecoder(&llm.Request{})
	sc := sse.NewScanner(bytes.NewReader(body), 1<<20)
	for sc.Next() {
		ev := sc.Event()
		raw = append(raw, bytes.Clone(ev.Data))
		deltas, err := dec.Decode(ev, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deltas {
			content[d.Index] += d.Content
			if d.FinishReason != "" {
				finish[d.Index] = d.FinishReason
			}
			if d.Usage != nil {
				usage = d.Usage
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return content, finish, usage, raw, dec.Done()
}

func TestChatStream(t *testing.T) {
	u := New(Config{Reply: "Héllo wörld, streaming!", Chunks: 5})
	in, body := do(t, u, encodeChat(t, `{"model":"a","messages":[{"role":"user","content":"hey"}],"stream":true}`))
	if in.Status != 200 || in.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("status %d header %v", in.Status, in.Header)
	}
	content, finish, usage, raw, done := readStream(t, body)
	if content[0] != "Héllo wörld, streaming!" || finish[0] != "stop" || !done {
		t.Fatalf("content %v finish %v done %v", content, finish, done)
	}
	// The adapter always asks for usage: role, 5 content, finish, usage, [DONE].
	// The reply is 25 bytes: 7 tokens.
	if len(raw) != 9 {
		t.Fatalf("%d events:\n%s", len(raw), bytes.Join(raw, []byte("\n")))
	}
	if want := (llm.Usage{PromptTokens: 1 + 4, CompletionTokens: 7, TotalTokens: 12}); usage == nil || *usage != want {
		t.Fatalf("usage %+v", usage)
	}
	for i, ev := range raw[:7] {
		if !bytes.HasSuffix(ev, []byte(`,"usage":null}`)) {
			t.Errorf("event %d lacks usage:null: %s", i, ev)
		}
		f := openai.Observe(ev)
		if f.Content != (i > 0) || f.HasUsage {
			t.Errorf("event %d observed %+v", i, f)
		}
	}
	if f := openai.Observe(raw[7]); !f.UsageOnly || !bytes.Contains(raw[7], []byte(`"choices":[]`)) {
		t.Errorf("usage chunk %s", raw[7])
	}
	if !bytes.Contains(raw[0], []byte(`"delta":{"role":"assistant","content":"","refusal":null}`)) {
		t.Errorf("first chunk %s", raw[0])
	}
}

func TestChatStreamWithoutUsage(t *testing.T) {
	// Straight to the mock, as a client that did not ask for usage.
	u := New(Config{Reply: "ab", Chunks: 10})
	r := u.Respond("POST", "/v1/chat/completions", []byte(`{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true,"n":2}`))
	if !r.Stream() || len(r.Events) != 2+2*2+2+1 {
		t.Fatalf("%d events", len(r.Events))
	}
	var body []byte
	for _, ev := range r.Events {
		if bytes.Contains(ev, []byte("usage")) {
			t.Fatalf("usage without include_usage: %s", ev)
		}
		body = sse.AppendData(body, ev)
	}
	content, finish, usage, _, done := readStream(t, body)
	if content[0] != "ab" || content[1] != "ab" || finish[1] != "stop" || usage != nil || !done {
		t.Fatalf("%v %v %v", content, finish, usage)
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want []string
	}{
		{"abcdefg", 3, []string{"abc", "de", "fg"}},
		{"ab", 5, []string{"a", "b"}},
		{"héé", 2, []string{"hé", "é"}},
		{"", 3, nil},
	} {
		got := split(c.s, c.n)
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("split(%q,%d) = %q", c.s, c.n, got)
		}
	}
}

func decodeVector(t *testing.T, raw json.RawMessage) []float32 {
	t.Helper()
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v
	}
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func embed(t *testing.T, u *Upstream, body string) *llm.EmbeddingResponse {
	t.Helper()
	var r llm.EmbeddingRequest
	if err := r.UnmarshalJSON([]byte(body)); err != nil {
		t.Fatal(err)
	}
	out, err := openai.Adapter{}.EncodeEmbeddings(nil, &r, target)
	if err != nil {
		t.Fatal(err)
	}
	in, b := do(t, u, &out)
	if in.Status != 200 {
		t.Fatalf("%d %s", in.Status, b)
	}
	resp, err := openai.Adapter{}.DecodeEmbeddings(b)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestEmbeddings(t *testing.T) {
	u := New(Config{Dimensions: 16})
	f := embed(t, u, `{"model":"e","input":["hello","world","hello"]}`)
	if f.Object != "list" || f.Model != "mock-model" || len(f.Data) != 3 || *f.Usage != (llm.Usage{PromptTokens: 6, TotalTokens: 6}) {
		t.Fatalf("%+v %+v", f, f.Usage)
	}
	vecs := make([][]float32, 3)
	for i, d := range f.Data {
		if d.Index != i || d.Object != "embedding" {
			t.Fatalf("item %+v", d)
		}
		vecs[i] = decodeVector(t, d.Embedding)
		var norm float64
		for _, x := range vecs[i] {
			norm += float64(x) * float64(x)
		}
		if len(vecs[i]) != 16 || math.Abs(norm-1) > 1e-5 {
			t.Fatalf("vector %d: len %d norm %v", i, len(vecs[i]), norm)
		}
	}
	if !equal(vecs[0], vecs[2]) || equal(vecs[0], vecs[1]) {
		t.Fatal("vectors not deterministic per input")
	}
	b := embed(t, u, `{"model":"e","input":"hello","encoding_format":"base64"}`)
	if b.Data[0].Embedding[0] != '"' || !equal(decodeVector(t, b.Data[0].Embedding), vecs[0]) {
		t.Fatalf("base64 vector differs: %s", b.Data[0].Embedding)
	}
	d := embed(t, u, `{"model":"e","input":[[1,2,3],[4]],"dimensions":4}`)
	if len(d.Data) != 2 || len(decodeVector(t, d.Data[0].Embedding)) != 4 || d.Usage.PromptTokens != 4 {
		t.Fatalf("token arrays: %+v", d)
	}
	s := embed(t, u, `{"model":"e","input":[1,2,3]}`)
	if len(s.Data) != 1 || s.Usage.PromptTokens != 3 {
		t.Fatalf("single token array: %+v", s)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestErrors(t *testing.T) {
	u := New(Config{})
	cases := []struct {
		method, url, body string
		status            int
		kind              llm.Kind
		param             string
	}{
		{"POST", "mock://p/v1/completions", `{}`, 404, llm.KindNotFound, ""},
		{"GET", "mock://p/chat/completions", ``, 404, llm.KindNotFound, ""},
		{"POST", "mock://p/chat/completions", `{"model":`, 400, llm.KindInvalidRequest, ""},
		{"POST", "mock://p/chat/completions?x=1", `{"model":"m","messages":[]}`, 400, llm.KindInvalidRequest, "messages"},
		{"POST", "mock://p/embeddings", `{"model":"m","input":""}`, 400, llm.KindInvalidRequest, "input"},
	}
	for _, c := range cases {
		in, body := do(t, u, &llm.Outbound{Method: c.method, URL: c.url, Body: []byte(c.body)})
		if in.Status != c.status {
			t.Errorf("%s %s: status %d", c.method, c.url, in.Status)
			continue
		}
		var e *llm.Error
		if !errors.As(openai.Adapter{}.ClassifyError(in.Status, in.Get, body), &e) || e.Kind != c.kind || e.Param != c.param || e.Msg == "" {
			t.Errorf("%s %s: %v (param %q)", c.method, c.url, e, e.Param)
		}
	}
	_, body := do(t, u, &llm.Outbound{Method: "POST", URL: "mock://p/v1/nope"})
	if string(body) != `{"error":{"message":"Invalid URL (POST /v1/nope)","type":"invalid_request_error","param":null,"code":null}}` {
		t.Fatalf("404 body %s", body)
	}
}

func TestLatencyCanceled(t *testing.T) {
	u := New(Config{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(5 * time.Millisecond)
		cancel()
	}()
	_, err := u.Do(ctx, encodeChat(t, `{"model":"a","messages":[{"role":"user","content":"x"}]}`))
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel2()
	_, err = u.Do(ctx, encodeChat(t, `{"model":"a","messages":[{"role":"user","content":"x"}]}`))
	if !errors.As(err, &e) || e.Kind != llm.KindTimeout {
		t.Fatalf("err = %v", err)
	}
}

func TestLatencyHonoured(t *testing.T) {
	u := New(Config{Latency: 20 * time.Millisecond})
	start := time.Now()
	in, err := u.Do(context.Background(), encodeChat(t, `{"model":"a","messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	in.Body.Close()
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
}

func streamIn(t *testing.T, u *Upstream, ctx context.Context) *llm.Inbound {
	t.Helper()
	in, err := u.Do(ctx, encodeChat(t, `{"model":"a","messages":[{"role":"user","content":"x"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// readEvent reads until the first blank line.
func readEvent(t *testing.T, r io.Reader) error {
	t.Helper()
	var buf []byte
	b := make([]byte, 7)
	for !bytes.HasSuffix(buf, []byte("\n\n")) {
		n, err := r.Read(b)
		buf = append(buf, b[:n]...)
		if err != nil {
			return err
		}
	}
	return nil
}

func TestStreamIntervalAndClose(t *testing.T) {
	u := New(Config{ChunkInterval: time.Hour, Chunks: 3})
	in := streamIn(t, u, context.Background())
	// The first event comes at once, in small reads.
	if err := readEvent(t, in.Body); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- readEvent(t, in.Body) }()
	time.Sleep(5 * time.Millisecond)
	in.Body.Close()
	select {
	case err := <-errc:
		if err == nil || err == io.EOF {
			t.Fatalf("blocked read ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a blocked Read")
	}
	if err := in.Body.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := in.Body.Read(make([]byte, 10)); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

func TestStreamContextCanceled(t *testing.T) {
	u := New(Config{ChunkInterval: time.Hour, Chunks: 3})
	ctx, cancel := context.WithCancel(context.Background())
	in := streamIn(t, u, ctx)
	defer in.Body.Close()
	if err := readEvent(t, in.Body); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(5 * time.Millisecond)
		cancel()
	}()
	err := readEvent(t, in.Body)
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindCanceled {
		t.Fatalf("err = %v", err)
	}
}

func TestStreamPaced(t *testing.T) {
	u := New(Config{ChunkInterval: 2 * time.Millisecond, Chunks: 3, Reply: "abc"})
	in := streamIn(t, u, context.Background())
	defer in.Body.Close()
	start := time.Now()
	body, err := io.ReadAll(in.Body)
	if err != nil {
		t.Fatal(err)
	}
	// role, 3 content, finish, usage, [DONE]: 6 intervals.
	if d := time.Since(start); d < 12*time.Millisecond {
		t.Fatalf("stream took %v", d)
	}
	content, _, _, _, done := readStream(t, body)
	if content[0] != "abc" || !done {
		t.Fatalf("%v", content)
	}
}
