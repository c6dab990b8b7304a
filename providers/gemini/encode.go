package gemini

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// EncodeChat builds the Gemini request for a chat completion: a POST to
// t.BaseURL + "/v1beta/models/" + t.Model + ":generateContent", or
// ":streamGenerateContent?alt=sse" when in.Stream is set, with the key in the
// x-goog-api-key header. The body is appended to dst (which may be nil) and
// Outbound.Body holds only the appended bytes.
//
// The translation, by OpenAI field:
//
//   - system and developer messages become systemInstruction, one text part
//     each, wherever they appear in the conversation (Gemini has a single
//     system instruction); they must be text.
//   - user messages become role "user", assistant messages role "model";
//     consecutive messages of the same Gemini role are merged into one
//     Content, as Gemini expects alternating turns. Empty text is skipped.
//   - text parts become text parts; image_url parts become inlineData (data:
//     URLs) or fileData (http and https URLs, MIME type guessed from the
//     extension, image/jpeg by default); input_audio parts and file parts
//     carrying a data URL become inlineData. Other parts are refused.
//   - assistant tool_calls become functionCall parts whose args are the
//     parsed arguments (a JSON object; "" means {}).
//   - tool messages (and legacy function messages) become functionResponse
//     parts in a "user" Content, as the current function-calling guide
//     shows. Gemini pairs a response with its call by function name, so the
//     name is looked up from the earlier assistant tool call with the same
//     id; an unknown tool_call_id is an error. The response object is the
//     tool's content when that is a JSON object, else {"output": content},
//     "output" being the key Google documents for a function's result.
//   - tools become one Tool with functionDeclarations; parameters go to
//     parametersJsonSchema, which accepts JSON Schema as OpenAI clients write
//     it (the older parameters field accepts only an OpenAPI 3.0 subset and
//     rejects keywords such as additionalProperties). Gemini still supports
//     only part of JSON Schema; unsupported keywords fail upstream.
//   - tool_choice auto, none, required and {"type":"function",...} become
//     functionCallingConfig modes AUTO, NONE, ANY and ANY restricted to
//     that function.
//   - max_completion_tokens (or max_tokens), temperature, top_p, stop, n,
//     seed, presence_penalty and frequency_penalty go to generationConfig;
//     response_format json_object sets responseMimeType application/json and
//     json_schema adds responseJsonSchema.
//   - user, logprobs, logit_bias, parallel_tool_calls, stream_options,
//     reasoning_effort and every other field Gemini has no counterpart for
//     are dropped.
//
// Thought signatures: Gemini 3 models refuse a conversation whose function
// calls do not carry back the thoughtSignature the model attached to them.
// The adapter therefore embeds the signature in the tool call id it hands
// out (see toolCallID) and restores it here. A call without one (history
// written by another provider, or by hand) gets Google's documented
// placeholder signature on the first functionCall of each model turn, except
// for model families that predate signature validation (gemini-1.x, 2.x).
//
// Errors are *llm.Error: KindInvalidRequest for a request Gemini cannot
// express, KindInternal for a missing target or model.
func (a *Adapter) EncodeChat(dst []byte, in *llm.Request, t *llm.Target) (llm.Outbound, error) {
	if in == nil {
		return llm.Outbound{}, llm.Errorf(llm.KindInternal, "gemini: no request")
	}
	method := "generateContent"
	if in.Stream {
		method = "streamGenerateContent"
	}
	u, err := modelURL(t, method)
	if err != nil {
		return llm.Outbound{}, err
	}
	if in.Stream {
		u += "?alt=sse"
	}

	var req generateRequest
	if err := encodeMessages(&req, in.Messages, t.Model); err != nil {
		return llm.Outbound{}, err
	}
	if err := encodeTools(&req, in); err != nil {
		return llm.Outbound{}, err
	}
	gc, err := encodeGenerationConfig(in)
	if err != nil {
		return llm.Outbound{}, err
	}
	req.GenerationConfig = gc

	body, err := marshalAppend(dst, &req)
	if err != nil {
		return llm.Outbound{}, err
	}
	return llm.Outbound{
		Method: "POST",
		URL:    u,
		Header: headers(t),
		Body:   body,
		Stream: in.Stream,
	}, nil
}

