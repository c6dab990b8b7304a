package llm

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// This file is the codec between OpenAI's chat completions and embeddings
// bodies and the canonical request types. It sits on the hot path of every
// request, so it reads and writes JSON by hand: decoding allocates only for
// the strings and raw values it keeps, encoding appends to a caller's buffer.
//
// Decoding follows OpenAI's wire format and not encoding/json's habits: keys
// match case-sensitively ("Model" is an unknown field, kept in Extra), and
// null reads as "absent" for every modelled field.

// parseErrorMsg is what OpenAI answers for a body that is not JSON.
const parseErrorMsg = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using " +
	"your HTTP library correctly. The API expects a JSON payload, but what was sent was not valid JSON.)"

// decodeError turns the decoder's error into the *Error the package returns.
func decodeError(err error) error {
	if se, ok := err.(*syntaxError); ok {
		return &Error{Kind: KindInvalidRequest, Msg: parseErrorMsg, Err: se}
	}
	return err
}

// finish checks that nothing but white space follows the document. A
// malformed document is reported as such even when a type error was found
// before the syntax error (as encoding/json does): the error path validates
// the whole input once more.
func (d *decoder) finish(err error) error {
	if err == nil && !d.atEnd() {
		err = d.errUnexpected("after top-level value")
	}
	if _, ok := err.(*Error); ok {
		all := decoder{data: d.data}
		if serr := all.skipValue(); serr != nil {
			err = serr
		} else if !all.atEnd() {
			err = all.errUnexpected("after top-level value")
		}
	}
	return decodeError(err)
}

// UnmarshalJSON decodes an OpenAI chat completions request body, replacing
// all of *r.
//
// Every top-level field the struct does not model is kept verbatim (copied,
// never aliasing data) in Extra. stream_options is modelled by StreamOptions;
// when the client's object has members besides include_usage, the whole
// object is also kept in Extra["stream_options"] so that AppendJSON can
// forward them. Unknown members of messages, parts and tools are dropped.
// Content parts other than text and image_url keep the client's JSON in
// Part.Raw. Tools other than type "function" are refused, since they cannot
// be represented.
//
// Errors are *Error with Kind KindInvalidRequest: malformed JSON gets
// OpenAI's "We could not parse the JSON body" message (the detail is in
// Err); a value of the wrong type names the field in Msg and Param (for
// example "messages[2].content") with Code "invalid_type". Call this method
// directly rather than through json.Unmarshal, which would scan the body
// twice and report syntax errors as *json.SyntaxError.
func (r *Request) UnmarshalJSON(data []byte) error {
	*r = Request{}
	d := decoder{data: data}
	return d.finish(r.decode(&d))
}

func (r *Request) decode(d *decoder) error {
	c, err := d.valueStart()
	if err != nil {
		return err
	}
	if c != '{' {
		return d.typeError(field(""), "a JSON object")
	}
	if err := d.open(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil || !ok {
			return err
		}
		switch string(key) {
		case "model":
			r.Model, err = d.readString(field("model"))
		case "messages":
			r.Messages, err = decodeMessages(d)
		case "stream":
			r.Stream, err = d.readBool(field("stream"))
		case "stream_options":
			err = r.decodeStreamOptions(d)
		case "max_tokens":
			r.MaxTokens, err = d.readIntPtr(field("max_tokens"))
		case "max_completion_tokens":
			r.MaxCompletionTokens, err = d.readIntPtr(field("max_completion_tokens"))
		case "temperature":
			r.Temperature, err = d.readFloatPtr(field("temperature"))
		case "top_p":
			r.TopP, err = d.readFloatPtr(field("top_p"))
		case "n":
			r.N, err = d.readIntPtr(field("n"))
		case "stop":
			r.Stop, err = decodeStop(d)
		case "user":
			r.User, err = d.readString(field("user"))
		case "seed":
			r.Seed, err = d.readInt64Ptr(field("seed"))
		case "tools":
			r.Tools, err = decodeTools(d)
		case "tool_choice":
			r.ToolChoice, err = d.readRawNonNull()
		case "response_format":
			r.ResponseFormat, err = d.readRawNonNull()
		default:
			var raw []byte
			if raw, err = d.readRaw(); err == nil {
				if r.Extra == nil {
					r.Extra = make(map[string]json.RawMessage, 4)
				}
				r.Extra[string(key)] = raw
			}
		}
		if err != nil {
			return err
		}
	}
}

