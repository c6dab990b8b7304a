// Package fakeanthropic is an in-process fake of Anthropic's Messages API
// for end-to-end tests: an httptest.Server answering POST /v1/messages with
// a message (JSON) or an SSE stream of Anthropic's events, as the API
// documents them, recording every request, counting streams the client
// abandoned, and misbehaving on demand (error answers in Anthropic's shape,
// 529 overloaded included, hanging, slow first byte, cut streams, error
// events mid-stream).
//
// It checks what Anthropic checks before answering: the x-api-key and
// anthropic-version headers, the required fields (model, max_tokens,
// messages), known models, roles, image sources, tool definitions and the
// pairing of tool_result blocks with the tool_use blocks of the assistant
// turn right before them. A request that breaks a rule gets Anthropic's 400
// invalid_request_error, so a translation mistake fails a test instead of
// passing silently.
//
// What it answers follows providertest/internal/scenario: a tool call when
// tools are offered and the last user text mentions "weather", text quoting
// the tool results when the last turn carries them, "I see N image(s)." for
// images, the configured reply otherwise.
package fakeanthropic

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/providertest/internal/fakecore"
	"github.com/aigw/aigw/providers/providertest/internal/scenario"
)

// DefaultReply is the answer to a plain chat request.
const DefaultReply = "Hello from the fake Anthropic API."

// DefaultModels are the models the server knows unless WithModels says
// otherwise.
var DefaultModels = []string{"claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-sonnet-4-5",
	"claude-sonnet-4-5-20250929", "claude-opus-4-1", "claude-opus-4-1-20250805"}

// Option configures a Server.
type Option func(*config)

type config struct {
	reply    string
	chunks   int
	interval time.Duration
	apiKey   string
	models   []string
}

// WithReply sets the answer to plain chat requests.
func WithReply(s string) Option { return func(c *config) { c.reply = s } }

// WithChunks sets how many text_delta events a streamed text has (at most
// one per rune); default 4.
func WithChunks(n int) Option { return func(c *config) { c.chunks = n } }

// WithChunkInterval sets the pause between two events of a stream.
func WithChunkInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithAPIKey makes the server demand exactly this x-api-key (any non-empty
// key is accepted otherwise).
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithModels sets the models the server knows; others get a 404
// not_found_error.
func WithModels(ids ...string) Option {
	return func(c *config) { c.models = append([]string(nil), ids...) }
}

// Recorded is one request as the server received it.
type Recorded = fakecore.Recorded

// Fault describes how the server misbehaves. The zero Fault is none.
type Fault struct {
	// Status, when non-zero, is answered with Anthropic's error body
	// {"type":"error","error":{"type":Type,"message":Message},
	// "request_id":...}; Type and Message default from the status (529:
	// overloaded_error, "Overloaded").
	Status        int
	Type, Message string
	// RetryAfter, when set, is sent as the retry-after header.
	RetryAfter string
	// Hang holds the request before any header is sent until the client
	// gives up (or the server is closed).
	Hang bool
	// FirstByteDelay waits before sending headers.
	FirstByteDelay time.Duration
	// AbortAfter, when positive, breaks the connection of a stream after
	// that many events, without message_stop.
	AbortAfter int
	// ErrorAfter, when positive, makes a stream (only) fail mid-way: it
	// answers 200 and, after that many content deltas (text_delta and
	// input_json_delta events), sends an error event made of Type and
	// Message (default overloaded_error, "Overloaded") and ends. Status is
	// not used then.
	ErrorAfter int
	// Count is the number of requests the fault applies to, after which it
	// clears itself; 0 means until SetFault or ClearFault.
	Count int
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	core fakecore.Core[Fault]
	cfg  config
}

// New starts a fake server and registers its shutdown with t.Cleanup.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{reply: DefaultReply, chunks: 4, models: DefaultModels}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{cfg: cfg}
	s.core.Start(t, http.HandlerFunc(s.serve))
	return s
}

