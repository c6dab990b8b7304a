// Package fakeopenai is an in-process fake of OpenAI's HTTP API for
// end-to-end tests: an httptest.Server answering POST /v1/chat/completions
// (JSON or SSE stream), POST /v1/embeddings and GET /v1/models as OpenAI
// does, recording every request, counting streams the client abandoned, and
// misbehaving on demand (error statuses, hanging, slow first byte, cut
// streams).
//
// Answers are built by providers/mock, so the fake and the built-in mock
// upstream say exactly the same things; the fake adds HTTP, pacing and
// faults. Like fakeanthropic and fakegemini it also follows
// providertest/internal/scenario, so that a tool-call round trip and image
// parts are observable: a tool call when tools are offered and the last user
// text mentions "weather", text quoting the tool results when the last
// messages are tool messages, "I see N image(s)." for image parts. Tool
// messages must answer the tool_calls of the assistant message before them,
// and every tool call must be answered, or the request gets OpenAI's 400.
package fakeopenai

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/mock"
	"github.com/aigw/aigw/providers/sse"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	mock     mock.Config
	interval time.Duration
	models   []string
	apiKey   string
}

// WithReply sets the assistant's answer to every chat request.
func WithReply(s string) Option { return func(c *config) { c.mock.Reply = s } }

// WithChunks sets how many content chunks a streamed answer has (at most
// one per rune of the reply; see mock.Config.Chunks).
func WithChunks(n int) Option { return func(c *config) { c.mock.Chunks = n } }

// WithStream is WithChunks(chunks) and WithChunkInterval(interval).
func WithStream(chunks int, interval time.Duration) Option {
	return func(c *config) { c.mock.Chunks, c.interval = chunks, interval }
}

// WithChunkInterval sets the pause between two events of a stream.
func WithChunkInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithDimensions sets the embedding size used when a request gives none.
func WithDimensions(n int) Option { return func(c *config) { c.mock.Dimensions = n } }

// WithModels sets the ids GET /v1/models lists.
func WithModels(ids ...string) Option {
	return func(c *config) { c.models = append([]string(nil), ids...) }
}

// WithAPIKey makes the server demand "Authorization: Bearer key" and answer
// 401 with OpenAI's invalid_api_key error otherwise.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// Recorded is one request as the server received it.
type Recorded struct {
	Method string
	Path   string // decoded
	// EscapedPath is the path as it was sent, escapes kept (a deployment
	// or model name with a "/" arrives as %2F).
	EscapedPath string
	Query       string
	Header      http.Header
	Body        []byte
}

// Fault describes how the server misbehaves. The zero Fault is none.
type Fault struct {
	// Status, when non-zero, is answered with OpenAI's error body made of
	// Message, Type, Param and Code (Message and Type default from the
	// status).
	Status                     int
	Message, Type, Param, Code string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Hang holds the request before any header is sent until the client
	// gives up (or the server is closed).
	Hang bool
	// FirstByteDelay waits before sending headers (the client may give up
	// meanwhile).
	FirstByteDelay time.Duration
	// AbortAfter, when positive, breaks the connection of a stream after
	// that many events, without [DONE].
	AbortAfter int
	// ErrorAfter, when positive, makes a stream (only) fail mid-way: it
	// answers 200 and, after the role chunk and that many further chunks,
	// sends OpenAI's in-stream error object {"error":{...}} made of Message,
	// Type and Code (default server_error) and ends without [DONE]. Status
	// is not used then.
	ErrorAfter int
	// Count is the number of requests the fault applies to, after which it
	// clears itself; 0 means until SetFault or ClearFault.
	Count int
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv  *httptest.Server
	up   *mock.Upstream
	cfg  config
	done chan struct{}

	canceled atomic.Int64
	seq      atomic.Int64

	mu    sync.Mutex
	reqs  []Recorded
	fault Fault
	left  int // requests left for a counted fault
}

// New starts a fake server and registers its shutdown with t.Cleanup.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{models: []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"}}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{up: mock.New(cfg.mock), cfg: cfg, done: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.done) // releases hanging handlers
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

// URL returns the API's base URL, ending in /v1, as an OpenAI SDK wants it.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.reqs))
	for i, r := range s.reqs {
		r.Header = r.Header.Clone()
		r.Body = append([]byte(nil), r.Body...)
		out[i] = r
	}
	return out
}

// Canceled returns the number of streams the client abandoned before their
// end.
func (s *Server) Canceled() int { return int(s.canceled.Load()) }

// SetFault makes the server misbehave as f says, from the next request on.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.left = f, f.Count
}

// ClearFault makes the server behave again.
func (s *Server) ClearFault() { s.SetFault(Fault{}) }

// record stores the request and returns the fault that applies to it.
func (s *Server) record(r *http.Request, body []byte) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, Recorded{Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body})
	f := s.fault
	if f.Count > 0 {
		if s.left--; s.left <= 0 {
			s.fault = Fault{}
		}
	}
	return f
}

// pause waits d; false if the client or the server went away first.
func (s *Server) pause(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f := s.record(r, body)
	w.Header().Set("X-Request-Id", "req_fake_"+strconv.FormatInt(s.seq.Add(1), 10))
	if !s.pause(r, f.FirstByteDelay) {
		return
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if f.Status != 0 && f.ErrorAfter == 0 {
		msg, typ := f.Message, f.Type
		if msg == "" {
			msg = "Fault injected: HTTP " + strconv.Itoa(f.Status) + "."
		}
		if typ == "" {
			typ = mock.ErrorType(f.Status)
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		writeJSON(w, f.Status, mock.ErrorBody(msg, typ, f.Param, f.Code))
		return
	}
	if s.cfg.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+s.cfg.apiKey {
		writeJSON(w, 401, mock.ErrorBody("Incorrect API key provided.", "invalid_request_error", "", "invalid_api_key"))
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/v1/models" {
		s.models(w)
		return
	}
	resp := s.respond(r.Method, r.URL.Path, body)
	for _, h := range resp.Header {
		w.Header().Set(h.Key, h.Value)
	}
	if !resp.Stream() {
		w.WriteHeader(resp.Status)
		_, _ = w.Write(resp.Body)
		return
	}
	events := resp.Events
	if f.ErrorAfter > 0 && f.ErrorAfter+1 < len(events) {
		msg, typ := f.Message, f.Type
		if msg == "" {
			msg = "The server had an error while processing your request. Sorry about that!"
		}
		if typ == "" {
			typ = "server_error"
		}
		events = append(events[:f.ErrorAfter+1:f.ErrorAfter+1], mock.ErrorBody(msg, typ, f.Param, f.Code))
	}
	s.stream(w, r, events, f.AbortAfter)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, events [][]byte, abortAfter int) {
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var buf []byte
	for i, ev := range events {
		if abortAfter > 0 && i == abortAfter {
			panic(http.ErrAbortHandler) // net/http closes the connection quietly
		}
		if i > 0 && !s.pause(r, s.cfg.interval) {
			s.canceled.Add(1)
			return
		}
		buf = sse.AppendData(buf[:0], ev)
		_, err := w.Write(buf)
		if flusher != nil {
			flusher.Flush()
		}
		if err != nil || r.Context().Err() != nil {
			s.canceled.Add(1)
			return
		}
	}
}

func (s *Server) models(w http.ResponseWriter) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, id := range s.cfg.models {
		list.Data = append(list.Data, model{ID: id, Object: "model", Created: 1700000000, OwnedBy: "system"})
	}
	b, _ := json.Marshal(list)
	writeJSON(w, 200, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
