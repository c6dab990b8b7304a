package anthropic

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// EncodeChat builds the POST /v1/messages request for in, addressed to t.
//
// The body is appended to dst (which may be nil) and Outbound.Body is the
// appended part only. The URL is t.BaseURL + "/v1/messages" ("/messages"
// when BaseURL already ends in "/v1"); the headers are x-api-key,
// anthropic-version (t.APIVersion or DefaultAPIVersion), content-type and
// accept (text/event-stream for streams). The model sent is t.Model, or
// in.Model when the target names none. in is not modified.
//
// Requests Anthropic cannot serve faithfully are refused with an
// *llm.Error of kind KindInvalidRequest whose Param names the offending
// field; the package documentation lists them.
func (a Adapter) EncodeChat(dst []byte, in *llm.Request, t *llm.Target) (llm.Outbound, error) {
	if in == nil || t == nil {
		return llm.Outbound{}, &llm.Error{Kind: llm.KindInternal, Provider: ProviderName, Msg: "internal error", Err: errNilArg}
	}
	req, err := buildRequest(in, t)
	if err != nil {
		return llm.Outbound{}, err
	}
	out, err := appendJSON(dst, req)
	if err != nil {
		return llm.Outbound{}, &llm.Error{Kind: llm.KindInternal, Provider: ProviderName, Msg: "internal error", Err: err}
	}
	version := t.APIVersion
	if version == "" {
		version = DefaultAPIVersion
	}
	accept := "application/json"
	if in.Stream {
		accept = "text/event-stream"
	}
	return llm.Outbound{
		Method: "POST",
		URL:    messagesURL(t.BaseURL),
		Header: []llm.Header{
			{Key: "x-api-key", Value: t.APIKey},
			{Key: "anthropic-version", Value: version},
			{Key: "content-type", Value: "application/json"},
			{Key: "accept", Value: accept},
		},
		Body:   out[len(dst):],
		Stream: in.Stream,
	}, nil
}

type argError string

func (e argError) Error() string { return string(e) }

const errNilArg = argError("anthropic: nil request or target")

// messagesURL joins the base URL and the Messages API path.
func messagesURL(base string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/v1") {
		return base + "/messages"
	}
	return base + "/v1/messages"
}

// buildRequest translates in into a Messages API body.
func buildRequest(in *llm.Request, t *llm.Target) (*wireRequest, error) {
	req := &wireRequest{Model: t.Model, Stream: in.Stream}
	if req.Model == "" {
		req.Model = in.Model
	}
	if req.Model == "" {
		return nil, invalid("model", "model is required")
	}

	if in.N != nil && *in.N != 1 {
		if *in.N > 1 {
			return nil, invalid("n", "n>1 is not supported by anthropic")
		}
		return nil, invalid("n", "n must be at least 1")
	}
	if err := checkResponseFormat(in.ResponseFormat); err != nil {
		return nil, err
	}

	maxTokens, ok := in.MaxOutputTokens()
	switch {
	case ok && maxTokens < 1:
		param := "max_tokens"
		if in.MaxCompletionTokens != nil {
			param = "max_completion_tokens"
		}
		return nil, invalid(param, param+" must be at least 1")
	case ok:
	case t.DefaultMaxTokens > 0:
		maxTokens = t.DefaultMaxTokens
	default:
		maxTokens = DefaultMaxTokens
	}
	req.MaxTokens = &maxTokens

	if v := in.Temperature; v != nil {
		if *v < 0 || *v > 1 {
			return nil, invalid("temperature", "temperature must be between 0 and 1 for anthropic models")
		}
		req.Temperature = v
	}
	if v := in.TopP; v != nil {
		if *v < 0 || *v > 1 {
			return nil, invalid("top_p", "top_p must be between 0 and 1")
		}
		req.TopP = v
	}
	if raw, ok := in.Extra["top_k"]; ok && !isNull(raw) {
		var k int
		if err := json.Unmarshal(raw, &k); err != nil || k < 0 {
			return nil, invalid("top_k", "top_k must be a non-negative integer")
		}
		req.TopK = json.RawMessage(strconv.Itoa(k))
	}
	if len(in.Stop) > 0 {
		req.StopSequences = in.Stop
	}
	if in.User != "" {
		req.Metadata = &wireMetadata{UserID: in.User}
	}

	if err := encodeMessages(req, in.Messages); err != nil {
		return nil, err
	}
	if err := encodeTools(req, in); err != nil {
		return nil, err
	}
	return req, nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// checkResponseFormat accepts an absent response_format or {"type":"text"}.
func checkResponseFormat(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var rf struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return invalid("response_format", "response_format must be an object")
	}
	switch rf.Type {
	case "text":
		return nil
	case "json_object", "json_schema":
		return invalid("response_format", "response_format "+rf.Type+" is not supported by anthropic")
	default:
		return invalid("response_format", "unknown response_format type "+strconv.Quote(rf.Type))
	}
}