// URL returns the API's base URL, without /v1, as Anthropic's SDKs and
// aigw's anthropic provider take it (https://api.anthropic.com).
func (s *Server) URL() string { return s.core.URL() }

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Recorded { return s.core.Requests() }

// Canceled returns the number of streams the client abandoned before their
// end.
func (s *Server) Canceled() int { return s.core.Canceled() }

// SetFault makes the server misbehave as f says, from the next request on.
func (s *Server) SetFault(f Fault) { s.core.SetFault(f, f.Count) }

// ClearFault makes the server behave again.
func (s *Server) ClearFault() { s.SetFault(Fault{}) }

// ErrorType returns the error type Anthropic uses with an HTTP status.
func ErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// ErrorBody returns Anthropic's error body.
func ErrorBody(typ, message, requestID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type":       "error",
		"error":      map[string]string{"type": typ, "message": message},
		"request_id": requestID,
	})
	return b
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f := s.core.Record(r, body)
	reqID := s.core.NextID("req_fake_")
	w.Header().Set("request-id", reqID)
	fail := func(status int, typ, msg string) {
		fakecore.WriteJSON(w, status, ErrorBody(typ, msg, reqID))
	}
	if !s.core.Pause(r, f.FirstByteDelay) {
		return
	}
	if f.Hang {
		s.core.Hang(r)
		return
	}
	if f.Status != 0 && f.ErrorAfter == 0 {
		typ, msg := f.Type, f.Message
		if typ == "" {
			typ = ErrorType(f.Status)
		}
		if msg == "" {
			msg = "Fault injected: HTTP " + strconv.Itoa(f.Status) + "."
			if f.Status == 529 {
				msg = "Overloaded"
			}
		}
		if f.RetryAfter != "" {
			w.Header().Set("retry-after", f.RetryAfter)
		}
		fail(f.Status, typ, msg)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		fail(404, "not_found_error", "Not Found")
		return
	}
	key := r.Header.Get("x-api-key")
	switch {
	case key == "":
		fail(401, "authentication_error", "x-api-key header is required")
		return
	case s.cfg.apiKey != "" && key != s.cfg.apiKey:
		fail(401, "authentication_error", "invalid x-api-key")
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		fail(400, "invalid_request_error", "anthropic-version: header is required")
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		fail(400, "invalid_request_error", "There was an error parsing the body: "+err.Error())
		return
	}
	in, msg := s.check(&req)
	if msg != "" {
		if strings.HasPrefix(msg, "model: ") {
			fail(404, "not_found_error", msg)
		} else {
			fail(400, "invalid_request_error", msg)
		}
		return
	}
	a := scenario.Decide(in, s.cfg.reply)
	m := s.message(&req, &a)
	if !req.Stream {
		b, _ := json.Marshal(m)
		fakecore.WriteJSON(w, 200, b)
		return
	}
	frames := s.events(m, f)
	s.core.Stream(w, r, frames, s.cfg.interval, f.AbortAfter)
}

// Request wire types: only what the fake checks or reads.

type request struct {
	Model     string          `json:"model"`
	MaxTokens *int            `json:"max_tokens"`
	System    json.RawMessage `json:"system"`
	Messages  []turn          `json:"messages"`
	Tools     []tool          `json:"tools"`
	Stream    bool            `json:"stream"`
}