// encodeMessages translates the conversation into contents and the system
// instruction.
func encodeMessages(req *generateRequest, msgs []llm.Message, model string) error {
	var system content
	// callNames maps a tool call id to its function name; a later assistant
	// message reusing an id overrides the earlier one, so a tool result pairs
	// with the most recent call of that id.
	callNames := map[string]string{}

	add := func(role string, parts ...part) {
		if len(parts) == 0 {
			return
		}
		if n := len(req.Contents); n > 0 && req.Contents[n-1].Role == role {
			req.Contents[n-1].Parts = append(req.Contents[n-1].Parts, parts...)
			return
		}
		req.Contents = append(req.Contents, content{Role: role, Parts: parts})
	}

	for i := range msgs {
		m := &msgs[i]
		param := "messages[" + strconv.Itoa(i) + "]"
		switch m.Role {
		case "system", "developer":
			parts, err := textOnlyParts(m, param)
			if err != nil {
				return err
			}
			system.Parts = append(system.Parts, parts...)
		case "user":
			parts, err := userParts(m, param)
			if err != nil {
				return err
			}
			add("user", parts...)
		case "assistant":
			parts, err := textOnlyParts(m, param)
			if err != nil {
				return err
			}
			for j := range m.ToolCalls {
				tc := &m.ToolCalls[j]
				p, err := functionCallPart(tc, param+".tool_calls["+strconv.Itoa(j)+"]")
				if err != nil {
					return err
				}
				if tc.ID != "" {
					callNames[tc.ID] = tc.Function.Name
				}
				parts = append(parts, p)
			}
			add("model", parts...)
		case "tool":
			name, ok := callNames[m.ToolCallID]
			if !ok || m.ToolCallID == "" {
				return invalid(param+".tool_call_id", "tool message "+strconv.Itoa(i)+" answers tool call id "+strconv.Quote(m.ToolCallID)+", which no earlier assistant message made")
			}
			p, err := functionResponsePart(m, name, param)
			if err != nil {
				return err
			}
			add("user", p)
		case "function": // OpenAI's deprecated function-calling messages
			if m.Name == "" {
				return invalid(param+".name", "function message "+strconv.Itoa(i)+" has no name")
			}
			p, err := functionResponsePart(m, m.Name, param)
			if err != nil {
				return err
			}
			add("user", p)
		default:
			return invalid(param+".role", "unsupported message role "+strconv.Quote(m.Role))
		}
	}

	if len(req.Contents) == 0 {
		return invalid("messages", "gemini needs at least one user or assistant message with content")
	}
	if len(system.Parts) > 0 {
		req.SystemInstruction = &system
	}
	if signaturesRequired(model) {
		for i := range req.Contents {
			c := &req.Contents[i]
			if c.Role != "model" {
				continue
			}
			for j := range c.Parts {
				if c.Parts[j].FunctionCall == nil {
					continue
				}
				if c.Parts[j].ThoughtSignature == "" {
					c.Parts[j].ThoughtSignature = placeholderSignature
				}
				break // only the first functionCall of a turn carries one
			}
		}
	}
	return nil
}

// placeholderSignature is the value Google documents for function calls the
// model did not produce itself, which disables signature validation for them.
const placeholderSignature = "skip_thought_signature_validator"

// signaturesRequired reports whether model validates thought signatures on
// function calls. Gemini 1.x and 2.x models (and Gemma, LearnLM) do not; any
// other, including future and "-latest" aliases, is assumed to.
func signaturesRequired(model string) bool {
	m := strings.ToLower(modelName(model))
	switch m {
	case "gemini-pro", "gemini-pro-vision":
		return false
	}
	for _, p := range []string{"gemini-1", "gemini-2", "gemma", "learnlm"} {
		if strings.HasPrefix(m, p) {
			return false
		}
	}
	return true
}

// textOnlyParts returns the text of a system, developer or assistant message
// as text parts. Refusal parts of assistant messages are dropped; any other
// part type is refused.
func textOnlyParts(m *llm.Message, param string) ([]part, error) {
	if len(m.Parts) == 0 {
		if m.Content == "" {
			return nil, nil
		}
		return []part{{Text: m.Content}}, nil
	}
	parts := make([]part, 0, len(m.Parts))
	for j := range m.Parts {
		p := &m.Parts[j]
		switch p.Type {
		case "text":
			if p.Text != "" {
				parts = append(parts, part{Text: p.Text})
			}
		case "refusal":
		default:
			return nil, invalid(param+".content["+strconv.Itoa(j)+"]", "gemini accepts only text in "+m.Role+" messages, not "+strconv.Quote(p.Type))
		}
	}
	return parts, nil
}

