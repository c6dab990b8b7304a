// Package mock is aigw's built-in upstream: it answers OpenAI chat
// completions and embeddings requests locally, without a network, the way
// OpenAI would. Policies use it (provider type "mock") for demos, load tests
// and dry runs; tests use it as a deterministic upstream.
//
// Upstream.Do takes the request the openai adapter encoded and returns an
// Inbound like the HTTP transport does. Respond builds the same answers
// without any delay, for other fakes (providertest/fakeopenai) to serve.
package mock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// Defaults for the zero Config fields.
const (
	DefaultReply      = "This is a mock response from aigw."
	DefaultChunks     = 8
	DefaultDimensions = 1536
)

// Config shapes the mock's answers. The zero value answers at once with
// DefaultReply.
type Config struct {
	// Latency passes before Do returns (the time to headers).
	Latency time.Duration
	// ChunkInterval passes between two events of a stream.
	ChunkInterval time.Duration
	// Chunks is the number of content chunks a streamed reply is split
	// into; <= 0 means DefaultChunks. It is capped at the reply's length in
	// runes.
	Chunks int
	// Reply is the assistant's answer to every chat request; "" means
	// DefaultReply.
	Reply string
	// Dimensions is the embedding size when the request gives none; <= 0
	// means DefaultDimensions.
	Dimensions int
}

// Upstream is the mock. It is safe for concurrent use.
type Upstream struct {
	cfg Config
	seq atomic.Uint64
}

// New returns a mock answering as cfg says.
func New(cfg Config) *Upstream {
	if cfg.Reply == "" {
		cfg.Reply = DefaultReply
	}
	if cfg.Chunks <= 0 {
		cfg.Chunks = DefaultChunks
	}
	if cfg.Dimensions <= 0 {
		cfg.Dimensions = DefaultDimensions
	}
	return &Upstream{cfg: cfg}
}

// Response is the mock's answer to one request, before any delay.
type Response struct {
	Status int
	// Header holds Content-Type.
	Header []llm.Header
	// Body is the whole body of a non-stream answer.
	Body []byte
	// Events holds the data of each SSE event of a stream answer, in
	// order, the last being "[DONE]"; nil for a non-stream answer.
	Events [][]byte
}

// Stream reports whether the answer is an SSE stream.
func (r *Response) Stream() bool { return r.Events != nil }

// Do answers out as OpenAI would after cfg.Latency. The URL's path decides:
// it must end in /chat/completions or /embeddings (other paths get OpenAI's
// 404 error body). A stream's Body produces its events lazily, waiting
// cfg.ChunkInterval between two, and stops when ctx is done or Body is
// closed; it starts no goroutine. Do fails only when ctx is done first:
// with an *llm.Error of Kind KindTimeout for a deadline, KindCanceled
// otherwise.
func (u *Upstream) Do(ctx context.Context, out *llm.Outbound) (*llm.Inbound, error) {
	if err := wait(ctx, u.cfg.Latency, nil, nil); err != nil {
		return nil, err
	}
	r := u.Respond(out.Method, pathOf(out.URL), out.Body)
	in := &llm.Inbound{Status: r.Status, Header: r.Header}
	if r.Events == nil {
		in.Body = io.NopCloser(bytes.NewReader(r.Body))
	} else {
		in.Body = &streamBody{ctx: ctx, events: r.Events, interval: u.cfg.ChunkInterval, closed: make(chan struct{})}
	}
	return in, nil
}

// ctxError converts a context's error.
func ctxError(err error) *llm.Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &llm.Error{Kind: llm.KindTimeout, Msg: "The request timed out.", Err: err}
	}
	return &llm.Error{Kind: llm.KindCanceled, Msg: "The request was canceled.", Err: err}
}

// closedError is what a closed stream body reads.
type closedError struct{}

func (closedError) Error() string { return "mock: read on closed body" }

// wait sleeps d, or less if ctx is done or closed is closed. timer, when
// non-nil, is reused.
func wait(ctx context.Context, d time.Duration, timer *time.Timer, closed <-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return ctxError(err)
	}
	if d <= 0 {
		return nil
	}
	if timer == nil {
		timer = time.NewTimer(d)
	} else {
		timer.Reset(d)
	}
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		timer.Stop()
		return ctxError(ctx.Err())
	case <-closed:
		timer.Stop()
		return closedError{}
	}
}

