package openai

import (
	"bytes"
	"encoding/json"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// StreamDecoder decodes one OpenAI chat completions stream (a sequence of
// chat.completion.chunk events ending with "data: [DONE]") into canonical
// deltas. Use it for one stream, from one goroutine at a time.
//
// The proxy relays OpenAI streams to OpenAI clients without decoding them
// (see Observe); the decoder serves translation and error events.
type StreamDecoder struct {
	usage    llm.Usage
	hasUsage bool
	done     bool
}

type wireChunk struct {
	ID      string            `json:"id"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []wireChunkChoice `json:"choices"`
	Usage   *wireUsage        `json:"usage"`
	Error   json.RawMessage   `json:"error"`
}

type wireChunkChoice struct {
	Index        int       `json:"index"`
	Delta        wireDelta `json:"delta"`
	FinishReason *string   `json:"finish_reason"`
}

type wireDelta struct {
	Role      string              `json:"role"`
	Content   *string             `json:"content"`
	Refusal   *string             `json:"refusal"`
	ToolCalls []wireToolCallDelta `json:"tool_calls"`
}

type wireToolCallDelta struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// Decode appends the deltas ev carries to dst:
//
//   - a chunk yields one Delta per choice (role, content, refusal, tool call
//     fragments, finish reason), with the chunk's id, model and created;
//   - the usage chunk (choices empty, absent or null, usage set) yields one
//     Delta with only Usage (and id, model, created); usage riding on a chunk
//     that has choices is recorded for Usage but yields no extra Delta;
//   - "[DONE]" yields nothing and makes Done report true;
//   - empty data yields nothing;
//   - an error event ({"error":{...}} as data, or an event named "error")
//     is returned as an *llm.Error classified by its type and code
//     (server_error is KindUpstream);
//   - data that is not a JSON object is an *llm.Error of Kind KindUpstream.
//
// The strings in the deltas do not alias ev.
func (s *StreamDecoder) Decode(ev *sse.Event, dst []llm.Delta) ([]llm.Delta, error) {
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 {
		return dst, nil
	}
	if string(data) == "[DONE]" {
		s.done = true
		return dst, nil
	}
	if string(ev.Name) == "error" {
		return dst, classify(200, nil, data)
	}
	var c wireChunk
	if err := json.Unmarshal(data, &c); err != nil {
		return dst, &llm.Error{Kind: llm.KindUpstream, Msg: "The upstream sent an invalid stream event.", Err: err}
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		return dst, classify(200, nil, data)
	}
	var u *llm.Usage
	if c.Usage != nil {
		v := c.Usage.usage()
		s.usage, s.hasUsage = v, true
		u = &v
	}
	if len(c.Choices) == 0 {
		if u != nil {
			dst = append(dst, llm.Delta{ID: c.ID, Model: c.Model, Created: c.Created, Usage: u})
		}
		return dst, nil
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		d := llm.Delta{ID: c.ID, Model: c.Model, Created: c.Created, Index: ch.Index, Role: ch.Delta.Role}
		if ch.Delta.Content != nil {
			d.Content = *ch.Delta.Content
		}
		if ch.Delta.Refusal != nil {
			d.Refusal = *ch.Delta.Refusal
		}
		if ch.FinishReason != nil {
			d.FinishReason = *ch.FinishReason
		}
		if n := len(ch.Delta.ToolCalls); n > 0 {
			d.ToolCalls = make([]llm.ToolCallDelta, n)
			for j := range ch.Delta.ToolCalls {
				tc := &ch.Delta.ToolCalls[j]
				d.ToolCalls[j] = llm.ToolCallDelta{Index: tc.Index, ID: tc.ID, Type: tc.Type,
					Name: tc.Function.Name, Arguments: tc.Function.Arguments}
			}
		}
		dst = append(dst, d)
	}
	return dst, nil
}

// Usage returns the last usage the stream reported (OpenAI's figure is
// cumulative), and whether there was one.
func (s *StreamDecoder) Usage() (llm.Usage, bool) { return s.usage, s.hasUsage }

// Done reports whether "data: [DONE]" was seen.
func (s *StreamDecoder) Done() bool { return s.done }
