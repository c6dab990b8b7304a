// Package fakegemini is an in-process fake of Google's Gemini API (the
// v1beta REST surface of generativelanguage.googleapis.com) for end-to-end
// tests: an httptest.Server answering
//
//	POST /v1beta/models/{model}:generateContent
//	POST /v1beta/models/{model}:streamGenerateContent?alt=sse  (a JSON array without alt=sse)
//	POST /v1beta/models/{model}:embedContent
//	POST /v1beta/models/{model}:batchEmbedContents
//
// as Google documents them, recording every request, counting streams the
// client abandoned, and misbehaving on demand (google.rpc.Status error
// bodies such as 429 RESOURCE_EXHAUSTED with a RetryInfo delay, hanging,
// slow first byte, cut streams, an error object mid-stream).
//
// Like Google it checks the key (x-goog-api-key, or the key query
// parameter), known models and methods, and the request: unknown JSON
// fields are refused (the API parses protobuf JSON strictly; the fake
// accepts the lowerCamelCase names only), contents and parts must not be
// empty, roles are user or model, inline data needs a MIME type and base64
// data, and a turn of functionResponse parts must follow a model turn with
// as many functionCall parts, names matching. A request that breaks a rule
// gets a 400 INVALID_ARGUMENT, so a translation mistake fails a test.
//
// What it answers follows providertest/internal/scenario: a functionCall
// when tools are offered and the last user text mentions "weather", text
// quoting the function responses when the last turn carries them, "I see N
// image(s)." for images, the configured reply otherwise.
package fakegemini

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/providertest/internal/fakecore"
	"github.com/aigw/aigw/providers/providertest/internal/scenario"
)

// DefaultReply is the answer to a plain chat request.
const DefaultReply = "Hello from the fake Gemini API."

// DefaultModels are the models the server knows unless WithModels says
// otherwise. Names containing "embedding" serve the embedding methods, the
// others the generate methods.
var DefaultModels = []string{"gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro",
	"gemini-embedding-001", "text-embedding-004"}

// Option configures a Server.
type Option func(*config)

type config struct {
	reply      string
	chunks     int
	interval   time.Duration
	apiKey     string
	models     []string
	dimensions int
}

// WithReply sets the answer to plain chat requests.
func WithReply(s string) Option { return func(c *config) { c.reply = s } }

// WithChunks sets how many chunks a streamed text has (at most one per
// rune); default 4.
func WithChunks(n int) Option { return func(c *config) { c.chunks = n } }