type turn struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    *source         `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
}

type source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

// blocks reads a content field: a string is one text block.
func blocks(raw json.RawMessage) ([]block, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		return []block{{Type: "text", Text: s}}, true
	}
	var bs []block
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &bs) != nil {
		return nil, false
	}
	return bs, true
}

// check validates req as the Messages API does and reads the scenario's
// input from it. A non-empty message is the error to answer (a message
// starting with "model: " is a 404).
func (s *Server) check(req *request) (*scenario.Input, string) {
	switch {
	case req.Model == "":
		return nil, "model: Field required"
	case req.MaxTokens == nil:
		return nil, "max_tokens: Field required"
	case *req.MaxTokens < 1:
		return nil, "max_tokens: Input should be greater than or equal to 1"
	case len(req.Messages) == 0:
		return nil, "messages: at least one message is required"
	}
	known := false
	for _, m := range s.cfg.models {
		known = known || m == req.Model
	}
	if !known {
		return nil, "model: " + req.Model
	}
	if len(req.System) > 0 {
		if _, ok := blocks(req.System); !ok {
			return nil, "system: Input should be a valid string or a list of text blocks"
		}
	}
	in := &scenario.Input{}
	for i, t := range req.Tools {
		p := "tools." + strconv.Itoa(i)
		if t.Name == "" {
			return nil, p + ".name: Field required"
		}
		if (t.Type == "" || t.Type == "custom") && len(t.InputSchema) == 0 {
			return nil, p + ".custom.input_schema: Field required"
		}
		in.Tools = append(in.Tools, t.Name)
	}
	var pending []string // tool_use ids of the previous assistant turn
	for i, t := range req.Messages {
		p := "messages." + strconv.Itoa(i)
		bs, ok := blocks(t.Content)
		if !ok {
			return nil, p + ".content: Input should be a valid string or list of content blocks"
		}
		last := i == len(req.Messages)-1
		switch t.Role {
		case "user":
			var results []string
			answered := map[string]bool{}
			text, images := "", 0
			for j, b := range bs {
				bp := p + ".content." + strconv.Itoa(j)
				switch b.Type {
				case "text":
					text += b.Text
				case "image":
					if msg := checkImage(b.Source, bp); msg != "" {
						return nil, msg
					}
					images++
				case "tool_result":
					if !contains(pending, b.ToolUseID) {
						return nil, bp + ": unexpected `tool_use_id` found in `tool_result` blocks: " + b.ToolUseID +
							". Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
					}
					answered[b.ToolUseID] = true
					rc, ok := blocks(b.Content)
					if len(b.Content) == 0 {
						rc, ok = nil, true
					}
					if !ok {
						return nil, bp + ".content: Input should be a valid string or list of content blocks"
					}
					var sb strings.Builder
					for _, c := range rc {
						sb.WriteString(c.Text)
					}
					results = append(results, sb.String())
				case "document":
				default:
					return nil, bp + ".type: Input tag '" + b.Type + "' is not one of the expected block types"
				}
			}
			for _, id := range pending {
				if !answered[id] {
					return nil, p + ": `tool_use` ids were found without `tool_result` blocks immediately after: " + id +
						". Each `tool_use` block must have a corresponding `tool_result` block in the next message."
				}
			}
			pending = nil
			if last {
				in.LastUserText, in.Images, in.ToolResults = text, images, results
			}
		case "assistant":
			if len(pending) > 0 {
				return nil, p + ": `tool_use` ids were found without `tool_result` blocks immediately after: " + pending[0]
			}
			for j, b := range bs {
				switch b.Type {
				case "text", "thinking", "redacted_thinking":
				case "tool_use":
					if b.ID == "" || b.Name == "" {
						return nil, p + ".content." + strconv.Itoa(j) + ": tool_use blocks need an id and a name"
					}
					if in := bytes.TrimSpace(b.Input); len(in) == 0 || in[0] != '{' {
						return nil, p + ".content." + strconv.Itoa(j) + ".input: Input should be a valid dictionary"
					}
					pending = append(pending, b.ID)
				default:
					return nil, p + ".content." + strconv.Itoa(j) + ".type: '" + b.Type + "' is not allowed in assistant turns"
				}
			}
		default:
			return nil, p + ".role: Input should be 'user' or 'assistant'"
		}
	}
	return in, ""
}

func checkImage(src *source, p string) string {
	switch {
	case src == nil:
		return p + ".source: Field required"
	case src.Type == "base64":
		switch src.MediaType {
		case "image/jpeg", "image/png", "image/gif", "image/webp":
		default:
			return p + ".source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
		}
		if _, err := base64.StdEncoding.DecodeString(src.Data); err != nil || src.Data == "" {
			return p + ".source.base64.data: The image data is not valid base64"
		}
	case src.Type == "url":
		if !strings.HasPrefix(src.URL, "https://") && !strings.HasPrefix(src.URL, "http://") {
			return p + ".source.url.url: Input should be a valid URL"
		}
	default:
		return p + ".source.type: Input tag '" + src.Type + "' is not one of 'base64' or 'url'"
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Answer wire types.

type message struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      []answerB `json:"content"`
	StopReason   *string   `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        usage     `json:"usage"`
}