func (r *Request) decodeStreamOptions(d *decoder) error {
	r.StreamOptions = nil
	delete(r.Extra, "stream_options")
	c, err := d.valueStart()
	switch {
	case err != nil:
		return err
	case c == 'n':
		return d.literal("null")
	case c != '{':
		return d.typeError(field("stream_options"), "an object")
	}
	start := d.off
	if err := d.open(); err != nil {
		return err
	}
	so := &StreamOptions{}
	other := false
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if string(key) == "include_usage" {
			if so.IncludeUsage, err = d.readBool(field("stream_options.include_usage")); err != nil {
				return err
			}
			continue
		}
		other = true
		if err := d.skipValue(); err != nil {
			return err
		}
	}
	r.StreamOptions = so
	if other {
		if r.Extra == nil {
			r.Extra = make(map[string]json.RawMessage, 2)
		}
		r.Extra["stream_options"] = append(json.RawMessage(nil), d.data[start:d.off]...)
	}
	return nil
}

func decodeStop(d *decoder) (Stop, error) {
	c, err := d.valueStart()
	switch {
	case err != nil:
		return nil, err
	case c == 'n':
		return nil, d.literal("null")
	case c == '"':
		s, err := d.readString(field("stop"))
		if err != nil {
			return nil, err
		}
		return Stop{s}, nil
	case c != '[':
		return nil, d.typeError(field("stop"), "a string or an array of strings")
	}
	if err := d.open(); err != nil {
		return nil, err
	}
	stop := Stop{}
	for first := true; ; first = false {
		ok, err := d.nextElem(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			return stop, nil
		}
		if d.peek() != '"' {
			return nil, d.typeError(at("stop", len(stop), ""), "a string")
		}
		s, err := d.readString(field("stop"))
		if err != nil {
			return nil, err
		}
		stop = append(stop, s)
	}
}

// path builds a parameter name such as "messages[2].content". It runs only
// on error paths.
func path(prefix string, i int, field string) string {
	p := prefix
	if i >= 0 {
		p += "[" + strconv.Itoa(i) + "]"
	}
	if field != "" {
		if p != "" {
			p += "."
		}
		p += field
	}
	return p
}

func decodeMessages(d *decoder) ([]Message, error) {
	c, err := d.valueStart()
	switch {
	case err != nil:
		return nil, err
	case c == 'n':
		return nil, d.literal("null")
	case c != '[':
		return nil, d.typeError(field("messages"), "an array")
	}
	if err := d.open(); err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, 4)
	for first := true; ; first = false {
		ok, err := d.nextElem(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			return msgs, nil
		}
		msgs = append(msgs, Message{})
		if err := msgs[len(msgs)-1].decode(d, "messages", len(msgs)-1); err != nil {
			return nil, err
		}
	}
}

// UnmarshalJSON decodes one OpenAI chat message (as found in a request's
// messages or a response's choices), replacing all of *m. Errors are as for
// Request.UnmarshalJSON, with Param relative to the message.
func (m *Message) UnmarshalJSON(data []byte) error {
	*m = Message{}
	d := decoder{data: data}
	return d.finish(m.decode(&d, "", -1))
}

// decode reads a message; prefix and i name it in errors.
func (m *Message) decode(d *decoder, prefix string, i int) error {
	c, err := d.valueStart()
	if err != nil {
		return err
	}
	if c != '{' {
		return d.typeError(at(prefix, i, ""), "an object")
	}
	if err := d.open(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil || !ok {
			return err
		}
		switch string(key) {
		case "role":
			m.Role, err = d.readString(at(prefix, i, "role"))
		case "content":
			err = m.decodeContent(d, prefix, i)
		case "name":
			m.Name, err = d.readString(at(prefix, i, "name"))
		case "tool_call_id":
			m.ToolCallID, err = d.readString(at(prefix, i, "tool_call_id"))
		case "refusal":
			m.Refusal, err = d.readString(at(prefix, i, "refusal"))
		case "tool_calls":
			m.ToolCalls, err = decodeToolCalls(d, prefix, i)
		default:
			err = d.skipValue()
		}
		if err != nil {
			return err
		}
	}
}

