package anthropic

import (
	"encoding/json"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// StreamEncoder writes canonical deltas as a Messages API SSE stream, for
// an Anthropic-native client. It keeps the state the protocol needs (which
// content block is open, which tool call owns which block) and is used by
// one goroutine, for one stream.
//
// The stream it writes is what Anthropic sends: message_start, then for each
// text run or tool call a content_block_start, its content_block_delta
// events (text_delta, input_json_delta) and a content_block_stop, then
// message_delta (stop_reason and cumulative usage) and message_stop. Every
// event has an "event:" line naming its type. Blocks are numbered from 0 in
// the order they start, as Anthropic's clients require.
//
// Only choice 0 is written. message_delta waits for Finish, because an
// OpenAI upstream reports usage after the finish reason.
type StreamEncoder struct {
	id, model string

	started, closed bool

	next     int         // index of the next content block
	open     int         // index of the open block, -1 when none
	openTool bool        // the open block is a tool_use block
	tools    map[int]int // tool call index -> content block index

	stop      string // stop_reason from the finish reason, "" until seen
	usage     llm.Usage
	haveUsage bool

	buf []byte // scratch for event data
}

// NewStreamEncoder returns an encoder for one stream. id and model name the
// message in message_start; when empty, those of the first delta are used.
func NewStreamEncoder(id, model string) *StreamEncoder {
	return &StreamEncoder{id: id, model: model, open: -1}
}

// Closed reports whether the stream was ended by Finish or AppendError;
// Append, Finish and AppendError do nothing after that.
func (e *StreamEncoder) Closed() bool { return e.closed }

// Append appends the events for d to dst: message_start before the first
// delta, then content_block events for its text (Content and Refusal) and
// tool calls. A tool call delta with an index not seen before opens a
// tool_use block (with its ID and Name); its Arguments become
// input_json_delta events of that block. A FinishReason closes the open
// block and is kept for message_delta; a Usage is kept for it too.
func (e *StreamEncoder) Append(dst []byte, d *llm.Delta) []byte {
	if e.closed || d == nil || d.Index != 0 {
		return dst
	}
	if e.id == "" {
		e.id = d.ID
	}
	if e.model == "" {
		e.model = d.Model
	}
	if d.Usage != nil {
		e.usage, e.haveUsage = *d.Usage, true
	}
	if !e.started {
		dst = e.start(dst)
	}
	if text := d.Content + d.Refusal; text != "" {
		if e.open < 0 || e.openTool {
			dst = e.closeBlock(dst)
			dst = e.startBlock(dst, block{Type: "text"}, false)
		}
		dst = e.event(dst, "content_block_delta", blockDeltaOut{
			Type: "content_block_delta", Index: e.open,
			Delta: deltaOut{Type: "text_delta", Text: &text},
		})
	}
	for i := range d.ToolCalls {
		tc := &d.ToolCalls[i]
		idx, ok := e.tools[tc.Index]
		if !ok {
			if len(e.tools) >= maxBlocks {
				continue
			}
			if e.tools == nil {
				e.tools = make(map[int]int)
			}
			dst = e.closeBlock(dst)
			idx = e.next
			e.tools[tc.Index] = idx
			dst = e.startBlock(dst, block{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: json.RawMessage("{}")}, true)
		}
		if tc.Arguments != "" {
			// Arguments of a call whose block was already closed (an
			// upstream interleaving parallel calls) still go to that
			// block: Anthropic's clients accumulate by index.
			args := tc.Arguments
			dst = e.event(dst, "content_block_delta", blockDeltaOut{
				Type: "content_block_delta", Index: idx,
				Delta: deltaOut{Type: "input_json_delta", PartialJSON: &args},
			})
		}
	}
	if d.FinishReason != "" {
		dst = e.closeBlock(dst)
		e.stop = stopReason(d.FinishReason)
	}
	return dst
}

// Finish ends the stream: it closes the open block, writes message_delta
// with the stop reason (end_turn when no finish reason was seen) and the
// usage, then message_stop. u is the final cumulative usage; its non-zero
// fields override the usage seen in deltas. A stream that never started
// gets its message_start first, so the client always sees a well-formed
// message.
func (e *StreamEncoder) Finish(dst []byte, u llm.Usage) []byte {
	if e.closed {
		return dst
	}
	if !e.started {
		dst = e.start(dst)
	}
	dst = e.closeBlock(dst)
	usage := u
	if e.haveUsage {
		usage = e.usage
		usage.Merge(u)
	}
	stop := e.stop
	if stop == "" {
		stop = "end_turn"
	}
	dst = e.event(dst, "message_delta", messageDeltaOut{
		Type:  "message_delta",
		Delta: stopDeltaOut{StopReason: stop},
		Usage: anthropicUsage(usage),
	})
	dst = e.event(dst, "message_stop", typeOnly{Type: "message_stop"})
	e.closed = true
	return dst
}

// AppendError writes an Anthropic error event for err (as EncodeError
// shapes it) and ends the stream: Anthropic streams report failures after
// the first byte this way, without message_stop.
func (e *StreamEncoder) AppendError(dst []byte, err *llm.Error) []byte {
	if e.closed {
		return dst
	}
	e.closed = true
	body := errorBody(err)
	return e.event(dst, "error", wireError{Type: "error", Error: &body})
}

func (e *StreamEncoder) start(dst []byte) []byte {
	e.started = true
	msg := messageStartBody{
		ID: e.id, Type: "message", Role: "assistant", Model: e.model,
		Content: []block{}, Usage: &usageOut{},
	}
	if e.haveUsage {
		msg.Usage = anthropicUsage(e.usage)
		msg.Usage.OutputTokens = 0
	}
	return e.event(dst, "message_start", messageStartOut{Type: "message_start", Message: msg})
}

func (e *StreamEncoder) startBlock(dst []byte, b block, tool bool) []byte {
	e.open, e.openTool = e.next, tool
	e.next++
	var cb any = b
	if b.Type == "text" {
		cb = textStart{Type: "text"}
	}
	return e.event(dst, "content_block_start", blockStartOut{Type: "content_block_start", Index: e.open, ContentBlock: cb})
}

func (e *StreamEncoder) closeBlock(dst []byte) []byte {
	if e.open < 0 {
		return dst
	}
	dst = e.event(dst, "content_block_stop", blockStopOut{Type: "content_block_stop", Index: e.open})
	e.open, e.openTool = -1, false
	return dst
}

// event appends one named SSE event whose data is the JSON of v.
func (e *StreamEncoder) event(dst []byte, name string, v any) []byte {
	data, err := appendJSON(e.buf[:0], v)
	if err != nil { // unreachable: the values hold strings and numbers only
		return dst
	}
	e.buf = data
	return sse.AppendEvent(dst, []byte(name), data)
}

type typeOnly struct {
	Type string `json:"type"`
}

type messageStartOut struct {
	Type    string           `json:"type"`
	Message messageStartBody `json:"message"`
}

type messageStartBody struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      []block   `json:"content"`
	StopReason   *string   `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        *usageOut `json:"usage"`
}

type blockStartOut struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock any    `json:"content_block"`
}

// textStart is the empty text block of content_block_start; block would
// omit its empty text field.
type textStart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type blockDeltaOut struct {
	Type  string   `json:"type"`
	Index int      `json:"index"`
	Delta deltaOut `json:"delta"`
}

type deltaOut struct {
	Type        string  `json:"type"`
	Text        *string `json:"text,omitempty"`
	PartialJSON *string `json:"partial_json,omitempty"`
}

type blockStopOut struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

type messageDeltaOut struct {
	Type  string       `json:"type"`
	Delta stopDeltaOut `json:"delta"`
	Usage *usageOut    `json:"usage"`
}

type stopDeltaOut struct {
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}