// streamBody produces SSE events as they are read.
type streamBody struct {
	ctx      context.Context
	events   [][]byte
	interval time.Duration
	next     int
	pending  []byte
	buf      []byte
	timer    *time.Timer
	closed   chan struct{}
	once     sync.Once
}

// Read implements io.Reader. It may block for the chunk interval; Close
// from another goroutine or the end of ctx ends the wait.
func (s *streamBody) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		select {
		case <-s.closed:
			return 0, closedError{}
		default:
		}
		if s.next == len(s.events) {
			return 0, io.EOF
		}
		if s.next > 0 && s.interval > 0 {
			if s.timer == nil {
				s.timer = time.NewTimer(time.Hour)
				s.timer.Stop()
			}
			if err := wait(s.ctx, s.interval, s.timer, s.closed); err != nil {
				return 0, err
			}
		} else if err := s.ctx.Err(); err != nil {
			return 0, ctxError(err)
		}
		s.buf = sse.AppendData(s.buf[:0], s.events[s.next])
		s.next++
		s.pending = s.buf
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// Close ends the stream; a Read blocked in it returns at once. It may be
// called more than once.
func (s *streamBody) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// pathOf returns the path of an absolute URL, without query.
func pathOf(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		url = url[i+3:]
		if j := strings.IndexByte(url, '/'); j >= 0 {
			url = url[j:]
		} else {
			url = "/"
		}
	}
	if i := strings.IndexAny(url, "?#"); i >= 0 {
		url = url[:i]
	}
	return url
}

// Respond builds the answer to one request: method, URL path and body, as
// an OpenAI server would give it. Paths ending in /chat/completions and
// /embeddings (with POST) are served; anything else gets a 404 with OpenAI's
// "Invalid URL" error. Bodies are checked with llm's decoder and Validate;
// a bad one gets a 400 with the error's message, param and code.
func (u *Upstream) Respond(method, path string, body []byte) *Response {
	switch {
	case method == "POST" && strings.HasSuffix(path, "/chat/completions"):
		return u.chat(body)
	case method == "POST" && strings.HasSuffix(path, "/embeddings"):
		return u.embeddings(body)
	}
	return ErrorResponse(404, "Invalid URL ("+method+" "+path+")", "invalid_request_error", "", "")
}

func jsonHeaders() []llm.Header {
	return []llm.Header{{Key: "Content-Type", Value: "application/json"}}
}

// ErrorResponse builds an error answer with ErrorBody.
func ErrorResponse(status int, message, typ, param, code string) *Response {
	return &Response{Status: status, Header: jsonHeaders(), Body: ErrorBody(message, typ, param, code)}
}

// ErrorBody returns OpenAI's error body,
// {"error":{"message":…,"type":…,"param":…,"code":…}}, with param and code
// null when empty.
func ErrorBody(message, typ, param, code string) []byte {
	type errObj struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	e := errObj{Message: message, Type: typ}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return marshal(struct {
		Error errObj `json:"error"`
	}{e})
}

