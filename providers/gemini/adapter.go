package gemini

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// ProviderType is the llm.Target.Type this adapter serves and the Provider
// recorded in the *llm.Error values it returns.
const ProviderType = "gemini"

// DefaultBaseURL is the Gemini API's base URL, without the version segment
// (the adapter appends "/v1beta/...").
const DefaultBaseURL = "https://generativelanguage.googleapis.com"

// Adapter translates between aigw's canonical (OpenAI-shaped) types and the
// Gemini API. It holds no mutable state: one value is safe for concurrent use
// by any number of requests. The zero value is ready to use.
type Adapter struct {
	// now stamps Created on answers; nil means time.Now.
	now func() time.Time
}

// New returns an Adapter whose answers are stamped with now (nil means
// time.Now). Tests pass a fixed clock to get deterministic Created fields.
func New(now func() time.Time) *Adapter {
	return &Adapter{now: now}
}

func (a *Adapter) clock() time.Time {
	if a == nil || a.now == nil {
		return time.Now()
	}
	return a.now()
}

// modelURL returns base + "/v1beta/models/" + model + ":" + method. The model
// may be given with or without the "models/" prefix; it is path-escaped so a
// configured name cannot add path segments or a query.
func modelURL(t *llm.Target, method string) (string, error) {
	if t == nil {
		return "", llm.Errorf(llm.KindInternal, "gemini: no target")
	}
	model := modelName(t.Model)
	if model == "" {
		return "", llm.Errorf(llm.KindInternal, "gemini: target has no model")
	}
	base := strings.TrimRight(t.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	return base + "/v1beta/models/" + url.PathEscape(model) + ":" + method, nil
}

// modelName strips an optional "models/" prefix.
func modelName(m string) string {
	return strings.TrimPrefix(strings.TrimSpace(m), "models/")
}

// headers returns the outbound headers: the key goes in x-goog-api-key, never
// in the URL and never as an Authorization header.
func headers(t *llm.Target) []llm.Header {
	return []llm.Header{
		{Key: "Content-Type", Value: "application/json"},
		{Key: "x-goog-api-key", Value: t.APIKey},
	}
}

// marshalAppend appends the JSON encoding of v to dst (reusing its spare
// capacity), without HTML escaping and without a trailing newline, and
// returns only the appended bytes: the bytes already in dst are left alone.
func marshalAppend(dst []byte, v any) ([]byte, error) {
	start := len(dst)
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, &llm.Error{Kind: llm.KindInternal, Provider: ProviderType, Msg: "gemini: encoding the request failed", Err: err}
	}
	b := buf.Bytes()[start:]
	return bytes.TrimSuffix(b, []byte{'\n'}), nil
}

// invalid builds a KindInvalidRequest error naming the offending parameter.
func invalid(param, msg string) *llm.Error {
	return &llm.Error{Kind: llm.KindInvalidRequest, Provider: ProviderType, Param: param, Msg: msg}
}