// WithChunkInterval sets the pause between two chunks of a stream.
func WithChunkInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithAPIKey makes the server demand exactly this key (any non-empty key is
// accepted otherwise).
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithModels sets the models the server knows.
func WithModels(ids ...string) Option {
	return func(c *config) { c.models = append([]string(nil), ids...) }
}

// WithDimensions sets the embedding size when a request gives no
// outputDimensionality; default 768.
func WithDimensions(n int) Option { return func(c *config) { c.dimensions = n } }

// Recorded is one request as the server received it.
type Recorded = fakecore.Recorded

// Fault describes how the server misbehaves. The zero Fault is none.
type Fault struct {
	// Status, when non-zero, is answered with Google's error body
	// {"error":{"code":Status,"message":Message,"status":RPCStatus,
	// "details":[...]}}; RPCStatus defaults from the HTTP status (429:
	// RESOURCE_EXHAUSTED).
	Status    int
	Message   string
	RPCStatus string
	// RetryDelay, when set (for example "7s"), adds a
	// google.rpc.RetryInfo detail with that retryDelay.
	RetryDelay string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Hang holds the request before any header is sent until the client
	// gives up (or the server is closed).
	Hang bool
	// FirstByteDelay waits before sending headers.
	FirstByteDelay time.Duration
	// AbortAfter, when positive, breaks the connection of a stream after
	// that many chunks.
	AbortAfter int
	// ErrorAfter, when positive, makes a stream (only) fail mid-way: it
	// answers 200 and, after that many content chunks, sends an error
	// object (Status, default 503, with Message and RPCStatus) as the next
	// event and ends.
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
	cfg := config{reply: DefaultReply, chunks: 4, models: DefaultModels, dimensions: 768}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{cfg: cfg}
	s.core.Start(t, http.HandlerFunc(s.serve))
	return s
}

// URL returns the API's base URL without the version segment, as aigw's
// gemini provider takes it (https://generativelanguage.googleapis.com).
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

// RPCStatus returns the google.rpc status name Google uses with an HTTP
// status.
func RPCStatus(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ABORTED"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 501:
		return "UNIMPLEMENTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

// statusObject is google.rpc.Status as Google's JSON APIs render it.
func statusObject(code int, message, status string, details ...map[string]any) map[string]any {
	if status == "" {
		status = RPCStatus(code)
	}
	obj := map[string]any{"code": code, "message": message, "status": status}
	if len(details) > 0 {
		obj["details"] = details
	}
	return obj
}

// ErrorBody returns Google's error body for status (RPCStatus default) with
// optional details.
func ErrorBody(code int, message, status string, details ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"error": statusObject(code, message, status, details...)})
	return b
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f := s.core.Record(r, body)
	fail := func(code int, msg string, details ...map[string]any) {
		fakecore.WriteJSON(w, code, ErrorBody(code, msg, "", details...))
	}
	if !s.core.Pause(r, f.FirstByteDelay) {
		return
	}
	if f.Hang {
		s.core.Hang(r)
		return
	}
	if f.Status != 0 && f.ErrorAfter == 0 {
		msg := f.Message
		if msg == "" {
			msg = "Fault injected: HTTP " + strconv.Itoa(f.Status) + "."
		}
		var details []map[string]any
		if f.RetryDelay != "" {
			details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f.RetryDelay})
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		fakecore.WriteJSON(w, f.Status, ErrorBody(f.Status, msg, f.RPCStatus, details...))
		return
	}

	rest, ok := strings.CutPrefix(r.URL.Path, "/v1beta/models/")
	colon := strings.LastIndexByte(rest, ':')
	if !ok || r.Method != http.MethodPost || colon <= 0 {
		fail(404, "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}
	model, method := rest[:colon], rest[colon+1:]

	key := r.Header.Get("x-goog-api-key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	switch {
	case key == "":
		fail(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
		return
	case s.cfg.apiKey != "" && key != s.cfg.apiKey:
		fail(400, "API key not valid. Please pass a valid API key.", map[string]any{
			"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"})
		return
	}

	embedding := strings.Contains(model, "embedding")
	known := false
	for _, m := range s.cfg.models {
		known = known || m == model
	}
	var generate bool
	switch method {
	case "generateContent", "streamGenerateContent":
		generate = true
	case "embedContent", "batchEmbedContents":
	default:
		fail(404, "The requested method "+method+" was not found.")
		return
	}
	if !known || generate == embedding {
		fail(404, "models/"+model+" is not found for API version v1beta, or is not supported for "+method+
			". Call ListModels to see the list of available models and their supported methods.")
		return
	}

	switch method {
	case "embedContent":
		s.embed(w, model, body, fail)
	case "batchEmbedContents":
		s.batchEmbed(w, model, body, fail)
	default:
		s.generate(w, r, model, method == "streamGenerateContent", body, f, fail)
	}
}

type failFunc func(code int, msg string, details ...map[string]any)

// strict decodes body into v, refusing unknown fields as Google does.
func strict(body []byte, v any) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return "Invalid JSON payload received. " + err.Error()
	}
	return ""
}

// Request wire types. Fields the fake does not inspect are kept raw, so
// that their names are still checked.

type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction"`
	Tools             []tool            `json:"tools"`
	ToolConfig        json.RawMessage   `json:"toolConfig"`
	GenerationConfig  json.RawMessage   `json:"generationConfig"`
	SafetySettings    []json.RawMessage `json:"safetySettings"`
	CachedContent     string            `json:"cachedContent"`
}

type content struct {
	Role  string `json:"role"`
	Parts []part `json:"parts"`
}

type part struct {
	Text             *string          `json:"text"`
	InlineData       *blob            `json:"inlineData"`
	FileData         *fileData        `json:"fileData"`
	FunctionCall     *functionCall    `json:"functionCall"`
	FunctionResponse *functionResp    `json:"functionResponse"`
	Thought          bool             `json:"thought"`
	ThoughtSignature string           `json:"thoughtSignature"`
	VideoMetadata    *json.RawMessage `json:"videoMetadata"`
}

type blob struct {
	MIMEType string `json:"mimeType"`
	Data     string `json:"data"`
}

type fileData struct {
	MIMEType string `json:"mimeType"`
	FileURI  string `json:"fileUri"`
}

type functionCall struct {
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
}