// ErrorType returns the error type OpenAI uses with an HTTP status.
func ErrorType(status int) string {
	switch {
	case status == 429:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

func requestError(err error) *Response {
	e := llm.AsError(err)
	return ErrorResponse(400, e.Msg, "invalid_request_error", e.Param, e.Code)
}

// marshal encodes v as OpenAI does: no HTML escaping, no trailing newline.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the types of this file are encoded; none can fail.
		panic("mock: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// ---- chat ----

type usageJSON struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

func toUsageJSON(u llm.Usage) *usageJSON {
	w := &usageJSON{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	w.PromptTokensDetails.CachedTokens = u.CachedTokens
	w.CompletionTokensDetails.ReasoningTokens = u.ReasoningTokens
	return w
}

type completionJSON struct {
	ID                string           `json:"id"`
	Object            string           `json:"object"`
	Created           int64            `json:"created"`
	Model             string           `json:"model"`
	Choices           []completionItem `json:"choices"`
	Usage             *usageJSON       `json:"usage"`
	ServiceTier       string           `json:"service_tier"`
	SystemFingerprint string           `json:"system_fingerprint"`
}

type completionItem struct {
	Index   int `json:"index"`
	Message struct {
		Role        string   `json:"role"`
		Content     string   `json:"content"`
		Refusal     *string  `json:"refusal"`
		Annotations []string `json:"annotations"`
	} `json:"message"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

type chunkJSON struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	ServiceTier       string          `json:"service_tier"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           []chunkItem     `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type chunkItem struct {
	Index        int       `json:"index"`
	Delta        deltaJSON `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type deltaJSON struct {
	Role    string          `json:"role,omitempty"`
	Content *string         `json:"content,omitempty"`
	Refusal json.RawMessage `json:"refusal,omitempty"`
}

const fingerprint = "fp_mock"

// ceilDiv4 is the mock's token estimate: one token per 4 bytes, rounded up.
func ceilDiv4(n int) int { return (n + 3) / 4 }

// EstimatePromptTokens is the mock's prompt token count: the bytes of all
// message text (string content, text parts, tool call arguments) divided
// by 4 and rounded up, plus 4 per message.
func EstimatePromptTokens(r *llm.Request) int {
	n := 0
	for i := range r.Messages {
		m := &r.Messages[i]
		n += len(m.Content) + len(m.Refusal)
		for _, p := range m.Parts {
			n += len(p.Text)
		}
		for _, tc := range m.ToolCalls {
			n += len(tc.Function.Arguments)
		}
	}
	return ceilDiv4(n) + 4*len(r.Messages)
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (u *Upstream) chat(body []byte) *Response {
	var req llm.Request
	if err := req.UnmarshalJSON(body); err != nil {
		return requestError(err)
	}
	if err := req.Validate(); err != nil {
		return requestError(err)
	}
	reply, finish := u.cfg.Reply, llm.FinishStop
	if max, ok := req.MaxOutputTokens(); ok && ceilDiv4(len(reply)) > max {
		reply, finish = truncate(reply, 4*max), llm.FinishLength
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	usage := llm.Usage{PromptTokens: EstimatePromptTokens(&req), CompletionTokens: n * ceilDiv4(len(reply))}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	id := "chatcmpl-mock-" + strconv.FormatUint(u.seq.Add(1), 10)
	created := time.Now().Unix()

	if !req.Stream {
		c := completionJSON{ID: id, Object: "chat.completion", Created: created, Model: req.Model,
			Choices: make([]completionItem, n), Usage: toUsageJSON(usage), ServiceTier: "default", SystemFingerprint: fingerprint}
		for i := range c.Choices {
			c.Choices[i].Index = i
			c.Choices[i].Message.Role = "assistant"
			c.Choices[i].Message.Content = reply
			c.Choices[i].Message.Annotations = []string{}
			c.Choices[i].FinishReason = finish
		}
		return &Response{Status: 200, Header: jsonHeaders(), Body: marshal(&c)}
	}

	includeUsage := req.WantsUsageChunk()
	pieces := split(reply, u.cfg.Chunks)
	events := make([][]byte, 0, n*(len(pieces)+2)+2)
	chunk := func(items []chunkItem, usage json.RawMessage) []byte {
		c := chunkJSON{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			ServiceTier: "default", SystemFingerprint: fingerprint, Choices: items}
		if includeUsage {
			c.Usage = json.RawMessage("null")
			if usage != nil {
				c.Usage = usage
			}
		}
		return marshal(&c)
	}
	empty := ""
	for i := 0; i < n; i++ {
		events = append(events, chunk([]chunkItem{{Index: i, Delta: deltaJSON{Role: "assistant", Content: &empty,
			Refusal: json.RawMessage("null")}}}, nil))
	}
	for _, p := range pieces {
		for i := 0; i < n; i++ {
			events = append(events, chunk([]chunkItem{{Index: i, Delta: deltaJSON{Content: &p}}}, nil))
		}
	}
	for i := 0; i < n; i++ {
		events = append(events, chunk([]chunkItem{{Index: i, FinishReason: &finish}}, nil))
	}
	if includeUsage {
		events = append(events, chunk([]chunkItem{}, marshal(toUsageJSON(usage))))
	}
	events = append(events, []byte("[DONE]"))
	return &Response{Status: 200, Header: []llm.Header{{Key: "Content-Type", Value: "text/event-stream; charset=utf-8"}}, Events: events}
}

// split cuts s into n pieces of about equal rune counts (fewer if s is
// shorter); an empty s gives no piece.
func split(s string, n int) []string {
	runes := utf8.RuneCountInString(s)
	if runes == 0 {
		return nil
	}
	if n > runes {
		n = runes
	}
	pieces := make([]string, 0, n)
	for k := 0; k < n; k++ {
		// The piece's rune count: spread the remainder over the first ones.
		take := runes / n
		if k < runes%n {
			take++
		}
		end := 0
		for r := 0; r < take; r++ {
			_, size := utf8.DecodeRuneInString(s[end:])
			end += size
		}
		pieces = append(pieces, s[:end])
		s = s[end:]
	}
	return pieces
}

// ---- embeddings ----

type embeddingsJSON struct {
	Object string          `json:"object"`
	Data   []embeddingItem `json:"data"`
	Model  string          `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

type embeddingItem struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

func (u *Upstream) embeddings(body []byte) *Response {
	var req llm.EmbeddingRequest
	if err := req.UnmarshalJSON(body); err != nil {
		return requestError(err)
	}
	if err := req.Validate(); err != nil {
		return requestError(err)
	}
	inputs, tokens := embeddingInputs(req.Input)
	dims := u.cfg.Dimensions
	if req.Dimensions != nil {
		dims = *req.Dimensions
	}
	out := embeddingsJSON{Object: "list", Model: req.Model, Data: make([]embeddingItem, len(inputs))}
	for i, in := range inputs {
		v := Vector(in, dims)
		var raw []byte
		if req.EncodingFormat == "base64" {
			raw = base64Vector(v)
		} else {
			raw = floatVector(v)
		}
		out.Data[i] = embeddingItem{Object: "embedding", Index: i, Embedding: raw}
	}
	out.Usage.PromptTokens, out.Usage.TotalTokens = tokens, tokens
	return &Response{Status: 200, Header: jsonHeaders(), Body: marshal(&out)}
}

// embeddingInputs splits a validated input into the byte strings to embed
// and counts its tokens: a string's bytes/4 rounded up, or a token array's
// length. Token arrays are embedded by their JSON text.
func embeddingInputs(raw json.RawMessage) (inputs [][]byte, tokens int) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return [][]byte{[]byte(s)}, ceilDiv4(len(s))
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return nil, 0
	}
	if c := bytes.TrimSpace(items[0]); len(c) > 0 && c[0] != '"' && c[0] != '[' {
		// One token array.
		return [][]byte{bytes.TrimSpace(raw)}, len(items)
	}
	for _, it := range items {
		if json.Unmarshal(it, &s) == nil {
			inputs = append(inputs, []byte(s))
			tokens += ceilDiv4(len(s))
			continue
		}
		var toks []json.RawMessage
		_ = json.Unmarshal(it, &toks)
		inputs = append(inputs, bytes.TrimSpace(it))
		tokens += len(toks)
	}
	return inputs, tokens
}

// Vector returns the mock's embedding of input: a deterministic unit vector
// of dims float32 values seeded by an FNV-1a hash of input. Equal inputs get
// equal vectors, different inputs (almost surely) different ones.
func Vector(input []byte, dims int) []float32 {
	h := fnv.New64a()
	h.Write(input)
	state := h.Sum64()
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		// splitmix64
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		f := float64(z>>11)/float64(1<<53)*2 - 1
		v[i] = float32(f)
		norm += f * f
	}
	if norm = math.Sqrt(norm); norm > 0 {
		for i := range v {
			v[i] = float32(float64(v[i]) / norm)
		}
	}
	return v
}

func floatVector(v []float32) []byte {
	b := make([]byte, 0, 12*len(v)+2)
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	return append(b, ']')
}

func base64Vector(v []float32) []byte {
	raw := make([]byte, 0, 4*len(v))
	for _, f := range v {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw))+2)
	out[0] = '"'
	base64.StdEncoding.Encode(out[1:], raw)
	out[len(out)-1] = '"'
	return out
}