// userParts translates a user message's content.
func userParts(m *llm.Message, param string) ([]part, error) {
	if len(m.Parts) == 0 {
		if m.Content == "" {
			return nil, nil
		}
		return []part{{Text: m.Content}}, nil
	}
	parts := make([]part, 0, len(m.Parts))
	for j := range m.Parts {
		p := &m.Parts[j]
		pp := param + ".content[" + strconv.Itoa(j) + "]"
		switch p.Type {
		case "text":
			if p.Text != "" {
				parts = append(parts, part{Text: p.Text})
			}
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, invalid(pp+".image_url", "image_url part without a url")
			}
			ip, err := imagePart(p.ImageURL.URL, pp+".image_url.url")
			if err != nil {
				return nil, err
			}
			parts = append(parts, ip)
		case "input_audio":
			ap, err := audioPart(p.Raw, pp)
			if err != nil {
				return nil, err
			}
			parts = append(parts, ap)
		case "file":
			fp, err := filePart(p.Raw, pp)
			if err != nil {
				return nil, err
			}
			parts = append(parts, fp)
		default:
			return nil, invalid(pp+".type", "gemini adapter does not support content part type "+strconv.Quote(p.Type))
		}
	}
	return parts, nil
}

// imagePart turns an image URL into inlineData (data: URL) or fileData
// (http/https URL).
func imagePart(raw, param string) (part, error) {
	if strings.HasPrefix(raw, "data:") {
		mime, data, err := parseDataURL(raw)
		if err != nil {
			return part{}, invalid(param, err.Msg)
		}
		return part{InlineData: &blob{MIMEType: mime, Data: data}}, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return part{}, invalid(param, "image url must be an http(s) URL or a data: URL")
	}
	return part{FileData: &fileData{MIMEType: imageMIME(u.Path), FileURI: raw}}, nil
}

// imageMIME guesses an image's MIME type from its URL path extension,
// defaulting to image/jpeg.
func imageMIME(p string) string {
	switch strings.ToLower(path.Ext(p)) {
	case ".png":
		return "image/png"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".heic":
		return "image/heic"
	case ".heif":
		return "image/heif"
	default:
		return "image/jpeg"
	}
}

// parseDataURL splits an RFC 2397 data URL into its media type and base64
// payload, converting a percent-encoded payload to base64. A missing media
// type is an error: Gemini needs one.
func parseDataURL(s string) (mime, data string, _ *llm.Error) {
	rest := strings.TrimPrefix(s, "data:")
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return "", "", invalid("", "malformed data URL: no comma")
	}
	meta, payload := rest[:comma], rest[comma+1:]
	isBase64 := false
	if strings.HasSuffix(strings.ToLower(meta), ";base64") {
		isBase64 = true
		meta = meta[:len(meta)-len(";base64")]
	}
	mime = meta
	if i := strings.IndexByte(mime, ';'); i >= 0 {
		mime = mime[:i]
	}
	mime = strings.ToLower(strings.TrimSpace(mime))
	if mime == "" || !strings.Contains(mime, "/") {
		return "", "", invalid("", "data URL without a media type")
	}
	if isBase64 {
		return mime, payload, nil
	}
	raw, err := url.PathUnescape(payload)
	if err != nil {
		return "", "", invalid("", "malformed data URL payload")
	}
	return mime, base64.StdEncoding.EncodeToString([]byte(raw)), nil
}

// audioPart translates OpenAI's input_audio part
// ({"input_audio":{"data":"<base64>","format":"wav"}}) into inlineData.
func audioPart(raw json.RawMessage, param string) (part, error) {
	var p struct {
		InputAudio struct {
			Data   string `json:"data"`
			Format string `json:"format"`
		} `json:"input_audio"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.InputAudio.Data == "" || p.InputAudio.Format == "" {
		return part{}, invalid(param+".input_audio", "input_audio needs data and format")
	}
	return part{InlineData: &blob{MIMEType: "audio/" + strings.ToLower(p.InputAudio.Format), Data: p.InputAudio.Data}}, nil
}

// filePart translates OpenAI's file part when it carries the file inline
// (file_data, as a data URL or bare base64 with a filename extension giving
// the type). Uploaded-file references (file_id) cannot be resolved here.
func filePart(raw json.RawMessage, param string) (part, error) {
	var p struct {
		File struct {
			FileData string `json:"file_data"`
			FileID   string `json:"file_id"`
			Filename string `json:"filename"`
		} `json:"file"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return part{}, invalid(param, "malformed file part")
	}
	f := p.File
	switch {
	case strings.HasPrefix(f.FileData, "data:"):
		mime, data, err := parseDataURL(f.FileData)
		if err != nil {
			return part{}, invalid(param+".file.file_data", err.Msg)
		}
		return part{InlineData: &blob{MIMEType: mime, Data: data}}, nil
	case f.FileData != "":
		mime := fileMIME(f.Filename)
		if mime == "" {
			return part{}, invalid(param+".file.file_data", "file_data needs a data: URL or a filename with a known extension")
		}
		return part{InlineData: &blob{MIMEType: mime, Data: f.FileData}}, nil
	default:
		return part{}, invalid(param+".file", "gemini adapter supports only inline file_data, not file_id")
	}
}