type functionResp struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type tool struct {
	FunctionDeclarations []struct {
		Name                 string          `json:"name"`
		Description          string          `json:"description"`
		Parameters           json.RawMessage `json:"parameters"`
		ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
		Response             json.RawMessage `json:"response"`
		ResponseJSONSchema   json.RawMessage `json:"responseJsonSchema"`
	} `json:"functionDeclarations"`
	GoogleSearch          json.RawMessage `json:"googleSearch"`
	GoogleSearchRetrieval json.RawMessage `json:"googleSearchRetrieval"`
	CodeExecution         json.RawMessage `json:"codeExecution"`
	URLContext            json.RawMessage `json:"urlContext"`
}

// check validates req as the API does and reads the scenario's input.
func check(req *generateRequest) (*scenario.Input, string) {
	if len(req.Contents) == 0 {
		return nil, "* GenerateContentRequest.contents: contents is not specified"
	}
	in := &scenario.Input{}
	for _, t := range req.Tools {
		for _, d := range t.FunctionDeclarations {
			if d.Name == "" {
				return nil, "* GenerateContentRequest.tools[0].function_declarations[0].name: Name cannot be empty."
			}
			in.Tools = append(in.Tools, d.Name)
		}
	}
	if req.SystemInstruction != nil {
		for _, p := range req.SystemInstruction.Parts {
			if p.Text == nil {
				return nil, "* GenerateContentRequest.system_instruction: only text parts are allowed"
			}
		}
	}
	var calls []string // function names called by the previous model turn
	for i, c := range req.Contents {
		p := "* GenerateContentRequest.contents[" + strconv.Itoa(i) + "]"
		if c.Role != "user" && c.Role != "model" && !(c.Role == "" && len(req.Contents) == 1) {
			return nil, "Please use a valid role: user, model."
		}
		if len(c.Parts) == 0 {
			return nil, p + ".parts: contents.parts must not be empty."
		}
		var text strings.Builder
		var results, answered []string
		images := 0
		var called []string
		for j, pt := range c.Parts {
			pp := p + ".parts[" + strconv.Itoa(j) + "]"
			n := 0
			for _, set := range []bool{pt.Text != nil, pt.InlineData != nil, pt.FileData != nil, pt.FunctionCall != nil, pt.FunctionResponse != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				return nil, pp + ".data: required oneof field 'data' must have one initialized field"
			}
			switch {
			case pt.Text != nil:
				text.WriteString(*pt.Text)
			case pt.InlineData != nil:
				if pt.InlineData.MIMEType == "" {
					return nil, pp + ".inline_data.mime_type: mime_type must be specified"
				}
				if _, err := base64.StdEncoding.DecodeString(pt.InlineData.Data); err != nil || pt.InlineData.Data == "" {
					return nil, "Invalid value at '" + pp[2:] + ".inline_data.data' (TYPE_BYTES), Base64 decoding failed"
				}
				if strings.HasPrefix(pt.InlineData.MIMEType, "image/") {
					images++
				}
			case pt.FileData != nil:
				if pt.FileData.FileURI == "" {
					return nil, pp + ".file_data.file_uri: file_uri must be specified"
				}
				if strings.HasPrefix(pt.FileData.MIMEType, "image/") {
					images++
				}
			case pt.FunctionCall != nil:
				if c.Role != "model" {
					return nil, "Please ensure that function call turn comes immediately after a user turn or after a function response turn."
				}
				if a := bytes.TrimSpace(pt.FunctionCall.Args); len(a) > 0 && a[0] != '{' {
					return nil, "Invalid value at '" + pp[2:] + ".function_call.args' (type.googleapis.com/google.protobuf.Struct)"
				}
				called = append(called, pt.FunctionCall.Name)
			case pt.FunctionResponse != nil:
				resp := bytes.TrimSpace(pt.FunctionResponse.Response)
				if len(resp) == 0 || resp[0] != '{' {
					return nil, "Invalid value at '" + pp[2:] + ".function_response.response' (type.googleapis.com/google.protobuf.Struct)"
				}
				answered = append(answered, pt.FunctionResponse.Name)
				results = append(results, resultText(resp))
			}
		}
		if len(answered) > 0 {
			if len(calls) == 0 {
				return nil, "Please ensure that function response turn comes immediately after a function call turn."
			}
			if len(answered) != len(calls) {
				return nil, "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn."
			}
			a, b := append([]string(nil), answered...), append([]string(nil), calls...)
			sort.Strings(a)
			sort.Strings(b)
			for k := range a {
				if a[k] != b[k] {
					return nil, "Please ensure that function response names match the function call names of the function call turn: " + a[k]
				}
			}
		}
		calls = called
		if i == len(req.Contents)-1 && c.Role != "model" {
			in.LastUserText, in.Images, in.ToolResults = text.String(), images, results
		}
	}
	return in, ""
}