func (m *Message) decodeContent(d *decoder, prefix string, i int) error {
	m.Content, m.Parts, m.HasContent = "", nil, false
	c, err := d.valueStart()
	switch {
	case err != nil:
		return err
	case c == 'n':
		return d.literal("null")
	case c == '"':
		b, err := d.readStringBytes()
		if err != nil {
			return err
		}
		m.Content, m.HasContent = string(b), true
		return nil
	case c != '[':
		return d.typeError(at(prefix, i, "content"), "a string or an array of content parts")
	}
	if err := d.open(); err != nil {
		return err
	}
	m.Parts, m.HasContent = make([]Part, 0, 2), true
	for first := true; ; first = false {
		ok, err := d.nextElem(first)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		m.Parts = append(m.Parts, Part{})
		j := len(m.Parts) - 1
		if err := m.Parts[j].decode(d, prefix, i, "content", j); err != nil {
			return err
		}
	}
}

// UnmarshalJSON decodes one content part, replacing all of *p. See
// Request.UnmarshalJSON for what is kept.
func (p *Part) UnmarshalJSON(data []byte) error {
	*p = Part{}
	d := decoder{data: data}
	return d.finish(p.decode(&d, "", -1, "", -1))
}

// decode reads a part; a[i].b[j] names it in errors.
func (p *Part) decode(d *decoder, a string, i int, b string, j int) error {
	c, err := d.valueStart()
	if err != nil {
		return err
	}
	if c != '{' {
		return d.typeError(at2(a, i, b, j, ""), "an object")
	}
	start := d.off
	// First pass: find the type, which decides how the members read.
	typ, err := d.partType()
	if err != nil {
		return err
	}
	p.Type = typ
	if typ != "text" && typ != "image_url" {
		p.Raw = append(json.RawMessage(nil), d.data[start:d.off]...)
		return nil
	}
	d.off = start
	if err := d.open(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil || !ok {
			return err
		}
		switch {
		case string(key) == "text" && typ == "text":
			if d.peek() != '"' {
				return d.typeError(at2(a, i, b, j, "text"), "a string")
			}
			p.Text, err = d.readString(at2(a, i, b, j, "text"))
		case string(key) == "image_url" && typ == "image_url":
			p.ImageURL, err = decodeImageURL(d, at2(a, i, b, j, "image_url"))
		default:
			err = d.skipValue()
		}
		if err != nil {
			return err
		}
	}
}

// partType skips the object at the cursor and returns its "type" member.
func (d *decoder) partType() (string, error) {
	if err := d.open(); err != nil {
		return "", err
	}
	typ := ""
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil {
			return "", err
		}
		if !ok {
			return typ, nil
		}
		if string(key) == "type" && d.peek() == '"' {
			b, err := d.readStringBytes()
			if err != nil {
				return "", err
			}
			typ = intern(b)
			continue
		}
		if err := d.skipValue(); err != nil {
			return "", err
		}
	}
}

func decodeImageURL(d *decoder, p param) (*ImageURL, error) {
	c, err := d.valueStart()
	switch {
	case err != nil:
		return nil, err
	case c == 'n':
		return nil, d.literal("null")
	case c != '{':
		return nil, d.typeError(p, "an object")
	}
	if err := d.open(); err != nil {
		return nil, err
	}
	u := &ImageURL{}
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			return u, nil
		}
		switch string(key) {
		case "url":
			u.URL, err = d.readString(p.with("url"))
		case "detail":
			u.Detail, err = d.readString(p.with("detail"))
		default:
			err = d.skipValue()
		}
		if err != nil {
			return nil, err
		}
	}
}

