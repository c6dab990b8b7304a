package llm

import (
	"strconv"
)

// This file checks requests against the constraints OpenAI documents for
// its chat completions and embeddings endpoints, answering with OpenAI's
// wording and error codes so that SDKs and clients see what OpenAI would
// have said. It checks the fields the canonical types model; fields kept in
// Extra are left to the upstream.

// maxStop is OpenAI's limit on stop sequences.
const maxStop = 4

// maxN is OpenAI's upper bound for n.
const maxN = 128

// maxEmbeddingInputs is OpenAI's limit on the number of inputs in one
// embeddings request.
const maxEmbeddingInputs = 2048

func invalid(param, code, msg string) *Error {
	return &Error{Kind: KindInvalidRequest, Param: param, Code: code, Msg: msg}
}

func missing(param string) *Error {
	return invalid(param, "missing_required_parameter", "Missing required parameter: '"+param+"'.")
}

func belowMinInt(param string, min, got int) *Error {
	return invalid(param, "integer_below_min_value", "Invalid '"+param+"': integer below minimum value. Expected a value >= "+
		strconv.Itoa(min)+", but got "+strconv.Itoa(got)+" instead.")
}

func aboveMaxInt(param string, max, got int) *Error {
	return invalid(param, "integer_above_max_value", "Invalid '"+param+"': integer above maximum value. Expected a value <= "+
		strconv.Itoa(max)+", but got "+strconv.Itoa(got)+" instead.")
}

func checkFloatRange(param string, v *float64, min, max float64) *Error {
	if v == nil {
		return nil
	}
	f := *v
	got := string(AppendJSONFloat(nil, f))
	if f < min {
		return invalid(param, "decimal_below_min_value", "Invalid '"+param+"': decimal below minimum value. Expected a value >= "+
			string(AppendJSONFloat(nil, min))+", but got "+got+" instead.")
	}
	if f > max {
		return invalid(param, "decimal_above_max_value", "Invalid '"+param+"': decimal above maximum value. Expected a value <= "+
			string(AppendJSONFloat(nil, max))+", but got "+got+" instead.")
	}
	return nil
}