// fileMIME maps a document filename extension to a MIME type Gemini accepts
// inline, or "".
func fileMIME(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".pdf":
		return "application/pdf"
	case ".txt":
		return "text/plain"
	case ".md":
		return "text/markdown"
	case ".html", ".htm":
		return "text/html"
	case ".csv":
		return "text/csv"
	case ".xml":
		return "text/xml"
	case ".png", ".webp", ".gif", ".heic", ".heif", ".jpg", ".jpeg":
		return imageMIME(name)
	default:
		return ""
	}
}

// functionCallPart translates one assistant tool call, restoring the thought
// signature its id carries.
func functionCallPart(tc *llm.ToolCall, param string) (part, error) {
	if tc.Type != "" && tc.Type != "function" {
		return part{}, invalid(param+".type", "unsupported tool call type "+strconv.Quote(tc.Type))
	}
	if tc.Function.Name == "" {
		return part{}, invalid(param+".function.name", "tool call without a function name")
	}
	args := bytes.TrimSpace([]byte(tc.Function.Arguments))
	if len(args) == 0 {
		args = []byte("{}")
	}
	if args[0] != '{' || !json.Valid(args) {
		return part{}, invalid(param+".function.arguments", "tool call arguments must be a JSON object")
	}
	_, sig := splitToolCallID(tc.ID)
	return part{
		FunctionCall:     &functionCall{Name: tc.Function.Name, Args: json.RawMessage(args)},
		ThoughtSignature: sig,
	}, nil
}

// functionResponsePart translates a tool (or function) message answering
// the function name.
func functionResponsePart(m *llm.Message, name, param string) (part, error) {
	text := m.Content
	if len(m.Parts) > 0 {
		var b strings.Builder
		for j := range m.Parts {
			p := &m.Parts[j]
			if p.Type != "text" {
				return part{}, invalid(param+".content["+strconv.Itoa(j)+"]", "gemini accepts only text in tool messages, not "+strconv.Quote(p.Type))
			}
			b.WriteString(p.Text)
		}
		text = b.String()
	}
	resp := bytes.TrimSpace([]byte(text))
	if len(resp) == 0 || resp[0] != '{' || !json.Valid(resp) {
		b, err := json.Marshal(map[string]string{"output": text})
		if err != nil {
			return part{}, &llm.Error{Kind: llm.KindInternal, Provider: ProviderType, Msg: "gemini: encoding a tool result failed", Err: err}
		}
		resp = b
	}
	return part{FunctionResponse: &functionResponse{Name: name, Response: json.RawMessage(resp)}}, nil
}