func decodeToolCalls(d *decoder, prefix string, i int) ([]ToolCall, error) {
	c, err := d.valueStart()
	switch {
	case err != nil:
		return nil, err
	case c == 'n':
		return nil, d.literal("null")
	case c != '[':
		return nil, d.typeError(at(prefix, i, "tool_calls"), "an array")
	}
	if err := d.open(); err != nil {
		return nil, err
	}
	var calls []ToolCall
	for first := true; ; first = false {
		ok, err := d.nextElem(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			if calls == nil {
				calls = []ToolCall{}
			}
			return calls, nil
		}
		j := len(calls)
		p := at2(prefix, i, "tool_calls", j, "")
		if d.peek() != '{' {
			return nil, d.typeError(p, "an object")
		}
		if err := d.open(); err != nil {
			return nil, err
		}
		var tc ToolCall
		for first := true; ; first = false {
			key, ok, err := d.nextMember(first)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			switch string(key) {
			case "id":
				tc.ID, err = d.readString(p.with("id"))
			case "type":
				tc.Type, err = d.readString(p.with("type"))
			case "function":
				tc.Function, err = decodeFunctionCall(d, p)
			default:
				err = d.skipValue()
			}
			if err != nil {
				return nil, err
			}
		}
		calls = append(calls, tc)
	}
}

func decodeFunctionCall(d *decoder, p param) (FunctionCall, error) {
	var fc FunctionCall
	c, err := d.valueStart()
	switch {
	case err != nil:
		return fc, err
	case c == 'n':
		return fc, d.literal("null")
	case c != '{':
		return fc, d.typeError(p.with("function"), "an object")
	}
	if err := d.open(); err != nil {
		return fc, err
	}
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil || !ok {
			return fc, err
		}
		switch string(key) {
		case "name":
			fc.Name, err = d.readString(p.with("function.name"))
		case "arguments":
			fc.Arguments, err = d.readString(p.with("function.arguments"))
		default:
			err = d.skipValue()
		}
		if err != nil {
			return fc, err
		}
	}
}

func decodeTools(d *decoder) ([]Tool, error) {
	c, err := d.valueStart()
	switch {
	case err != nil:
		return nil, err
	case c == 'n':
		return nil, d.literal("null")
	case c != '[':
		return nil, d.typeError(field("tools"), "an array")
	}
	if err := d.open(); err != nil {
		return nil, err
	}
	var tools []Tool
	for first := true; ; first = false {
		ok, err := d.nextElem(first)
		if err != nil {
			return nil, err
		}
		if !ok {
			if tools == nil {
				tools = []Tool{}
			}
			return tools, nil
		}
		j := len(tools)
		p := at("tools", j, "")
		if d.peek() != '{' {
			return nil, d.typeError(p, "an object")
		}
		if err := d.open(); err != nil {
			return nil, err
		}
		var t Tool
		for first := true; ; first = false {
			key, ok, err := d.nextMember(first)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			switch string(key) {
			case "type":
				t.Type, err = d.readString(p.with("type"))
			case "function":
				t.Function, err = decodeFunctionDecl(d, p)
			default:
				err = d.skipValue()
			}
			if err != nil {
				return nil, err
			}
		}
		if t.Type != "function" {
			return nil, &Error{Kind: KindInvalidRequest, Param: p.with("type").String(), Code: "invalid_value",
				Msg: "Invalid value: '" + t.Type + "'. Supported values are: 'function'."}
		}
		tools = append(tools, t)
	}
}

func decodeFunctionDecl(d *decoder, p param) (FunctionDecl, error) {
	var fd FunctionDecl
	c, err := d.valueStart()
	switch {
	case err != nil:
		return fd, err
	case c == 'n':
		return fd, d.literal("null")
	case c != '{':
		return fd, d.typeError(p.with("function"), "an object")
	}
	if err := d.open(); err != nil {
		return fd, err
	}
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil || !ok {
			return fd, err
		}
		switch string(key) {
		case "name":
			fd.Name, err = d.readString(p.with("function.name"))
		case "description":
			fd.Description, err = d.readString(p.with("function.description"))
		case "parameters":
			fd.Parameters, err = d.readRawNonNull()
		case "strict":
			fd.Strict, err = d.readBoolPtr(p.with("function.strict"))
		default:
			err = d.skipValue()
		}
		if err != nil {
			return fd, err
		}
	}
}