// Validate checks r against OpenAI's documented constraints and returns the
// first violation as an *Error of Kind KindInvalidRequest, with Param naming
// the field ("messages[1].tool_call_id") and Code as OpenAI would set it:
//
//   - model is required; messages is required and non-empty;
//   - each role is system, developer, user, assistant or tool; system,
//     developer, user and tool messages need content; an assistant message
//     needs content, tool_calls or a refusal; tool messages need
//     tool_call_id; every tool call has an id and a function name;
//   - every content part has a type;
//   - n is 1..128, max_tokens and max_completion_tokens are >= 1,
//     temperature is 0..2, top_p is 0..1, stop has at most 4 sequences;
//   - stream_options is only allowed with stream;
//   - each tool is a function with a name of 1..64 characters from
//     a-z, A-Z, 0-9, '_' and '-'.
func (r *Request) Validate() error {
	if r.Model == "" {
		return missing("model")
	}
	if r.Messages == nil {
		return missing("messages")
	}
	if len(r.Messages) == 0 {
		return invalid("messages", "empty_array",
			"Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	for i := range r.Messages {
		if err := r.Messages[i].validate(i); err != nil {
			return err
		}
	}
	if r.N != nil {
		if *r.N < 1 {
			return belowMinInt("n", 1, *r.N)
		}
		if *r.N > maxN {
			return aboveMaxInt("n", maxN, *r.N)
		}
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return belowMinInt("max_tokens", 1, *r.MaxTokens)
	}
	if r.MaxCompletionTokens != nil && *r.MaxCompletionTokens < 1 {
		return belowMinInt("max_completion_tokens", 1, *r.MaxCompletionTokens)
	}
	if err := checkFloatRange("temperature", r.Temperature, 0, 2); err != nil {
		return err
	}
	if err := checkFloatRange("top_p", r.TopP, 0, 1); err != nil {
		return err
	}
	if len(r.Stop) > maxStop {
		return invalid("stop", "array_above_max_length", "Invalid 'stop': array too long. Expected an array with maximum length "+
			strconv.Itoa(maxStop)+", but got an array with length "+strconv.Itoa(len(r.Stop))+" instead.")
	}
	if r.StreamOptions != nil && !r.Stream {
		return invalid("stream_options", "invalid_value",
			"The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	for i := range r.Tools {
		if err := r.Tools[i].validate(i); err != nil {
			return err
		}
	}
	return nil
}

func (m *Message) validate(i int) *Error {
	switch m.Role {
	case "system", "developer", "user", "tool", "assistant":
	case "":
		return missing(path("messages", i, "role"))
	default:
		return invalid(path("messages", i, "role"), "invalid_value", "Invalid value: '"+m.Role+
			"'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'.")
	}
	hasContent := m.HasContent || m.Content != "" || m.Parts != nil
	if m.Role == "assistant" {
		if !hasContent && len(m.ToolCalls) == 0 && m.Refusal == "" {
			return missing(path("messages", i, "content"))
		}
	} else if !hasContent {
		return missing(path("messages", i, "content"))
	}
	if m.Role == "tool" && m.ToolCallID == "" {
		return invalid(path("messages", i, "tool_call_id"), "missing_required_parameter",
			"Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.")
	}
	for j := range m.Parts {
		if m.Parts[j].Type == "" {
			return missing(path(path("messages", i, "content"), j, "type"))
		}
	}
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		p := func(f string) string { return path(path("messages", i, "tool_calls"), j, f) }
		if tc.ID == "" {
			return missing(p("id"))
		}
		if tc.Function.Name == "" {
			return missing(p("function.name"))
		}
		if tc.Type != "" && tc.Type != "function" {
			return invalid(p("type"), "invalid_value", "Invalid value: '"+tc.Type+"'. Supported values are: 'function'.")
		}
	}
	return nil
}

func (t *Tool) validate(i int) *Error {
	if t.Type != "function" {
		return invalid(path("tools", i, "type"), "invalid_value", "Invalid value: '"+t.Type+"'. Supported values are: 'function'.")
	}
	name := t.Function.Name
	if name == "" {
		return missing(path("tools", i, "function.name"))
	}
	ok := len(name) <= 64
	for j := 0; ok && j < len(name); j++ {
		c := name[j]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return invalid(path("tools", i, "function.name"), "invalid_value", "Invalid '"+path("tools", i, "function.name")+
			"': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.")
	}
	return nil
}

// Validate checks r against OpenAI's documented constraints, returning an
// *Error of Kind KindInvalidRequest: model is required; input is required
// and is a non-empty string, a non-empty array (at most 2048 items) of
// non-empty strings, a non-empty array of integers (tokens), or a non-empty
// array of non-empty integer arrays; encoding_format is "", "float" or
// "base64"; dimensions is >= 1 when given.
func (r *EmbeddingRequest) Validate() error {
	if r.Model == "" {
		return missing("model")
	}
	if len(r.Input) == 0 {
		return missing("input")
	}
	if err := validateEmbeddingInput(r.Input); err != nil {
		return err
	}
	switch r.EncodingFormat {
	case "", "float", "base64":
	default:
		return invalid("encoding_format", "invalid_value", "Invalid value: '"+r.EncodingFormat+
			"'. Supported values are: 'float' and 'base64'.")
	}
	if r.Dimensions != nil && *r.Dimensions < 1 {
		return belowMinInt("dimensions", 1, *r.Dimensions)
	}
	return nil
}

// InputCount returns the number of inputs in r.Input: 1 for a string or a
// single token array, the array's length otherwise, 0 when the input is
// missing or malformed.
func (r *EmbeddingRequest) InputCount() int {
	d := decoder{data: r.Input}
	switch d.peek() {
	case '"':
		return 1
	case '[':
	default:
		return 0
	}
	if d.open() != nil {
		return 0
	}
	n := 0
	for first := true; ; first = false {
		ok, err := d.nextElem(first)
		if err != nil {
			return 0
		}
		if !ok {
			break
		}
		if first && d.peek() != '"' && d.peek() != '[' {
			return 1 // a single token array
		}
		if d.skipValue() != nil {
			return 0
		}
		n++
	}
	return n
}

func badInput() *Error {
	return invalid("input", "invalid_value", "Invalid 'input': expected a non-empty string, an array of non-empty strings, "+
		"an array of integers, or an array of non-empty integer arrays.")
}

func validateEmbeddingInput(raw []byte) *Error {
	d := decoder{data: raw}
	switch d.peek() {
	case '"':
		b, err := d.readStringBytes()
		if err != nil || len(b) == 0 {
			return badInput()
		}
		return nil
	case '[':
	default:
		return badInput()
	}
	if d.open() != nil {
		return badInput()
	}
	// kind is the element type fixed by the first element: '"' strings,
	// '1' integers, '[' integer arrays.
	var kind byte
	n := 0
	for first := true; ; first = false {
		ok, err := d.nextElem(first)
		if err != nil {
			return badInput()
		}
		if !ok {
			break
		}
		c := d.peek()
		var k byte
		switch {
		case c == '"':
			k = '"'
		case c == '[':
			k = '['
		case c == '-' || c >= '0' && c <= '9':
			k = '1'
		default:
			return badInput()
		}
		if first {
			kind = k
		} else if k != kind {
			return badInput()
		}
		switch k {
		case '"':
			b, err := d.readStringBytes()
			if err != nil || len(b) == 0 {
				return badInput()
			}
		case '1':
			if _, err := d.readInt(field("input")); err != nil {
				return badInput()
			}
		case '[':
			if !d.tokenArray() {
				return badInput()
			}
		}
		n++
	}
	if n == 0 {
		return badInput()
	}
	if kind != '1' && n > maxEmbeddingInputs {
		return invalid("input", "array_above_max_length", "Invalid 'input': array too long. Expected an array with maximum length "+
			strconv.Itoa(maxEmbeddingInputs)+", but got an array with length "+strconv.Itoa(n)+" instead.")
	}
	return nil
}

// tokenArray reads a non-empty array of integers.
func (d *decoder) tokenArray() bool {
	if d.open() != nil {
		return false
	}
	n := 0
	for first := true; ; first = false {
		ok, err := d.nextElem(first)
		if err != nil {
			return false
		}
		if !ok {
			return n > 0
		}
		if c := d.peek(); c != '-' && (c < '0' || c > '9') {
			return false
		}
		if _, err := d.readInt(field("input")); err != nil {
			return false
		}
		n++
	}
}
