package anthropic

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// maxBlocks bounds the content blocks a StreamDecoder tracks, so that a
// hostile stream cannot grow its memory without limit.
const maxBlocks = 4096

// StreamDecoder decodes one Messages API SSE stream into canonical deltas.
// It is used by one goroutine at a time, for one stream only; it copies
// what it keeps, so events may be reused after Decode returns.
//
// Events and the deltas they give:
//
//	message_start        a delta with ID, Model, Created and Role "assistant"
//	content_block_start  tool_use: a ToolCallDelta with ID, Type "function"
//	                     and Name; tool calls are numbered from 0 in order
//	content_block_delta  text_delta: Content; input_json_delta: Arguments
//	message_delta        Arguments "{}" for every tool call that got no
//	                     argument, then FinishReason (when stop_reason is
//	                     set) and the cumulative Usage
//	message_stop         nothing; Done reports true from then on
//	error                an *llm.Error, classified like ClassifyError
//
// ping, thinking and signature deltas, server-tool blocks and unknown event
// types give nothing (Anthropic may add event types). Every delta carries
// the message's ID, Model and Created.
type StreamDecoder struct {
	id      string
	model   string
	created int64

	usage usageState
	done  bool

	// blocks maps an Anthropic content block index to what it is.
	blocks map[int]blockState
	tools  int // tool_use blocks seen so far
}

type blockState struct {
	tool    int // tool call index; -1 for a non-tool block
	argSent bool
}

// NewStreamDecoder returns a decoder for the stream answering in. in may be
// nil; its model names the deltas until message_start names the upstream
// model.
func (a Adapter) NewStreamDecoder(in *llm.Request) *StreamDecoder {
	d := &StreamDecoder{created: a.now().Unix()}
	if in != nil {
		d.model = in.Model
	}
	return d
}

// streamEvent is the union of the Messages API stream events.
type streamEvent struct {
	Type         string         `json:"type"`
	Message      *wireMessage   `json:"message"`
	Index        int            `json:"index"`
	ContentBlock *block         `json:"content_block"`
	Delta        *streamDelta   `json:"delta"`
	Usage        *wireUsage     `json:"usage"`
	Error        *wireErrorBody `json:"error"`
}

type streamDelta struct {
	Type        string  `json:"type"`
	Text        string  `json:"text"`
	PartialJSON string  `json:"partial_json"`
	StopReason  *string `json:"stop_reason"`
}

// Decode appends the deltas carried by ev to dst. The event type is the
// SSE event name, or the data's "type" field when the event has no name.
// A malformed event of a known type is an *llm.Error of kind KindUpstream;
// an error event is the *llm.Error it describes. Events after message_stop
// are ignored.
func (d *StreamDecoder) Decode(ev *sse.Event, dst []llm.Delta) ([]llm.Delta, error) {
	if ev == nil || d.done {
		return dst, nil
	}
	name := string(ev.Name)
	data := bytes.TrimSpace(ev.Data)
	if name == "" {
		if len(data) == 0 {
			return dst, nil
		}
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return dst, badAnswer("anthropic sent a malformed stream event", err)
		}
		name = head.Type
	}
	switch name {
	case "message_start", "content_block_start", "content_block_delta",
		"message_delta", "message_stop", "error":
	default:
		// ping, unknown events, and content_block_stop: a tool call's
		// missing arguments are settled at the end of the message
		// (emptyArgs), in case they still come after the stop.
		return dst, nil
	}
	var e streamEvent
	if len(data) > 0 {
		if err := json.Unmarshal(data, &e); err != nil {
			return dst, badAnswer("anthropic sent a malformed "+name+" event", err)
		}
	}
	switch name {
	case "message_start":
		return d.messageStart(&e, dst), nil
	case "content_block_start":
		return d.blockStart(&e, dst)
	case "content_block_delta":
		return d.blockDelta(&e, dst), nil
	case "message_delta":
		return d.messageDelta(&e, dst), nil
	case "message_stop":
		d.done = true
		return d.emptyArgs(dst), nil
	default: // "error"
		return dst, classify(0, e.Error)
	}
}

// Usage returns the cumulative usage seen so far, and whether any was.
func (d *StreamDecoder) Usage() (llm.Usage, bool) {
	return d.usage.canonical(), d.usage.seen
}

// Done reports whether message_stop was seen.
func (d *StreamDecoder) Done() bool { return d.done }

