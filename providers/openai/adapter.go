// Package openai is the adapter for OpenAI's chat completions and embeddings
// API and for every server that speaks it (vLLM, Ollama, LiteLLM, ...).
// AzureAdapter is the same adapter addressing Azure OpenAI deployments
// (deployment URLs, api-version, the api-key header).
//
// Besides the Adapter, it holds the OpenAI wire-format helpers the proxy
// uses towards its clients, which speak the same format: Observe and
// StripNullUsage inspect and clean streamed chunks without decoding them
// (the pass-through fast path), AppendChunk, AppendUsageChunk,
// EncodeResponse and EncodeModelList write OpenAI answers, FloatsToBase64
// converts embeddings.
//
// The package does no I/O and keeps no state; everything in it is safe for
// concurrent use, except a StreamDecoder, which belongs to one stream.
package openai

import (
	"encoding/json"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// Adapter translates between aigw's canonical types and OpenAI's wire
// format. The zero value is ready to use.
type Adapter struct{}

// EncodeChat builds the POST to t.BaseURL + "/chat/completions". The body is
// appended to dst (which serves as scratch space: Body holds only the new
// bytes, those already in dst are left alone); it is in, with model replaced by t.Model (kept when t.Model is
// empty). For a stream, stream_options.include_usage is forced on so that
// the gateway always learns the usage (other stream_options members are
// kept); for a non-stream request stream_options is dropped. in is not
// modified. Headers: Content-Type, Accept (text/event-stream for a stream,
// application/json otherwise) and, when t.APIKey is set, Authorization.
func (Adapter) EncodeChat(dst []byte, in *llm.Request, t *llm.Target) (llm.Outbound, error) {
	if t == nil || t.BaseURL == "" {
		return llm.Outbound{}, &llm.Error{Kind: llm.KindInternal, Msg: "internal error", Err: errNoTarget}
	}
	r := *in
	if t.Model != "" {
		r.Model = t.Model
	}
	if r.Stream {
		r.StreamOptions = &llm.StreamOptions{IncludeUsage: true}
	} else {
		r.StreamOptions = nil
	}
	return llm.Outbound{
		Method: "POST",
		URL:    t.BaseURL + "/chat/completions",
		Header: headers(t, r.Stream),
		Body:   r.AppendJSON(dst)[len(dst):],
		Stream: r.Stream,
	}, nil
}

// EncodeEmbeddings builds the POST to t.BaseURL + "/embeddings": in with
// model replaced by t.Model, Extra fields kept. Headers as for EncodeChat.
func (Adapter) EncodeEmbeddings(dst []byte, in *llm.EmbeddingRequest, t *llm.Target) (llm.Outbound, error) {
	if t == nil || t.BaseURL == "" {
		return llm.Outbound{}, &llm.Error{Kind: llm.KindInternal, Msg: "internal error", Err: errNoTarget}
	}
	r := *in
	if t.Model != "" {
		r.Model = t.Model
	}
	return llm.Outbound{
		Method: "POST",
		URL:    t.BaseURL + "/embeddings",
		Header: headers(t, false),
		Body:   r.AppendJSON(dst)[len(dst):],
	}, nil
}

type targetError string

func (e targetError) Error() string { return string(e) }

const errNoTarget = targetError("openai: target without base URL")

func headers(t *llm.Target, stream bool) []llm.Header {
	accept := "application/json"
	if stream {
		accept = "text/event-stream"
	}
	h := make([]llm.Header, 2, 3)
	h[0] = llm.Header{Key: "Content-Type", Value: "application/json"}
	h[1] = llm.Header{Key: "Accept", Value: accept}
	if t.APIKey != "" {
		h = append(h, llm.Header{Key: "Authorization", Value: "Bearer " + t.APIKey})
	}
	return h
}

// wireUsage is OpenAI's usage object.
type wireUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// usage converts OpenAI's usage: prompt_tokens_details.cached_tokens is
// CachedTokens, completion_tokens_details.reasoning_tokens ReasoningTokens
// (OpenAI counts both inside the totals, as llm.Usage does). A missing
// total_tokens is computed.
func (w *wireUsage) usage() llm.Usage {
	u := llm.Usage{PromptTokens: w.PromptTokens, CompletionTokens: w.CompletionTokens, TotalTokens: w.TotalTokens}
	if w.PromptTokensDetails != nil {
		u.CachedTokens = w.PromptTokensDetails.CachedTokens
	}
	if w.CompletionTokensDetails != nil {
		u.ReasoningTokens = w.CompletionTokensDetails.ReasoningTokens
	}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u
}

type wireResponse struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	Choices           []wireChoice    `json:"choices"`
	Usage             *wireUsage      `json:"usage"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Error             json.RawMessage `json:"error"`
}

type wireChoice struct {
	Index        int             `json:"index"`
	Message      llm.Message     `json:"message"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

// DecodeChat parses a 2xx chat.completion body. A body that is not a chat
// completion yields an *llm.Error of Kind KindUpstream; a body carrying an
// OpenAI error object (some compatible servers answer errors with 200) is
// classified as ClassifyError would.
func (Adapter) DecodeChat(body []byte) (*llm.Response, error) {
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, invalidAnswer(err)
	}
	if len(w.Error) > 0 && string(w.Error) != "null" && w.Choices == nil {
		return nil, classify(200, nil, body)
	}
	r := &llm.Response{
		ID:                w.ID,
		Object:            w.Object,
		Created:           w.Created,
		Model:             w.Model,
		Choices:           make([]llm.Choice, len(w.Choices)),
		SystemFingerprint: w.SystemFingerprint,
	}
	for i := range w.Choices {
		c := &w.Choices[i]
		r.Choices[i] = llm.Choice{Index: c.Index, Message: c.Message}
		if c.FinishReason != nil {
			r.Choices[i].FinishReason = *c.FinishReason
		}
		if len(c.Logprobs) > 0 && string(c.Logprobs) != "null" {
			r.Choices[i].Logprobs = c.Logprobs
		}
	}
	if w.Usage != nil {
		u := w.Usage.usage()
		r.Usage = &u
	}
	return r, nil
}

