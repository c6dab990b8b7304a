package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"

	"github.com/aigw/aigw/providers/llm"
)

// The writers below produce OpenAI's answers for the gateway's clients. They
// append to dst and return the extended slice, allocating only when dst
// lacks capacity. Strings are escaped with llm.AppendJSONString.

func appendChunkHead(dst []byte, id, model string, created int64) []byte {
	dst = append(dst, `{"id":`...)
	dst = llm.AppendJSONString(dst, id)
	dst = append(dst, `,"object":"chat.completion.chunk","created":`...)
	dst = strconv.AppendInt(dst, created, 10)
	dst = append(dst, `,"model":`...)
	return llm.AppendJSONString(dst, model)
}

// AppendChunk appends one chat.completion.chunk carrying d as its only
// choice:
//
//	{"id":…,"object":"chat.completion.chunk","created":…,"model":…,
//	 "choices":[{"index":…,"delta":{…},"logprobs":null,"finish_reason":…}]}
//
// The delta holds role (with content, "" if empty, as OpenAI's first chunk
// does), content, refusal and tool_calls when set; finish_reason is null
// unless d has one. id, model and created are the stream's (d's own are not
// used), and d.Usage is ignored: see AppendUsageChunk.
func AppendChunk(dst []byte, d *llm.Delta, id, model string, created int64) []byte {
	dst = appendChunkHead(dst, id, model, created)
	dst = append(dst, `,"choices":[{"index":`...)
	dst = strconv.AppendInt(dst, int64(d.Index), 10)
	dst = append(dst, `,"delta":{`...)
	sep := false
	field := func(dst []byte, name string) []byte {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		dst = append(dst, '"')
		dst = append(dst, name...)
		return append(dst, '"', ':')
	}
	if d.Role != "" {
		dst = field(dst, "role")
		dst = llm.AppendJSONString(dst, d.Role)
	}
	if d.Content != "" || d.Role != "" {
		dst = field(dst, "content")
		dst = llm.AppendJSONString(dst, d.Content)
	}
	if d.Refusal != "" {
		dst = field(dst, "refusal")
		dst = llm.AppendJSONString(dst, d.Refusal)
	}
	if len(d.ToolCalls) > 0 {
		dst = field(dst, "tool_calls")
		dst = append(dst, '[')
		for i := range d.ToolCalls {
			tc := &d.ToolCalls[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"index":`...)
			dst = strconv.AppendInt(dst, int64(tc.Index), 10)
			if tc.ID != "" {
				dst = append(dst, `,"id":`...)
				dst = llm.AppendJSONString(dst, tc.ID)
			}
			if tc.Type != "" {
				dst = append(dst, `,"type":`...)
				dst = llm.AppendJSONString(dst, tc.Type)
			}
			dst = append(dst, `,"function":{`...)
			if tc.Name != "" {
				dst = append(dst, `"name":`...)
				dst = llm.AppendJSONString(dst, tc.Name)
				dst = append(dst, ',')
			}
			dst = append(dst, `"arguments":`...)
			dst = llm.AppendJSONString(dst, tc.Arguments)
			dst = append(dst, "}}"...)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	if d.FinishReason != "" {
		dst = llm.AppendJSONString(dst, d.FinishReason)
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, "}]}"...)
}

// AppendUsageChunk appends the final usage chunk OpenAI sends when the
// client set stream_options.include_usage:
//
//	{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[],
//	 "usage":{"prompt_tokens":…,"completion_tokens":…,"total_tokens":…,
//	  "prompt_tokens_details":{"cached_tokens":…},"completion_tokens_details":{"reasoning_tokens":…}}}
func AppendUsageChunk(dst []byte, u llm.Usage, id, model string, created int64) []byte {
	dst = appendChunkHead(dst, id, model, created)
	dst = append(dst, `,"choices":[],"usage":`...)
	dst = appendUsage(dst, &u)
	return append(dst, '}')
}

// appendUsage writes OpenAI's usage object. A zero TotalTokens is computed.
func appendUsage(dst []byte, u *llm.Usage) []byte {
	total := u.TotalTokens
	if total == 0 {
		total = u.PromptTokens + u.CompletionTokens
	}
	dst = append(dst, `{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.PromptTokens), 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.CompletionTokens), 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, int64(total), 10)
	dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.CachedTokens), 10)
	dst = append(dst, `},"completion_tokens_details":{"reasoning_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.ReasoningTokens), 10)
	return append(dst, "}}"...)
}

// EncodeResponse appends r as an OpenAI chat.completion object: id, object
// (r.Object, or "chat.completion"), created, model, choices (each with
// index, message, logprobs and finish_reason; a message without a role is
// an assistant's), usage when set, and system_fingerprint when set.
func EncodeResponse(dst []byte, r *llm.Response) []byte {
	obj := r.Object
	if obj == "" {
		obj = "chat.completion"
	}
	dst = append(dst, `{"id":`...)
	dst = llm.AppendJSONString(dst, r.ID)
	dst = append(dst, `,"object":`...)
	dst = llm.AppendJSONString(dst, obj)
	dst = append(dst, `,"created":`...)
	dst = strconv.AppendInt(dst, r.Created, 10)
	dst = append(dst, `,"model":`...)
	dst = llm.AppendJSONString(dst, r.Model)
	dst = append(dst, `,"choices":[`...)
	for i := range r.Choices {
		c := &r.Choices[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"index":`...)
		dst = strconv.AppendInt(dst, int64(c.Index), 10)
		dst = append(dst, `,"message":`...)
		if c.Message.Role == "" {
			m := c.Message
			m.Role = "assistant"
			dst = m.AppendJSON(dst)
		} else {
			dst = c.Message.AppendJSON(dst)
		}
		dst = append(dst, `,"logprobs":`...)
		if len(c.Logprobs) > 0 {
			dst = append(dst, c.Logprobs...)
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, `,"finish_reason":`...)
		if c.FinishReason != "" {
			dst = llm.AppendJSONString(dst, c.FinishReason)
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if r.Usage != nil {
		dst = append(dst, `,"usage":`...)
		dst = appendUsage(dst, r.Usage)
	}
	if r.SystemFingerprint != "" {
		dst = append(dst, `,"system_fingerprint":`...)
		dst = llm.AppendJSONString(dst, r.SystemFingerprint)
	}
	return append(dst, '}')
}

// EncodeModelList appends OpenAI's model list:
//
//	{"object":"list","data":[{"id":…,"object":"model","created":…,"owned_by":…},…]}
func EncodeModelList(dst []byte, ids []string, created int64, ownedBy string) []byte {
	dst = append(dst, `{"object":"list","data":[`...)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = llm.AppendJSONString(dst, id)
		dst = append(dst, `,"object":"model","created":`...)
		dst = strconv.AppendInt(dst, created, 10)
		dst = append(dst, `,"owned_by":`...)
		dst = llm.AppendJSONString(dst, ownedBy)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// FloatsToBase64 turns an embedding given as a JSON array of numbers into
// what OpenAI answers for encoding_format "base64": a JSON string holding the
// standard base64 encoding of the values as little-endian IEEE 754 float32.
// A raw value that is already a JSON string is returned unchanged. Anything
// else is an *llm.Error of Kind KindUpstream.
func FloatsToBase64(raw json.RawMessage) (json.RawMessage, error) {
	i := skipWS(raw, 0)
	if i < len(raw) && raw[i] == '"' {
		return raw, nil
	}
	bad := func(why string) error {
		return &llm.Error{Kind: llm.KindUpstream, Msg: "The upstream returned an invalid embedding.", Err: embeddingError(why)}
	}
	if i >= len(raw) || raw[i] != '[' {
		return nil, bad("not an array")
	}
	// Commas bound the element count (a string element would fail below).
	vals := make([]byte, 0, 4*(bytes.Count(raw, []byte{','})+1))
	var err error
	end := walkArray(raw, i, func(v int) int {
		end := skipValue(raw, v)
		if end < 0 {
			return end
		}
		f, perr := strconv.ParseFloat(string(raw[v:end]), 32)
		if perr != nil {
			err = bad("element is not a number")
			return -1
		}
		vals = binary.LittleEndian.AppendUint32(vals, math.Float32bits(float32(f)))
		return end
	})
	if err != nil {
		return nil, err
	}
	if end < 0 || skipWS(raw, end) != len(raw) {
		return nil, bad("malformed array")
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(vals))+2)
	out[0] = '"'
	base64.StdEncoding.Encode(out[1:], vals)
	out[len(out)-1] = '"'
	return out, nil
}

type embeddingError string

func (e embeddingError) Error() string { return "openai: embedding: " + string(e) }