// turnBuilder collects Anthropic turns, merging consecutive messages that
// map to the same role.
type turnBuilder struct {
	turns []wireTurn
	// msgs counts the canonical messages merged into the last turn;
	// plain says all of them had string content.
	msgs  int
	plain bool
}

// add appends blocks to a turn of role, merging with the previous turn if
// it has the same role. plain says the message had string content.
func (b *turnBuilder) add(role string, blocks []block, plain bool) {
	if n := len(b.turns); n > 0 && b.turns[n-1].Role == role {
		last := &b.turns[n-1]
		last.Content.blocks = append(last.Content.blocks, blocks...)
		b.msgs++
		b.plain = b.plain && plain
		return
	}
	b.finish()
	b.turns = append(b.turns, wireTurn{Role: role, Content: content{blocks: blocks}})
	b.msgs = 1
	b.plain = plain
}

// finish settles the last turn's content form: a lone text from a single
// string-content message is sent as a string, as the client wrote it, and
// a turn left with no block is sent as "".
func (b *turnBuilder) finish() {
	n := len(b.turns)
	if n == 0 {
		return
	}
	c := &b.turns[n-1].Content
	switch {
	case len(c.blocks) == 0:
		*c = content{isText: true}
	case len(c.blocks) == 1 && c.blocks[0].Type == "text" && b.msgs == 1 && b.plain:
		*c = content{isText: true, text: c.blocks[0].Text}
	}
}

// encodeMessages fills req.System and req.Messages.
func encodeMessages(req *wireRequest, msgs []llm.Message) error {
	var system []block
	systemPlain := true
	var b turnBuilder
	for i := range msgs {
		m := &msgs[i]
		param := "messages[" + strconv.Itoa(i) + "]"
		switch m.Role {
		case "system", "developer":
			blocks, err := textBlocks(m, param)
			if err != nil {
				return err
			}
			system = append(system, blocks...)
			systemPlain = systemPlain && m.Parts == nil
		case "user":
			blocks, err := userBlocks(m, param)
			if err != nil {
				return err
			}
			b.add("user", blocks, m.Parts == nil)
		case "assistant":
			blocks, err := assistantBlocks(m, param)
			if err != nil {
				return err
			}
			b.add("assistant", blocks, m.Parts == nil && len(m.ToolCalls) == 0 && m.Refusal == "")
		case "tool":
			blk, err := toolResult(m, param)
			if err != nil {
				return err
			}
			b.add("user", []block{blk}, false)
		default:
			return invalid(param+".role", "message role "+strconv.Quote(m.Role)+" is not supported by anthropic")
		}
	}
	b.finish()
	if len(b.turns) == 0 {
		return invalid("messages", "messages must contain at least one user or assistant message")
	}
	req.Messages = b.turns
	switch {
	case len(system) == 1 && systemPlain:
		req.System = &content{isText: true, text: system[0].Text}
	case len(system) > 0:
		req.System = &content{blocks: system}
	}
	return nil
}

// textBlocks returns the non-empty text of a system or developer message.
func textBlocks(m *llm.Message, param string) ([]block, error) {
	if m.Parts == nil {
		if m.Content == "" {
			return nil, nil
		}
		return []block{{Type: "text", Text: m.Content}}, nil
	}
	var out []block
	for j := range m.Parts {
		p := &m.Parts[j]
		if p.Type != "text" {
			return nil, invalid(param+".content["+strconv.Itoa(j)+"]", "only text content is supported in "+m.Role+" messages")
		}
		if p.Text != "" {
			out = append(out, block{Type: "text", Text: p.Text})
		}
	}
	return out, nil
}

// userBlocks translates a user message's content.
func userBlocks(m *llm.Message, param string) ([]block, error) {
	if m.Parts == nil {
		if m.Content == "" {
			return nil, nil
		}
		return []block{{Type: "text", Text: m.Content}}, nil
	}
	out := make([]block, 0, len(m.Parts))
	for j := range m.Parts {
		blk, ok, err := partBlock(&m.Parts[j], param+".content["+strconv.Itoa(j)+"]")
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, blk)
		}
	}
	return out, nil
}