func invalidAnswer(err error) *llm.Error {
	return &llm.Error{Kind: llm.KindUpstream, Msg: "The upstream returned an invalid response.", Err: err}
}

type wireEmbeddings struct {
	Object string          `json:"object"`
	Data   []llm.Embedding `json:"data"`
	Model  string          `json:"model"`
	Usage  *wireUsage      `json:"usage"`
	Error  json.RawMessage `json:"error"`
}

// DecodeEmbeddings parses a 2xx embeddings body. Each embedding is kept as
// the raw JSON the upstream sent (a float array, or a base64 string when
// encoding_format was base64). Errors are as for DecodeChat.
func (Adapter) DecodeEmbeddings(body []byte) (*llm.EmbeddingResponse, error) {
	var w wireEmbeddings
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, invalidAnswer(err)
	}
	if len(w.Error) > 0 && string(w.Error) != "null" && w.Data == nil {
		return nil, classify(200, nil, body)
	}
	r := &llm.EmbeddingResponse{Object: w.Object, Data: w.Data, Model: w.Model}
	if r.Data == nil {
		r.Data = []llm.Embedding{}
	}
	if w.Usage != nil {
		u := w.Usage.usage()
		r.Usage = &u
	}
	return r, nil
}

// NewStreamDecoder returns a decoder for one stream answering in.
//
// It returns the concrete type (this package may not import proxy, whose
// Adapter interface names its own StreamDecoder type); the proxy adapts it
// with its generic wrapper.
func (Adapter) NewStreamDecoder(in *llm.Request) *StreamDecoder {
	return &StreamDecoder{}
}

// ClassifyError turns a non-2xx answer into an *llm.Error (never nil):
//
//   - the body is parsed as OpenAI's {"error":{"message","type","param",
//     "code"}} (and the looser shapes compatible servers send); Msg, Param and
//     Code are copied from it, Msg being what OpenAI would have shown the
//     client. A body that is not JSON is never shown: Msg is then a generic
//     sentence and the body's start goes to Err, for logs. Provider is left
//     for the caller to fill.
//   - status decides the Kind: 400 invalid request (context length when the
//     code is context_length_exceeded or, for servers that send no code, the
//     message speaks of the maximum context length), 401 auth, 403
//     permission, 404 not found, 408 timeout (retryable), 413 too large, 429
//     rate limit (retryable) unless the code or type is insufficient_quota
//     (quota exceeded, not retryable), 500 and 502 upstream, 503
//     unavailable, 504 timeout, 529 overloaded, other 5xx upstream (all
//     retryable), other 4xx invalid request (not retryable), anything else
//     upstream (retryable). Status 200 (an error in a 2xx body, or in a
//     stream) is classified by type and code instead.
//   - an X-Should-Retry header of "true" or "false" (OpenAI's SDKs obey it)
//     overrides Retryable.
//   - RetryAfter comes from Retry-After-Ms (milliseconds), else Retry-After
//     (seconds or an HTTP date), capped at 24h.
//
// header may be nil; it is asked for keys in canonical MIME form.
func (Adapter) ClassifyError(status int, header func(key string) string, body []byte) error {
	return classify(status, header, body)
}

// interface checks against the StreamDecoder shape the proxy expects.
var _ interface {
	Decode(ev *sse.Event, dst []llm.Delta) ([]llm.Delta, error)
	Usage() (llm.Usage, bool)
	Done() bool
} = (*StreamDecoder)(nil)
