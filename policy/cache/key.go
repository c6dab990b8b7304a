package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"math"
	"slices"

	"github.com/aigw/aigw/providers/llm"
)

// Key identifies one cache entry: the sha256 of an org, a model alias and a
// canonical request (see KeyOf). The zero Key is never produced by KeyOf.
type Key [32]byte

// String returns k as 64 lowercase hex digits.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// keyVersion starts every hashed stream; change it whenever the canonical
// form changes, so that entries written under the old form are never read
// under the new one (the L2 outlives deployments).
const keyVersion = "aigw-cache-key/v1"

// Field tags of the canonical stream. Each value that follows a tag is
// self-delimiting (length-prefixed strings, fixed-size numbers, counts
// before lists, an end tag after each structure), so two different requests
// cannot produce the same stream.
const (
	tagOrg byte = iota + 1
	tagModel
	tagMessages
	tagMessage
	tagRole
	tagContent
	tagParts
	tagPart
	tagPartRaw
	tagPartType
	tagPartText
	tagImageURL
	tagImageDetail
	tagName
	tagToolCalls
	tagToolCall
	tagToolCallID
	tagToolCallType
	tagFuncName
	tagFuncArgs
	tagMsgToolCallID
	tagRefusal
	tagEnd
	tagMaxTokens
	tagMaxCompletionTokens
	tagTemperature
	tagTopP
	tagN
	tagStop
	tagSeed
	tagTools
	tagTool
	tagToolType
	tagToolDesc
	tagToolParams
	tagToolStrict
	tagToolChoice
	tagResponseFormat
	tagExtra
	tagRawJSON // a raw value that did not parse as JSON, hashed verbatim
)

// KeyOf returns the cache key of r for org, when asked for as model.
//
// org must be the authenticated principal's organisation (never a value
// the client chose); it is length-prefixed, as is every string, so ("a",
// "bc") and ("ab", "c") differ. model is the configured alias the request
// is for (policy.Exchange.Model); r.Model is used only when model is "".
//
// The key covers everything that can change the answer, in canonical form:
//
//   - messages, in order: role, content (a string and an array of parts are
//     different contents; no content and null are the same, "" is a
//     content), parts (text, image URL and detail, other part
//     types as canonical JSON), name, tool calls (id, type, function name,
//     the arguments string verbatim), tool_call_id, refusal;
//   - tools in order (type, name, description, parameters as canonical
//     JSON, strict), tool_choice and response_format as canonical JSON;
//   - max_tokens and max_completion_tokens (kept apart), temperature, top_p,
//     n (n=1 is the same as no n), stop (no stop and [] are the same), seed;
//   - every other top-level field (presence_penalty, frequency_penalty,
//     logit_bias, logprobs, top_logprobs, reasoning_effort, verbosity,
//     modalities, audio, prediction, parallel_tool_calls, web_search_options,
//     functions, and any field aigw does not know) as canonical JSON, so an
//     unknown parameter can only split entries, never merge them.
//
// Absent and explicit defaults differ (no temperature is not temperature
// 1): providers disagree on defaults.
//
// Excluded, because they do not change the answer: stream, stream_options,
// user, safety_identifier, metadata, store, service_tier, prompt_cache_key
// and prompt_cache_retention; a top-level field whose value is null is
// absent. Excluding user means that users of one org share entries; a
// policy that must separate them folds the user into org.
//
// Canonical JSON ignores member order and insignificant white space,
// decodes string escapes and writes numbers in one form (1, 1.0 and 1e0
// are the same); array order is kept. A raw value that is not valid JSON is
// hashed verbatim.
//
// KeyOf only reads r; it is safe to call concurrently on the same request.
func KeyOf(org string, model string, r *llm.Request) Key {
	if r == nil {
		r = &llm.Request{}
	}
	if model == "" {
		model = r.Model
	}
	w := new(keyWriter) // one allocation for the buffers
	w.h = sha256.New()
	w.buf = w.arr[:0]
	w.js.init()
	w.raw(keyVersion)
	w.str(tagOrg, org)
	w.str(tagModel, model)

	w.count(tagMessages, len(r.Messages))
	for i := range r.Messages {
		w.message(&r.Messages[i])
	}
	w.intPtr(tagMaxTokens, r.MaxTokens)
	w.intPtr(tagMaxCompletionTokens, r.MaxCompletionTokens)
	w.floatPtr(tagTemperature, r.Temperature)
	w.floatPtr(tagTopP, r.TopP)
	if r.N != nil && *r.N != 1 {
		w.intPtr(tagN, r.N)
	}
	if len(r.Stop) > 0 {
		w.count(tagStop, len(r.Stop))
		for _, s := range r.Stop {
			w.str(tagStop, s)
		}
	}
	if r.Seed != nil {
		w.tag(tagSeed)
		w.u64(uint64(*r.Seed))
	}
	if r.Tools != nil {
		w.count(tagTools, len(r.Tools))
		for i := range r.Tools {
			w.tool(&r.Tools[i])
		}
	}
	w.json(tagToolChoice, r.ToolChoice)
	w.json(tagResponseFormat, r.ResponseFormat)
	w.extra(r.Extra)

	w.flush()
	var k Key
	w.h.Sum(k[:0])
	return k
}

// keyWriter feeds the canonical stream to the hash through a buffer.
type keyWriter struct {
	h   hash.Hash
	buf []byte
	arr [1024]byte
	js  canonJSON
}

func (w *keyWriter) flush() {
	if len(w.buf) > 0 {
		w.h.Write(w.buf)
		w.buf = w.buf[:0]
	}
}

// room makes n bytes of room in the buffer when that is possible.
func (w *keyWriter) room(n int) {
	if len(w.buf)+n > cap(w.buf) {
		w.flush()
	}
}