func (d *StreamDecoder) delta() llm.Delta {
	return llm.Delta{ID: d.id, Model: d.model, Created: d.created}
}

func (d *StreamDecoder) messageStart(e *streamEvent, dst []llm.Delta) []llm.Delta {
	if m := e.Message; m != nil {
		if m.ID != "" {
			d.id = m.ID
		}
		if m.Model != "" {
			d.model = m.Model
		}
		d.usage.merge(m.Usage)
	}
	out := d.delta()
	out.Role = "assistant"
	return append(dst, out)
}

func (d *StreamDecoder) blockStart(e *streamEvent, dst []llm.Delta) ([]llm.Delta, error) {
	if d.blocks == nil {
		d.blocks = make(map[int]blockState)
	}
	if len(d.blocks) >= maxBlocks {
		return dst, badAnswer("anthropic sent too many content blocks", argError(strconv.Itoa(maxBlocks)+" blocks"))
	}
	cb := e.ContentBlock
	if cb == nil {
		d.blocks[e.Index] = blockState{tool: -1}
		return dst, nil
	}
	switch cb.Type {
	case "text":
		d.blocks[e.Index] = blockState{tool: -1}
		if cb.Text != "" {
			out := d.delta()
			out.Content = cb.Text
			dst = append(dst, out)
		}
	case "tool_use":
		st := blockState{tool: d.tools}
		d.tools++
		tc := llm.ToolCallDelta{Index: st.tool, ID: cb.ID, Type: "function", Name: cb.Name}
		// The input of a streamed tool_use block arrives in
		// input_json_delta events; the start carries {} as a placeholder.
		if args := compactArgs(cb.Input); args != "{}" {
			tc.Arguments = args
			st.argSent = true
		}
		d.blocks[e.Index] = st
		out := d.delta()
		out.ToolCalls = []llm.ToolCallDelta{tc}
		dst = append(dst, out)
	default: // thinking, redacted_thinking, server tools
		d.blocks[e.Index] = blockState{tool: -1}
	}
	return dst, nil
}

func (d *StreamDecoder) blockDelta(e *streamEvent, dst []llm.Delta) []llm.Delta {
	if e.Delta == nil {
		return dst
	}
	switch e.Delta.Type {
	case "text_delta":
		if e.Delta.Text == "" {
			return dst
		}
		out := d.delta()
		out.Content = e.Delta.Text
		return append(dst, out)
	case "input_json_delta":
		st, ok := d.blocks[e.Index]
		if !ok || st.tool < 0 || e.Delta.PartialJSON == "" {
			return dst
		}
		st.argSent = true
		d.blocks[e.Index] = st
		out := d.delta()
		out.ToolCalls = []llm.ToolCallDelta{{Index: st.tool, Arguments: e.Delta.PartialJSON}}
		return append(dst, out)
	default: // thinking_delta, signature_delta, citations_delta, ...
		return dst
	}
}

// emptyArgs gives every tool call that received no argument an empty
// object, in one delta: OpenAI clients parse the arguments, and "" is not
// JSON. It runs at message_delta (or message_stop), not at
// content_block_stop, so that arguments arriving after their block's stop
// (a re-encoded stream that interleaved calls) are not preceded by "{}".
func (d *StreamDecoder) emptyArgs(dst []llm.Delta) []llm.Delta {
	var calls []llm.ToolCallDelta
	for i, st := range d.blocks {
		if st.tool >= 0 && !st.argSent {
			st.argSent = true
			d.blocks[i] = st
			calls = append(calls, llm.ToolCallDelta{Index: st.tool, Arguments: "{}"})
		}
	}
	if len(calls) == 0 {
		return dst
	}
	slices.SortFunc(calls, func(a, b llm.ToolCallDelta) int { return a.Index - b.Index })
	out := d.delta()
	out.ToolCalls = calls
	return append(dst, out)
}

func (d *StreamDecoder) messageDelta(e *streamEvent, dst []llm.Delta) []llm.Delta {
	dst = d.emptyArgs(dst)
	d.usage.merge(e.Usage)
	out := d.delta()
	if e.Delta != nil && e.Delta.StopReason != nil {
		out.FinishReason = finishReason(*e.Delta.StopReason)
	}
	if d.usage.seen {
		u := d.usage.canonical()
		out.Usage = &u
	}
	if out.FinishReason == "" && out.Usage == nil {
		return dst
	}
	return append(dst, out)
}
