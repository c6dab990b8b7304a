package gemini

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/sse"
)

// maxCandidates bounds the candidate index a stream may use (Gemini allows
// a handful; the bound keeps a hostile stream from growing the decoder).
const maxCandidates = 64

// StreamDecoder decodes one streamGenerateContent?alt=sse answer. Each SSE
// event's data is a complete GenerateContentResponse chunk; the decoder
// turns it into canonical deltas:
//
//   - the first delta of each candidate carries Role "assistant";
//   - non-thought text parts become one Content delta per chunk;
//   - each functionCall part arrives whole and becomes one complete
//     ToolCallDelta (Index, ID, Type "function", Name, Arguments), with ids
//     generated as in DecodeChat;
//   - a finishReason becomes a FinishReason delta (mapped as in DecodeChat);
//     a prompt blocked before any candidate becomes a content_filter finish
//     of choice 0;
//   - usageMetadata replaces the usage seen so far (every chunk carries the
//     cumulative figures); one delta with only Usage set is emitted when the
//     stream is complete and usage is known;
//   - an "error" object (Google's status envelope, sent when a stream fails
//     after it started) is returned as an *llm.Error.
//
// A StreamDecoder is used by one goroutine, for one stream. Its memory is
// bounded independently of the stream's length.
type StreamDecoder struct {
	created int64
	id      string
	model   string

	cands []candState
	// want is the number of candidates the request asked for (n).
	want    int
	blocked bool

	usage     llm.Usage
	hasUsage  bool
	usageSent bool
	done      bool
}

type candState struct {
	started  bool
	finished bool
	calls    int
}

// NewStreamDecoder returns a decoder for the stream answering in; in's n
// (nil in means 1) tells how many candidates must finish before Done.
// Created is fixed now, from the adapter's clock.
func (a *Adapter) NewStreamDecoder(in *llm.Request) *StreamDecoder {
	want := 1
	if in != nil && in.N != nil && *in.N > 1 {
		want = min(*in.N, maxCandidates)
	}
	return &StreamDecoder{created: a.clock().Unix(), want: want}
}

// Decode appends the deltas carried by ev to dst. Events without data are
// ignored. A malformed chunk or a candidate index out of range is an
// *llm.Error of KindUpstream; an upstream error object is classified as
// ClassifyError would.
func (d *StreamDecoder) Decode(ev *sse.Event, dst []llm.Delta) ([]llm.Delta, error) {
	if ev == nil {
		return dst, nil
	}
	data := bytes.TrimSpace(ev.Data)
	if len(data) == 0 || bytes.Equal(data, []byte("[DONE]")) {
		return dst, nil
	}
	var r generateResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return dst, &llm.Error{Kind: llm.KindUpstream, Provider: ProviderType, Msg: "gemini: malformed stream event", Err: err}
	}
	if r.Error != nil {
		return dst, statusError(0, r.Error, "")
	}
	if d.id == "" {
		d.id = responseID(r.ResponseID, data)
	}
	if d.model == "" {
		d.model = r.ModelVersion
	}
	if r.UsageMetadata != nil {
		d.usage = usageFrom(r.UsageMetadata)
		d.hasUsage = true
	}

	for i := range r.Candidates {
		c := &r.Candidates[i]
		if c.Index < 0 || c.Index >= maxCandidates {
			return dst, &llm.Error{Kind: llm.KindUpstream, Provider: ProviderType, Msg: "gemini: stream candidate index " + strconv.Itoa(c.Index) + " out of range"}
		}
		st := d.cand(c.Index)
		if st.finished {
			continue // nothing follows a finished candidate
		}
		first := len(dst)

		var text strings.Builder
		var calls []llm.ToolCallDelta
		if c.Content != nil {
			for j := range c.Content.Parts {
				p := &c.Content.Parts[j]
				switch {
				case p.FunctionCall != nil:
					args := compactArgs(p.FunctionCall.Args)
					calls = append(calls, llm.ToolCallDelta{
						Index:     st.calls,
						ID:        toolCallID(r.ResponseID, c.Index, st.calls, p.FunctionCall.Name, args, p.ThoughtSignature),
						Type:      "function",
						Name:      p.FunctionCall.Name,
						Arguments: args,
					})
					st.calls++
				case p.Thought:
				default:
					text.WriteString(p.Text)
				}
			}
		}
		if text.Len() > 0 {
			dl := d.delta(c.Index)
			dl.Content = text.String()
			dst = append(dst, dl)
		}
		if len(calls) > 0 {
			dl := d.delta(c.Index)
			dl.ToolCalls = calls
			dst = append(dst, dl)
		}
		if fr := finishReason(c.FinishReason, st.calls > 0); fr != "" {
			dl := d.delta(c.Index)
			dl.FinishReason = fr
			dst = append(dst, dl)
			st.finished = true
		}
		if !st.started {
			st.started = true
			if len(dst) == first {
				dst = append(dst, d.delta(c.Index))
			}
			dst[first].Role = "assistant"
		}
	}

	if len(r.Candidates) == 0 && r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		st := d.cand(0)
		if !st.finished {
			dl := d.delta(0)
			if !st.started {
				dl.Role = "assistant"
				st.started = true
			}
			dl.FinishReason = llm.FinishContentFilter
			st.finished = true
			dst = append(dst, dl)
		}
		d.blocked = true
	}

	d.done = d.allFinished()
	if d.done && d.hasUsage && !d.usageSent {
		u := d.usage
		dl := d.delta(0)
		dl.Usage = &u
		dst = append(dst, dl)
		d.usageSent = true
	}
	return dst, nil
}

// Usage returns the latest usage snapshot and whether the stream reported
// any.
func (d *StreamDecoder) Usage() (llm.Usage, bool) { return d.usage, d.hasUsage }

// Done reports whether the answer is complete: the prompt was blocked, or as
// many candidates as the request asked for have finished and none is still
// open. Gemini sends no terminal event beyond the chunk carrying the last
// finishReason; the stream then ends (the proxy also treats EOF as the end,
// so a stream with fewer candidates than asked for still ends).
func (d *StreamDecoder) Done() bool { return d.done }

func (d *StreamDecoder) cand(i int) *candState {
	for len(d.cands) <= i {
		d.cands = append(d.cands, candState{})
	}
	return &d.cands[i]
}

func (d *StreamDecoder) delta(index int) llm.Delta {
	return llm.Delta{ID: d.id, Model: d.model, Created: d.created, Index: index}
}

func (d *StreamDecoder) allFinished() bool {
	if d.blocked {
		return true
	}
	finished := 0
	for i := range d.cands {
		c := &d.cands[i]
		if c.started && !c.finished {
			return false
		}
		if c.finished {
			finished++
		}
	}
	return finished > 0 && finished >= d.want
}