// resultText is what a function response said: its "output" when that is a
// string, the compact JSON of the object otherwise.
func resultText(resp []byte) string {
	var out struct {
		Output *string `json:"output"`
	}
	if json.Unmarshal(resp, &out) == nil && out.Output != nil {
		return *out.Output
	}
	var b bytes.Buffer
	if json.Compact(&b, resp) != nil {
		return string(resp)
	}
	return b.String()
}

// Answer wire types.

type answerPart struct {
	Text         string        `json:"text,omitempty"`
	FunctionCall *answerFnCall `json:"functionCall,omitempty"`
}

type answerFnCall struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
}

type candidate struct {
	Content      *answerContent `json:"content,omitempty"`
	FinishReason string         `json:"finishReason,omitempty"`
	Index        int            `json:"index"`
}

type answerContent struct {
	Parts []answerPart `json:"parts"`
	Role  string       `json:"role"`
}

type usageMetadata struct {
	PromptTokenCount     int `json:"promptTokenCount"`
	CandidatesTokenCount int `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount      int `json:"totalTokenCount"`
}

type response struct {
	Candidates    []candidate    `json:"candidates"`
	UsageMetadata *usageMetadata `json:"usageMetadata,omitempty"`
	ModelVersion  string         `json:"modelVersion"`
	ResponseID    string         `json:"responseId"`
}

func (s *Server) generate(w http.ResponseWriter, r *http.Request, model string, stream bool, body []byte, f Fault, fail failFunc) {
	var req generateRequest
	if msg := strict(body, &req); msg != "" {
		fail(400, msg)
		return
	}
	in, msg := check(&req)
	if msg != "" {
		fail(400, msg)
		return
	}
	a := scenario.Decide(in, s.cfg.reply)
	prompt := 0
	for _, c := range req.Contents {
		for _, p := range c.Parts {
			if p.Text != nil {
				prompt += scenario.Tokens(*p.Text)
			}
			if p.FunctionResponse != nil {
				prompt += scenario.Tokens(string(p.FunctionResponse.Response))
			}
		}
		prompt += 4
	}
	id := s.core.NextID("resp_fake_")
	completion := scenario.Tokens(a.Text)
	if a.ToolCall != nil {
		completion += scenario.Tokens(a.ToolCall.Arguments)
	}
	whole := response{ModelVersion: model, ResponseID: id,
		UsageMetadata: &usageMetadata{PromptTokenCount: prompt, CandidatesTokenCount: completion, TotalTokenCount: prompt + completion}}
	var parts []answerPart
	if a.Text != "" {
		parts = append(parts, answerPart{Text: a.Text})
	}
	if a.ToolCall != nil {
		parts = append(parts, answerPart{FunctionCall: &answerFnCall{Name: a.ToolCall.Name, Args: json.RawMessage(a.ToolCall.Arguments)}})
	}
	whole.Candidates = []candidate{{Content: &answerContent{Parts: parts, Role: "model"}, FinishReason: "STOP"}}
	if !stream {
		b, _ := json.Marshal(whole)
		fakecore.WriteJSON(w, 200, b)
		return
	}

	// The stream: the text in pieces, then the function call whole with the
	// finish reason; every chunk carries the cumulative usage.
	var chunks []response
	sent := 0
	pieces := scenario.Split(a.Text, s.cfg.chunks)
	for i, piece := range pieces {
		sent += scenario.Tokens(piece)
		c := response{ModelVersion: model, ResponseID: id,
			UsageMetadata: &usageMetadata{PromptTokenCount: prompt, CandidatesTokenCount: sent, TotalTokenCount: prompt + sent},
			Candidates:    []candidate{{Content: &answerContent{Parts: []answerPart{{Text: piece}}, Role: "model"}}}}
		if i == len(pieces)-1 && a.ToolCall == nil {
			c.Candidates[0].FinishReason = "STOP"
			c.UsageMetadata = whole.UsageMetadata
		}
		chunks = append(chunks, c)
	}
	if a.ToolCall != nil {
		chunks = append(chunks, response{ModelVersion: model, ResponseID: id, UsageMetadata: whole.UsageMetadata,
			Candidates: []candidate{{Content: &answerContent{Parts: parts[len(parts)-1:], Role: "model"}, FinishReason: "STOP"}}})
	}
	sse := r.URL.Query().Get("alt") == "sse"
	var frames [][]byte
	for i, c := range chunks {
		var b []byte
		if f.ErrorAfter > 0 && i == f.ErrorAfter {
			code := f.Status
			if code == 0 {
				code = 503
			}
			msg := f.Message
			if msg == "" {
				msg = "The model is overloaded. Please try again later."
			}
			b, _ = json.Marshal(map[string]any{"error": statusObject(code, msg, f.RPCStatus)})
		} else {
			b, _ = json.Marshal(c)
		}
		if sse {
			// Google separates events with CRLF pairs.
			frames = append(frames, []byte("data: "+string(b)+"\r\n\r\n"))
		} else {
			sep := ",\r\n"
			if i == 0 {
				sep = "["
			}
			frames = append(frames, []byte(sep+string(b)))
		}
		if f.ErrorAfter > 0 && i == f.ErrorAfter {
			break
		}
	}
	if !sse {
		frames = append(frames, []byte("]"))
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	}
	s.core.Stream(w, r, frames, s.cfg.interval, f.AbortAfter)
}

// Embeddings.

type embedRequest struct {
	Model                string  `json:"model"`
	Content              content `json:"content"`
	TaskType             string  `json:"taskType"`
	Title                string  `json:"title"`
	OutputDimensionality *int    `json:"outputDimensionality"`
}

func (s *Server) vector(text string, dims *int) []float64 {
	n := s.cfg.dimensions
	if dims != nil {
		n = *dims
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(text))
	seed := h.Sum64()
	v := make([]float64, n)
	var norm float64
	for i := range v {
		seed = seed*6364136223846793005 + 1442695040888963407
		v[i] = float64(int64(seed>>11))/float64(1<<52) - 1
		norm += v[i] * v[i]
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = math.Round(v[i]/norm*1e6) / 1e6
	}
	return v
}

func checkEmbed(r *embedRequest, model, p string) string {
	if r.Model != "" && r.Model != "models/"+model {
		return "* " + p + ".model: the model must be models/" + model + " (as in the URL), got " + r.Model
	}
	if len(r.Content.Parts) == 0 {
		return "* " + p + ".content.parts: contents.parts must not be empty."
	}
	for _, pt := range r.Content.Parts {
		if pt.Text == nil {
			return "* " + p + ".content.parts: only text parts can be embedded"
		}
	}
	if r.OutputDimensionality != nil && (*r.OutputDimensionality < 1 || *r.OutputDimensionality > 3072) {
		return "* " + p + ".output_dimensionality: must be between 1 and 3072"
	}
	return ""
}

func embedText(r *embedRequest) string {
	var b strings.Builder
	for _, p := range r.Content.Parts {
		b.WriteString(*p.Text)
	}
	return b.String()
}

func (s *Server) embed(w http.ResponseWriter, model string, body []byte, fail failFunc) {
	var req embedRequest
	if msg := strict(body, &req); msg != "" {
		fail(400, msg)
		return
	}
	if msg := checkEmbed(&req, model, "EmbedContentRequest"); msg != "" {
		fail(400, msg)
		return
	}
	b, _ := json.Marshal(map[string]any{"embedding": map[string]any{"values": s.vector(embedText(&req), req.OutputDimensionality)}})
	fakecore.WriteJSON(w, 200, b)
}

func (s *Server) batchEmbed(w http.ResponseWriter, model string, body []byte, fail failFunc) {
	var req struct {
		Requests []embedRequest `json:"requests"`
	}
	if msg := strict(body, &req); msg != "" {
		fail(400, msg)
		return
	}
	if len(req.Requests) == 0 {
		fail(400, "* BatchEmbedContentsRequest.requests: requests must not be empty")
		return
	}
	out := make([]map[string]any, len(req.Requests))
	for i := range req.Requests {
		r := &req.Requests[i]
		if r.Model == "" {
			fail(400, "* BatchEmbedContentsRequest.requests["+strconv.Itoa(i)+"].model: model is required")
			return
		}
		if msg := checkEmbed(r, model, "BatchEmbedContentsRequest.requests["+strconv.Itoa(i)+"]"); msg != "" {
			fail(400, msg)
			return
		}
		out[i] = map[string]any{"values": s.vector(embedText(r), r.OutputDimensionality)}
	}
	b, _ := json.Marshal(map[string]any{"embeddings": out})
	fakecore.WriteJSON(w, 200, b)
}
