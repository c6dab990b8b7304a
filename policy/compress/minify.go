package compress

import (
	"encoding/json"
	"slices"
)

// minify removes the insignificant white space of JSON texts with
// json.Compact, so that key order, numbers and strings stay exactly as they
// were: the tools' parameter schemas and response_format (unless
// PreservePrefix protects them), tool results whose content (or text part)
// is a JSON object or array, and the arguments of assistant tool calls.
// Text that is not valid JSON is left alone.
func (st *run) minify() {
	r := st.r
	if !st.c.opts.PreservePrefix {
		for i := range r.Tools {
			f := &r.Tools[i].Function
			if nw, ok := st.compactRaw(f.Parameters); ok {
				f.Parameters = nw
			}
		}
		if nw, ok := st.compactRaw(r.ResponseFormat); ok {
			r.ResponseFormat = nw
		}
	}
	msgs := r.Messages
	for i := range msgs {
		if !st.touchable(i) {
			continue
		}
		m := &msgs[i]
		cand := *m
		dirty := false
		switch {
		case isTool(m):
			if s, ok := st.compactString(m.Content); ok {
				cand.Content, dirty = s, true
			}
			copied := false
			for j := range m.Parts {
				p := &m.Parts[j]
				if p.Type != "text" || len(p.Raw) > 0 {
					continue
				}
				if s, ok := st.compactString(p.Text); ok {
					if !copied {
						cand.Parts, copied = slices.Clone(m.Parts), true
					}
					cand.Parts[j].Text, dirty = s, true
				}
			}
		case len(m.ToolCalls) > 0:
			copied := false
			for j := range m.ToolCalls {
				if s, ok := st.compactString(m.ToolCalls[j].Function.Arguments); ok {
					if !copied {
						cand.ToolCalls, copied = slices.Clone(m.ToolCalls), true
					}
					cand.ToolCalls[j].Function.Arguments, dirty = s, true
				}
			}
		}
		if dirty {
			st.accept(i, &cand, MinifyJSON)
		}
	}
}

// compactString returns s compacted and true, or false when s is not a
// JSON object or array or is compact already.
func (st *run) compactString(s string) (string, bool) {
	if !looksJSON(s) {
		return "", false
	}
	st.src = append(st.src[:0], s...)
	if !st.compact(st.src) {
		return "", false
	}
	return st.out.String(), true
}

// compactRaw returns a compacted copy of raw and true when that saves
// tokens, or false.
func (st *run) compactRaw(raw json.RawMessage) (json.RawMessage, bool) {
	if len(raw) == 0 || !st.compact(raw) {
		return nil, false
	}
	old := st.c.counter.CountText(st.model, string(raw))
	n := st.c.counter.CountText(st.model, st.out.String())
	if n >= old {
		return nil, false
	}
	st.credit(MinifyJSON, old-n)
	return append(json.RawMessage(nil), st.out.Bytes()...), true
}

// compact leaves src compacted in st.out and reports whether that is valid
// and shorter than src.
func (st *run) compact(src []byte) bool {
	st.out.Reset()
	if json.Compact(&st.out, src) != nil {
		return false
	}
	return st.out.Len() < len(src)
}