// partBlock translates one content part; ok is false for an empty text.
func partBlock(p *llm.Part, param string) (blk block, ok bool, err error) {
	switch p.Type {
	case "text":
		return block{Type: "text", Text: p.Text}, p.Text != "", nil
	case "image_url":
		if p.ImageURL == nil || p.ImageURL.URL == "" {
			return block{}, false, invalid(param+".image_url", "image_url.url is required")
		}
		src, err := imageSource(p.ImageURL.URL, param+".image_url.url")
		if err != nil {
			return block{}, false, err
		}
		return block{Type: "image", Source: src}, true, nil
	case "file":
		return fileBlock(p, param)
	default:
		return block{}, false, invalid(param, "content part type "+strconv.Quote(p.Type)+" is not supported by anthropic")
	}
}

// imageSource maps an image URL: data URLs to a base64 source, http(s)
// URLs to a url source.
func imageSource(u, param string) (*wireSource, error) {
	if strings.HasPrefix(u, "data:") {
		mediaType, data, ok := parseDataURL(u)
		if !ok {
			return nil, invalid(param, "image data URLs must be base64: data:<media type>;base64,<data>")
		}
		return &wireSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if lower := strings.ToLower(u); strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") {
		return &wireSource{Type: "url", URL: u}, nil
	}
	return nil, invalid(param, "image URLs must be http(s) or base64 data URLs")
}

// parseDataURL splits "data:<media type>[;params];base64,<data>".
func parseDataURL(u string) (mediaType, data string, ok bool) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", "", false
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return "", "", false
	}
	params := strings.Split(meta, ";")
	if len(params) < 2 || !strings.EqualFold(params[len(params)-1], "base64") {
		return "", "", false
	}
	mediaType = strings.ToLower(strings.TrimSpace(params[0]))
	if mediaType == "" || data == "" {
		return "", "", false
	}
	return mediaType, data, true
}

// fileBlock translates OpenAI's file part: a base64 PDF becomes a document
// block; file ids and other media types are refused.
func fileBlock(p *llm.Part, param string) (block, bool, error) {
	var f struct {
		File struct {
			FileData string `json:"file_data"`
			FileID   string `json:"file_id"`
			Filename string `json:"filename"`
		} `json:"file"`
	}
	if err := json.Unmarshal(p.Raw, &f); err != nil {
		return block{}, false, invalid(param, "malformed file content part")
	}
	if f.File.FileData == "" {
		return block{}, false, invalid(param+".file", "file parts must carry file_data (file ids are not supported by anthropic)")
	}
	mediaType, data, ok := parseDataURL(f.File.FileData)
	if !ok || mediaType != "application/pdf" {
		return block{}, false, invalid(param+".file.file_data", "only base64 PDF data URLs are supported by anthropic")
	}
	return block{Type: "document", Source: &wireSource{Type: "base64", MediaType: mediaType, Data: data}}, true, nil
}