// UnmarshalJSON decodes an OpenAI embeddings request body, replacing all of
// *r. Unknown top-level fields are kept verbatim in Extra; input is kept raw
// (null reads as absent). Errors are as for Request.UnmarshalJSON.
func (r *EmbeddingRequest) UnmarshalJSON(data []byte) error {
	*r = EmbeddingRequest{}
	d := decoder{data: data}
	return d.finish(r.decode(&d))
}

func (r *EmbeddingRequest) decode(d *decoder) error {
	c, err := d.valueStart()
	if err != nil {
		return err
	}
	if c != '{' {
		return d.typeError(field(""), "a JSON object")
	}
	if err := d.open(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, ok, err := d.nextMember(first)
		if err != nil || !ok {
			return err
		}
		switch string(key) {
		case "model":
			r.Model, err = d.readString(field("model"))
		case "input":
			r.Input, err = d.readRawNonNull()
		case "encoding_format":
			r.EncodingFormat, err = d.readString(field("encoding_format"))
		case "dimensions":
			r.Dimensions, err = d.readIntPtr(field("dimensions"))
		case "user":
			r.User, err = d.readString(field("user"))
		default:
			var raw []byte
			if raw, err = d.readRaw(); err == nil {
				if r.Extra == nil {
					r.Extra = make(map[string]json.RawMessage, 2)
				}
				r.Extra[string(key)] = raw
			}
		}
		if err != nil {
			return err
		}
	}
}

// ---- encoding ----