func (w *keyWriter) tag(t byte) {
	w.room(1)
	w.buf = append(w.buf, t)
}

func (w *keyWriter) u64(v uint64) {
	w.room(8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, v)
}

func (w *keyWriter) count(t byte, n int) {
	w.tag(t)
	w.u64(uint64(n))
}

// raw writes s length-prefixed.
func (w *keyWriter) raw(s string) {
	w.u64(uint64(len(s)))
	for len(s) > 0 {
		if len(w.buf) == cap(w.buf) {
			w.flush()
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], s)
		w.buf = w.buf[:len(w.buf)+n]
		s = s[n:]
	}
}

func (w *keyWriter) rawBytes(b []byte) {
	if len(b) > cap(w.buf) {
		w.u64(uint64(len(b)))
		w.flush()
		w.h.Write(b)
		return
	}
	w.u64(uint64(len(b)))
	w.room(len(b))
	w.buf = append(w.buf, b...)
}

func (w *keyWriter) str(t byte, s string) {
	w.tag(t)
	w.raw(s)
}

// optStr writes s only when it is not empty.
func (w *keyWriter) optStr(t byte, s string) {
	if s != "" {
		w.str(t, s)
	}
}

func (w *keyWriter) intPtr(t byte, v *int) {
	if v != nil {
		w.tag(t)
		w.u64(uint64(int64(*v)))
	}
}

func (w *keyWriter) floatPtr(t byte, v *float64) {
	if v == nil {
		return
	}
	f := *v
	if f == 0 {
		f = 0 // -0 is 0
	}
	bits := math.Float64bits(f)
	if math.IsNaN(f) {
		bits = 0x7ff8000000000001
	}
	w.tag(t)
	w.u64(bits)
}

// json writes raw JSON in canonical form; nothing for an absent or null
// value.
func (w *keyWriter) json(t byte, raw []byte) {
	if isAbsentJSON(raw) {
		return
	}
	w.tag(t)
	canon, ok := w.js.canonical(raw)
	if !ok {
		w.tag(tagRawJSON)
		w.rawBytes(raw)
		return
	}
	w.rawBytes(canon)
}

func (w *keyWriter) message(m *llm.Message) {
	w.tag(tagMessage)
	w.str(tagRole, m.Role)
	switch {
	case m.Parts != nil:
		w.count(tagParts, len(m.Parts))
		for i := range m.Parts {
			w.part(&m.Parts[i])
		}
	case m.HasContent || m.Content != "":
		w.str(tagContent, m.Content)
	}
	w.optStr(tagName, m.Name)
	if m.ToolCalls != nil {
		w.count(tagToolCalls, len(m.ToolCalls))
		for i := range m.ToolCalls {
			tc := &m.ToolCalls[i]
			typ := tc.Type
			if typ == "" {
				typ = "function" // as llm writes it upstream
			}
			w.tag(tagToolCall)
			w.str(tagToolCallID, tc.ID)
			w.str(tagToolCallType, typ)
			w.str(tagFuncName, tc.Function.Name)
			w.str(tagFuncArgs, tc.Function.Arguments)
			w.tag(tagEnd)
		}
	}
	w.optStr(tagMsgToolCallID, m.ToolCallID)
	w.optStr(tagRefusal, m.Refusal)
	w.tag(tagEnd)
}

func (w *keyWriter) part(p *llm.Part) {
	w.tag(tagPart)
	if len(p.Raw) > 0 {
		w.json(tagPartRaw, p.Raw)
		w.tag(tagEnd)
		return
	}
	w.str(tagPartType, p.Type)
	if p.Type == "text" || p.Text != "" {
		w.str(tagPartText, p.Text)
	}
	if p.ImageURL != nil {
		w.str(tagImageURL, p.ImageURL.URL)
		w.optStr(tagImageDetail, p.ImageURL.Detail)
	}
	w.tag(tagEnd)
}

func (w *keyWriter) tool(t *llm.Tool) {
	typ := t.Type
	if typ == "" {
		typ = "function"
	}
	w.tag(tagTool)
	w.str(tagToolType, typ)
	w.str(tagFuncName, t.Function.Name)
	w.optStr(tagToolDesc, t.Function.Description)
	w.json(tagToolParams, t.Function.Parameters)
	if t.Function.Strict != nil {
		w.tag(tagToolStrict)
		if *t.Function.Strict {
			w.tag(1)
		} else {
			w.tag(0)
		}
	}
	w.tag(tagEnd)
}

// extra writes the answer-changing members of extra in key order.
func (w *keyWriter) extra(extra map[string]json.RawMessage) {
	if len(extra) == 0 {
		return
	}
	var arr [16]string
	keys := arr[:0]
	for k, v := range extra {
		if !isAbsentJSON(v) && !excludedField(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.str(tagExtra, k)
		w.json(tagExtra, extra[k])
	}
}

// excludedField reports whether a top-level field stays out of the key:
// fields llm.Request models (llm.Request.AppendJSON ignores them in Extra,
// except stream_options, which does not change the answer either) and the
// answer-neutral fields KeyOf lists.
func excludedField(k string) bool {
	switch k {
	case "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
		"temperature", "top_p", "n", "stop", "user", "seed", "tools", "tool_choice", "response_format":
		return true
	case "safety_identifier", "metadata", "store", "service_tier", "prompt_cache_key", "prompt_cache_retention":
		return true
	}
	return false
}

// isAbsentJSON reports whether raw is empty, white space or null.
func isAbsentJSON(raw []byte) bool {
	i := skipWS(raw, 0)
	if i == len(raw) {
		return true
	}
	if len(raw)-i >= 4 && string(raw[i:i+4]) == "null" {
		return skipWS(raw, i+4) == len(raw)
	}
	return false
}