// assistantBlocks translates an assistant message: its text, then one
// tool_use block per tool call.
func assistantBlocks(m *llm.Message, param string) ([]block, error) {
	var out []block
	if m.Parts == nil {
		if m.Content != "" {
			out = append(out, block{Type: "text", Text: m.Content})
		}
	} else {
		for j := range m.Parts {
			p := &m.Parts[j]
			switch p.Type {
			case "text", "refusal":
				text := p.Text
				if p.Type == "refusal" {
					var r struct {
						Refusal string `json:"refusal"`
					}
					_ = json.Unmarshal(p.Raw, &r)
					text = r.Refusal
				}
				if text != "" {
					out = append(out, block{Type: "text", Text: text})
				}
			default:
				return nil, invalid(param+".content["+strconv.Itoa(j)+"]", "only text content is supported in assistant messages")
			}
		}
	}
	if m.Refusal != "" {
		out = append(out, block{Type: "text", Text: m.Refusal})
	}
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		p := param + ".tool_calls[" + strconv.Itoa(j) + "]"
		if tc.Type != "" && tc.Type != "function" {
			return nil, invalid(p+".type", "tool call type "+strconv.Quote(tc.Type)+" is not supported by anthropic")
		}
		if tc.ID == "" {
			return nil, invalid(p+".id", "tool call id is required")
		}
		if tc.Function.Name == "" {
			return nil, invalid(p+".function.name", "tool call function name is required")
		}
		input, err := toolInput(tc.Function.Arguments)
		if err != nil {
			return nil, invalid(p+".function.arguments", "tool call arguments must be a JSON object")
		}
		out = append(out, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return out, nil
}

// toolInput parses tool call arguments into a compact JSON object; empty
// arguments mean no argument.
func toolInput(args string) (json.RawMessage, error) {
	trimmed := strings.TrimSpace(args)
	if trimmed == "" {
		return json.RawMessage("{}"), nil
	}
	if trimmed[0] != '{' || !json.Valid([]byte(trimmed)) {
		return nil, errNotObject
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(trimmed)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const errNotObject = argError("not a JSON object")

// toolResult translates a tool message into a tool_result block.
func toolResult(m *llm.Message, param string) (block, error) {
	if m.ToolCallID == "" {
		return block{}, invalid(param+".tool_call_id", "tool messages must have a tool_call_id")
	}
	blk := block{Type: "tool_result", ToolUseID: m.ToolCallID}
	if m.Parts == nil {
		if m.Content != "" {
			blk.Content = &content{isText: true, text: m.Content}
		}
		return blk, nil
	}
	var blocks []block
	for j := range m.Parts {
		p := &m.Parts[j]
		pp := param + ".content[" + strconv.Itoa(j) + "]"
		if p.Type != "text" && p.Type != "image_url" {
			return block{}, invalid(pp, "only text and image content is supported in tool messages")
		}
		b, ok, err := partBlock(p, pp)
		if err != nil {
			return block{}, err
		}
		if ok {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) > 0 {
		blk.Content = &content{blocks: blocks}
	}
	return blk, nil
}

// encodeTools fills req.Tools and req.ToolChoice.
func encodeTools(req *wireRequest, in *llm.Request) error {
	for i := range in.Tools {
		tl := &in.Tools[i]
		param := "tools[" + strconv.Itoa(i) + "]"
		if tl.Type != "" && tl.Type != "function" {
			return invalid(param+".type", "tool type "+strconv.Quote(tl.Type)+" is not supported by anthropic")
		}
		if tl.Function.Name == "" {
			return invalid(param+".function.name", "tool function name is required")
		}
		schema := tl.Function.Parameters
		if isNull(schema) {
			// Anthropic requires a schema; a function without parameters
			// takes an empty object.
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		} else if !json.Valid(schema) {
			return invalid(param+".function.parameters", "tool parameters must be a JSON schema object")
		}
		req.Tools = append(req.Tools, wireTool{
			Name:        tl.Function.Name,
			Description: tl.Function.Description,
			InputSchema: schema,
			Strict:      tl.Function.Strict,
		})
	}

	parallel := true
	if raw, ok := in.Extra["parallel_tool_calls"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &parallel); err != nil {
			return invalid("parallel_tool_calls", "parallel_tool_calls must be a boolean")
		}
	}

	choice, err := toolChoice(in.ToolChoice)
	if err != nil {
		return err
	}
	if len(req.Tools) == 0 {
		if choice != nil && (choice.Type == "any" || choice.Type == "tool") {
			return invalid("tool_choice", "tool_choice requires tools")
		}
		return nil
	}
	if !parallel {
		if choice == nil {
			choice = &wireToolChoice{Type: "auto"}
		}
		if choice.Type != "none" {
			choice.DisableParallelToolUse = true
		}
	}
	req.ToolChoice = choice
	return nil
}

// toolChoice maps OpenAI's tool_choice: "auto", "none", "required" or
// {"type":"function","function":{"name":...}}.
func toolChoice(raw json.RawMessage) (*wireToolChoice, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch s {
		case "auto":
			return &wireToolChoice{Type: "auto"}, nil
		case "none":
			return &wireToolChoice{Type: "none"}, nil
		case "required":
			return &wireToolChoice{Type: "any"}, nil
		default:
			return nil, invalid("tool_choice", "unknown tool_choice "+strconv.Quote(s))
		}
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, invalid("tool_choice", "tool_choice must be a string or an object")
	}
	if obj.Type != "function" || obj.Function.Name == "" {
		return nil, invalid("tool_choice", "tool_choice type "+strconv.Quote(obj.Type)+" is not supported by anthropic")
	}
	return &wireToolChoice{Type: "tool", Name: obj.Function.Name}, nil
}