type answerB struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

type usage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

// message builds the whole answer (the stream is cut from it).
func (s *Server) message(req *request, a *scenario.Answer) *message {
	prompt := 0
	for _, t := range req.Messages {
		bs, _ := blocks(t.Content)
		for _, b := range bs {
			prompt += scenario.Tokens(b.Text) + scenario.Tokens(string(b.Input)) + scenario.Tokens(string(b.Content))
		}
		prompt += 4
	}
	m := &message{ID: s.core.NextID("msg_fake_"), Type: "message", Role: "assistant", Model: req.Model,
		Content: []answerB{}, Usage: usage{InputTokens: prompt}}
	stop := "end_turn"
	if a.Text != "" {
		text := a.Text
		m.Content = append(m.Content, answerB{Type: "text", Text: &text})
		m.Usage.OutputTokens += scenario.Tokens(text)
	}
	if a.ToolCall != nil {
		m.Content = append(m.Content, answerB{Type: "tool_use", ID: s.core.NextID("toolu_fake_"),
			Name: a.ToolCall.Name, Input: json.RawMessage(a.ToolCall.Arguments)})
		m.Usage.OutputTokens += scenario.Tokens(a.ToolCall.Arguments)
		stop = "tool_use"
	}
	m.StopReason = &stop
	return m
}

// events cuts m into the Messages API's stream events, as SSE frames.
func (s *Server) events(m *message, f Fault) [][]byte {
	var frames [][]byte
	deltas := 0
	failed := false
	add := func(name string, v any) {
		if failed {
			return
		}
		data, _ := json.Marshal(v)
		frames = append(frames, []byte("event: "+name+"\ndata: "+string(data)+"\n\n"))
	}
	// delta adds a content delta, or the error event in its place once
	// ErrorAfter deltas went out.
	delta := func(v any) {
		if f.ErrorAfter > 0 && deltas == f.ErrorAfter {
			typ, msg := f.Type, f.Message
			if typ == "" {
				typ, msg = "overloaded_error", "Overloaded"
			}
			if msg == "" {
				msg = "Fault injected mid-stream."
			}
			add("error", map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
			failed = true
			return
		}
		add("content_block_delta", v)
		deltas++
	}

	start := *m
	start.Content = []answerB{}
	start.StopReason = nil
	start.Usage.OutputTokens = 1
	add("message_start", map[string]any{"type": "message_start", "message": start})
	index := 0
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			empty := ""
			add("content_block_start", map[string]any{"type": "content_block_start", "index": index,
				"content_block": answerB{Type: "text", Text: &empty}})
			if index == 0 {
				add("ping", map[string]string{"type": "ping"})
			}
			for _, piece := range scenario.Split(*b.Text, s.cfg.chunks) {
				delta(map[string]any{"type": "content_block_delta", "index": index,
					"delta": map[string]string{"type": "text_delta", "text": piece}})
			}
		case "tool_use":
			add("content_block_start", map[string]any{"type": "content_block_start", "index": index,
				"content_block": answerB{Type: "tool_use", ID: b.ID, Name: b.Name, Input: json.RawMessage("{}")}})
			// Anthropic starts with an empty partial_json, then sends the
			// arguments in pieces.
			pieces := append([]string{""}, scenario.Split(string(b.Input), 3)...)
			for _, piece := range pieces {
				delta(map[string]any{"type": "content_block_delta", "index": index,
					"delta": map[string]string{"type": "input_json_delta", "partial_json": piece}})
			}
		}
		add("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
		index++
	}
	add("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": *m.StopReason, "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": m.Usage.OutputTokens}})
	add("message_stop", map[string]string{"type": "message_stop"})
	return frames
}