// encodeTools translates tools and tool_choice.
func encodeTools(req *generateRequest, in *llm.Request) error {
	names := make(map[string]bool, len(in.Tools))
	if len(in.Tools) > 0 {
		decls := make([]functionDeclaration, 0, len(in.Tools))
		for i := range in.Tools {
			tl := &in.Tools[i]
			param := "tools[" + strconv.Itoa(i) + "]"
			if tl.Type != "" && tl.Type != "function" {
				return invalid(param+".type", "gemini adapter supports only function tools, not "+strconv.Quote(tl.Type))
			}
			if tl.Function.Name == "" {
				return invalid(param+".function.name", "function tool without a name")
			}
			d := functionDeclaration{Name: tl.Function.Name, Description: tl.Function.Description}
			if ps := bytes.TrimSpace(tl.Function.Parameters); len(ps) > 0 && !bytes.Equal(ps, []byte("null")) {
				if ps[0] != '{' || !json.Valid(ps) {
					return invalid(param+".function.parameters", "function parameters must be a JSON Schema object")
				}
				d.ParametersJSONSchema = json.RawMessage(ps)
			}
			names[d.Name] = true
			decls = append(decls, d)
		}
		req.Tools = []tool{{FunctionDeclarations: decls}}
	}

	tc := bytes.TrimSpace(in.ToolChoice)
	if len(tc) == 0 || bytes.Equal(tc, []byte("null")) {
		return nil
	}
	var cfg functionCallingConfig
	if tc[0] == '"' {
		var s string
		if err := json.Unmarshal(tc, &s); err != nil {
			return invalid("tool_choice", "malformed tool_choice")
		}
		switch s {
		case "auto":
			cfg.Mode = "AUTO"
		case "none":
			cfg.Mode = "NONE"
		case "required":
			cfg.Mode = "ANY"
		default:
			return invalid("tool_choice", "unsupported tool_choice "+strconv.Quote(s))
		}
	} else {
		var o struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if err := json.Unmarshal(tc, &o); err != nil || o.Type != "function" || o.Function.Name == "" {
			return invalid("tool_choice", "tool_choice must be auto, none, required or a named function")
		}
		if !names[o.Function.Name] {
			return invalid("tool_choice", "tool_choice names "+strconv.Quote(o.Function.Name)+", which is not among the tools")
		}
		cfg.Mode = "ANY"
		cfg.AllowedFunctionNames = []string{o.Function.Name}
	}
	if len(in.Tools) == 0 {
		if cfg.Mode == "ANY" {
			return invalid("tool_choice", "tool_choice requires tools")
		}
		return nil // auto or none without tools: nothing to configure
	}
	req.ToolConfig = &toolConfig{FunctionCallingConfig: cfg}
	return nil
}

// encodeGenerationConfig translates the sampling parameters; it returns nil
// when none is set.
func encodeGenerationConfig(in *llm.Request) (*generationConfig, error) {
	var gc generationConfig
	set := false
	if v, ok := in.MaxOutputTokens(); ok {
		if v < 1 {
			return nil, invalid("max_completion_tokens", "the output token cap must be at least 1")
		}
		gc.MaxOutputTokens, set = &v, true
	}
	if in.Temperature != nil {
		gc.Temperature, set = in.Temperature, true
	}
	if in.TopP != nil {
		gc.TopP, set = in.TopP, true
	}
	if len(in.Stop) > 0 {
		gc.StopSequences, set = in.Stop, true
	}
	if in.N != nil {
		if *in.N < 1 {
			return nil, invalid("n", "n must be at least 1")
		}
		gc.CandidateCount, set = in.N, true
	}
	if in.Seed != nil {
		if *in.Seed < math.MinInt32 || *in.Seed > math.MaxInt32 {
			return nil, invalid("seed", "gemini accepts a 32-bit seed")
		}
		gc.Seed, set = in.Seed, true
	}
	for _, f := range []struct {
		key string
		dst **float64
	}{{"presence_penalty", &gc.PresencePenalty}, {"frequency_penalty", &gc.FrequencyPenalty}} {
		raw, ok := in.Extra[f.key]
		if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, invalid(f.key, f.key+" must be a number")
		}
		*f.dst, set = &v, true
	}
	if rf := bytes.TrimSpace(in.ResponseFormat); len(rf) > 0 && !bytes.Equal(rf, []byte("null")) {
		var o struct {
			Type       string `json:"type"`
			JSONSchema *struct {
				Name   string          `json:"name"`
				Schema json.RawMessage `json:"schema"`
			} `json:"json_schema"`
		}
		if err := json.Unmarshal(rf, &o); err != nil {
			return nil, invalid("response_format", "malformed response_format")
		}
		switch o.Type {
		case "text":
		case "json_object":
			gc.ResponseMIMEType, set = "application/json", true
		case "json_schema":
			gc.ResponseMIMEType, set = "application/json", true
			if o.JSONSchema == nil {
				return nil, invalid("response_format.json_schema", "json_schema response format without a schema")
			}
			if s := bytes.TrimSpace(o.JSONSchema.Schema); len(s) > 0 && !bytes.Equal(s, []byte("null")) {
				if s[0] != '{' || !json.Valid(s) {
					return nil, invalid("response_format.json_schema.schema", "schema must be a JSON object")
				}
				gc.ResponseJSONSchema = json.RawMessage(s)
			}
		default:
			return nil, invalid("response_format.type", "unsupported response_format type "+strconv.Quote(o.Type))
		}
	}
	if !set {
		return nil, nil
	}
	return &gc, nil
}