// AppendJSON appends r as an OpenAI chat completions body to dst and returns
// the extended slice.
//
// Optional fields are written only when set. stream_options is written when
// StreamOptions is non-nil, with include_usage taken from it and any other
// members from Extra["stream_options"]. Extra fields follow the modelled ones
// in key order (so the output is deterministic); an Extra key that names a
// modelled field is ignored. Raw values (Extra, ToolChoice, ResponseFormat,
// Parameters, Part.Raw) are copied verbatim and must be valid JSON, as they
// are when they came from UnmarshalJSON.
func (r *Request) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"model":`...)
	dst = AppendJSONString(dst, r.Model)
	dst = append(dst, `,"messages":[`...)
	for i := range r.Messages {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = r.Messages[i].AppendJSON(dst)
	}
	dst = append(dst, ']')
	if r.Stream {
		dst = append(dst, `,"stream":true`...)
	}
	if r.StreamOptions != nil {
		dst = append(dst, `,"stream_options":`...)
		dst = appendStreamOptions(dst, r.StreamOptions.IncludeUsage, r.Extra["stream_options"])
	}
	dst = appendIntField(dst, `,"max_tokens":`, r.MaxTokens)
	dst = appendIntField(dst, `,"max_completion_tokens":`, r.MaxCompletionTokens)
	if r.Temperature != nil {
		dst = append(dst, `,"temperature":`...)
		dst = AppendJSONFloat(dst, *r.Temperature)
	}
	if r.TopP != nil {
		dst = append(dst, `,"top_p":`...)
		dst = AppendJSONFloat(dst, *r.TopP)
	}
	dst = appendIntField(dst, `,"n":`, r.N)
	if r.Stop != nil {
		dst = append(dst, `,"stop":[`...)
		for i, s := range r.Stop {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, s)
		}
		dst = append(dst, ']')
	}
	if r.User != "" {
		dst = append(dst, `,"user":`...)
		dst = AppendJSONString(dst, r.User)
	}
	if r.Seed != nil {
		dst = append(dst, `,"seed":`...)
		dst = strconv.AppendInt(dst, *r.Seed, 10)
	}
	if r.Tools != nil {
		dst = append(dst, `,"tools":[`...)
		for i := range r.Tools {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = r.Tools[i].appendJSON(dst)
		}
		dst = append(dst, ']')
	}
	if len(r.ToolChoice) > 0 {
		dst = append(dst, `,"tool_choice":`...)
		dst = append(dst, r.ToolChoice...)
	}
	if len(r.ResponseFormat) > 0 {
		dst = append(dst, `,"response_format":`...)
		dst = append(dst, r.ResponseFormat...)
	}
	dst = appendExtra(dst, r.Extra, isRequestField)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (r Request) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 512)), nil
}

// isRequestField reports whether k is a field Request models.
func isRequestField(k string) bool {
	switch k {
	case "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
		"temperature", "top_p", "n", "stop", "user", "seed", "tools", "tool_choice", "response_format":
		return true
	}
	return false
}

func appendIntField(dst []byte, prefix string, v *int) []byte {
	if v == nil {
		return dst
	}
	dst = append(dst, prefix...)
	return strconv.AppendInt(dst, int64(*v), 10)
}

// appendStreamOptions writes {"include_usage":…} plus the members of raw
// other than include_usage.
func appendStreamOptions(dst []byte, includeUsage bool, raw json.RawMessage) []byte {
	dst = append(dst, `{"include_usage":`...)
	dst = strconv.AppendBool(dst, includeUsage)
	if len(raw) > 0 {
		d := decoder{data: raw}
		if d.peek() == '{' && d.open() == nil {
			for first := true; ; first = false {
				key, ok, err := d.nextMember(first)
				if err != nil || !ok {
					break
				}
				d.skipWS()
				start := d.off
				if d.skipValue() != nil {
					break
				}
				if string(key) == "include_usage" {
					continue
				}
				dst = append(dst, ',')
				dst = AppendJSONString(dst, string(key))
				dst = append(dst, ':')
				dst = append(dst, raw[start:d.off]...)
			}
		}
	}
	return append(dst, '}')
}

// appendExtra writes the members of extra in key order, skipping the keys
// known reports as modelled and empty values.
func appendExtra(dst []byte, extra map[string]json.RawMessage, known func(string) bool) []byte {
	if len(extra) == 0 {
		return dst
	}
	var buf [16]string
	keys := buf[:0]
	for k, v := range extra {
		if len(v) > 0 && !known(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = append(dst, ',')
		dst = AppendJSONString(dst, k)
		dst = append(dst, ':')
		dst = append(dst, extra[k]...)
	}
	return dst
}

// AppendJSON appends m as an OpenAI chat message to dst.
//
// content is written as an array when Parts is non-nil, as a string when
// HasContent is set or Content is non-empty, as null for an assistant
// message without content (one that only calls tools or refuses), and is
// omitted otherwise. Empty optional fields are omitted.
func (m *Message) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"role":`...)
	dst = AppendJSONString(dst, m.Role)
	switch {
	case m.Parts != nil:
		dst = append(dst, `,"content":[`...)
		for i := range m.Parts {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = m.Parts[i].AppendJSON(dst)
		}
		dst = append(dst, ']')
	case m.HasContent || m.Content != "":
		dst = append(dst, `,"content":`...)
		dst = AppendJSONString(dst, m.Content)
	case m.Role == "assistant":
		dst = append(dst, `,"content":null`...)
	}
	if m.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = AppendJSONString(dst, m.Name)
	}
	if m.ToolCalls != nil {
		dst = append(dst, `,"tool_calls":[`...)
		for i := range m.ToolCalls {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = m.ToolCalls[i].appendJSON(dst)
		}
		dst = append(dst, ']')
	}
	if m.ToolCallID != "" {
		dst = append(dst, `,"tool_call_id":`...)
		dst = AppendJSONString(dst, m.ToolCallID)
	}
	if m.Refusal != "" {
		dst = append(dst, `,"refusal":`...)
		dst = AppendJSONString(dst, m.Refusal)
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (m Message) MarshalJSON() ([]byte, error) {
	return m.AppendJSON(make([]byte, 0, 64+len(m.Content))), nil
}

// AppendJSON appends p as an OpenAI content part to dst: Raw verbatim when
// set, otherwise the type with its text or image_url.
func (p *Part) AppendJSON(dst []byte) []byte {
	if len(p.Raw) > 0 {
		return append(dst, p.Raw...)
	}
	dst = append(dst, `{"type":`...)
	dst = AppendJSONString(dst, p.Type)
	if p.Type == "text" || p.Text != "" {
		dst = append(dst, `,"text":`...)
		dst = AppendJSONString(dst, p.Text)
	}
	if p.ImageURL != nil {
		dst = append(dst, `,"image_url":{"url":`...)
		dst = AppendJSONString(dst, p.ImageURL.URL)
		if p.ImageURL.Detail != "" {
			dst = append(dst, `,"detail":`...)
			dst = AppendJSONString(dst, p.ImageURL.Detail)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (p Part) MarshalJSON() ([]byte, error) {
	return p.AppendJSON(nil), nil
}

func (tc *ToolCall) appendJSON(dst []byte) []byte {
	typ := tc.Type
	if typ == "" {
		typ = "function"
	}
	dst = append(dst, `{"id":`...)
	dst = AppendJSONString(dst, tc.ID)
	dst = append(dst, `,"type":`...)
	dst = AppendJSONString(dst, typ)
	dst = append(dst, `,"function":{"name":`...)
	dst = AppendJSONString(dst, tc.Function.Name)
	dst = append(dst, `,"arguments":`...)
	dst = AppendJSONString(dst, tc.Function.Arguments)
	return append(dst, "}}"...)
}

func (t *Tool) appendJSON(dst []byte) []byte {
	typ := t.Type
	if typ == "" {
		typ = "function"
	}
	dst = append(dst, `{"type":`...)
	dst = AppendJSONString(dst, typ)
	dst = append(dst, `,"function":{"name":`...)
	dst = AppendJSONString(dst, t.Function.Name)
	if t.Function.Description != "" {
		dst = append(dst, `,"description":`...)
		dst = AppendJSONString(dst, t.Function.Description)
	}
	if len(t.Function.Parameters) > 0 {
		dst = append(dst, `,"parameters":`...)
		dst = append(dst, t.Function.Parameters...)
	}
	if t.Function.Strict != nil {
		dst = append(dst, `,"strict":`...)
		dst = strconv.AppendBool(dst, *t.Function.Strict)
	}
	return append(dst, "}}"...)
}

// AppendJSON appends r as an OpenAI embeddings body to dst. Input is copied
// verbatim (null when empty); Extra follows in key order, as for Request.
func (r *EmbeddingRequest) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"model":`...)
	dst = AppendJSONString(dst, r.Model)
	dst = append(dst, `,"input":`...)
	if len(r.Input) > 0 {
		dst = append(dst, r.Input...)
	} else {
		dst = append(dst, "null"...)
	}
	if r.EncodingFormat != "" {
		dst = append(dst, `,"encoding_format":`...)
		dst = AppendJSONString(dst, r.EncodingFormat)
	}
	dst = appendIntField(dst, `,"dimensions":`, r.Dimensions)
	if r.User != "" {
		dst = append(dst, `,"user":`...)
		dst = AppendJSONString(dst, r.User)
	}
	dst = appendExtra(dst, r.Extra, isEmbeddingField)
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (r EmbeddingRequest) MarshalJSON() ([]byte, error) {
	return r.AppendJSON(make([]byte, 0, 64+len(r.Input))), nil
}

func isEmbeddingField(k string) bool {
	switch k {
	case "model", "input", "encoding_format", "dimensions", "user":
		return true
	}
	return false
}

// AppendJSONString appends s to dst as a JSON string literal, escaped as
// encoding/json does without HTML escaping: '"', '\\' and control
// characters are escaped, U+2028 and U+2029 become \u2028 and \u2029 (they
// end lines in JavaScript), and each invalid UTF-8 byte becomes \ufffd.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendJSONFloat appends f as a JSON number, formatted as encoding/json
// formats a float64. NaN and infinities, which JSON cannot express, are
// written as null.
func AppendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
