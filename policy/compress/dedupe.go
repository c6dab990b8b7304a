package compress

import (
	"cmp"
	"slices"

	"github.com/aigw/aigw/providers/llm"
)

// minDupBytes is the least text a user, assistant or tool message must
// carry to be deduplicated: short replies ("ok", "yes please") repeat
// legitimately and removing them would change the conversation.
const minDupBytes = 64

// Duplicate classes: messages are only compared within one class.
const (
	dupNone uint8 = iota
	dupSystem
	dupMessage
	dupTool
)

// dupKey is one candidate message: its class, content hash and index.
type dupKey struct {
	h     uint64
	i     int32
	class uint8
}

// dedupe removes exact duplicates:
//
//   - a system or developer message identical (role, name, content) to an
//     earlier one is removed: the first occurrence stays;
//   - a user message, or an assistant message without tool calls, with at
//     least 64 bytes of text and identical (role, name, content, refusal)
//     to a later one is removed: the last occurrence stays, nearest to the
//     question and the last to be dropped by fit_history. Only messages
//     before the last user message are removed; the last user message
//     itself is never touched, though it counts as the later occurrence.
//     The conversation's opening (first non-system) message is never
//     removed either, since providers want conversations to open with the
//     user: when it is the first copy, it stays and the later copies go;
//   - a tool result with at least 64 bytes identical in content to a later
//     tool result keeps its place and tool_call_id (the pairing with its
//     assistant call must stay valid) but its content becomes a short
//     reference to the later result's call id.
//
// Assistant messages with tool calls are never removed, nor is anything
// PreservePrefix protects. Texts aigw inserted ("[aigw:" ...) are never
// candidates, so dedupe is idempotent.
func (st *run) dedupe() {
	msgs := st.r.Messages
	keys := st.keys[:0]
	for i := range msgs {
		m := &msgs[i]
		if cl := dupClass(m); cl != dupNone {
			keys = append(keys, dupKey{h: hashMessage(m, cl), i: int32(i), class: cl})
		}
	}
	st.keys = keys
	if len(keys) < 2 {
		return
	}
	slices.SortFunc(keys, func(a, b dupKey) int {
		if c := cmp.Compare(a.h, b.h); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	st.mark = slices.Grow(st.mark[:0], len(msgs))[:len(msgs)]
	clear(st.mark)
	removed := 0
	for g := 0; g < len(keys); {
		e := g + 1
		for e < len(keys) && keys[e].h == keys[g].h {
			e++
		}
		if e-g > 1 {
			removed += st.dedupeGroup(keys[g:e])
		}
		g = e
	}
	if removed == 0 {
		return
	}
	w := 0
	for i := range msgs {
		if st.mark[i] {
			continue
		}
		msgs[w], st.costs[w] = msgs[i], st.costs[i]
		w++
	}
	clear(msgs[w:])
	st.r.Messages, st.costs = msgs[:w], st.costs[:w]
	st.layout()
}

// dedupeGroup handles messages of equal hash, in index order, and returns
// how many it marked for removal.
func (st *run) dedupeGroup(g []dupKey) int {
	msgs := st.r.Messages
	removed := 0
	if g[0].class == dupSystem {
		keep := g[0]
		for _, k := range g[1:] {
			if k.class == keep.class && sameMessage(&msgs[keep.i], &msgs[k.i], k.class) && st.touchable(int(k.i)) {
				st.remove(int(k.i))
				removed++
			}
		}
		return removed
	}
	keep := g[len(g)-1]
	if first := g[0]; int(first.i) == st.firstTurn && first.class == dupMessage && first.class == keep.class &&
		sameMessage(&msgs[first.i], &msgs[keep.i], first.class) {
		keep = first // the conversation keeps opening with the same message
	}
	for _, k := range g {
		i := int(k.i)
		if k == keep || k.class != keep.class || !sameMessage(&msgs[keep.i], &msgs[i], k.class) || !st.touchable(i) {
			continue
		}
		switch k.class {
		case dupMessage:
			if i < st.lastUser && i != st.firstTurn {
				st.remove(i)
				removed++
			}
		case dupTool:
			if k.i < keep.i {
				cand := msgs[i]
				cand.Content, cand.Parts, cand.HasContent = toolRef(msgs[keep.i].ToolCallID), nil, true
				st.accept(i, &cand, Dedupe)
			}
		}
	}
	return removed
}

// remove marks message i removed and credits its tokens to dedupe.
func (st *run) remove(i int) {
	st.mark[i] = true
	st.saved[Dedupe.index()] += st.msgCost(i)
	st.changed = true
}

// toolRef is the content that replaces a tool result repeated later.
func toolRef(id string) string {
	return markerPrefix + " same content as the result of tool call " + id + " below]"
}

// dupClass returns the class m is compared in, or dupNone.
func dupClass(m *llm.Message) uint8 {
	if hasMarkerPrefix(m.Content) {
		return dupNone
	}
	switch {
	case isSystem(m.Role):
		if len(m.ToolCalls) == 0 && (m.Content != "" || len(m.Parts) > 0) {
			return dupSystem
		}
	case m.Role == "user", m.Role == "assistant" && len(m.ToolCalls) == 0:
		if textBytes(m) >= minDupBytes {
			return dupMessage
		}
	case isTool(m):
		if textBytes(m) >= minDupBytes {
			return dupTool
		}
	}
	return dupNone
}

// textBytes is the size of m's content.
func textBytes(m *llm.Message) int {
	n := len(m.Content) + len(m.Refusal)
	for j := range m.Parts {
		p := &m.Parts[j]
		n += len(p.Text) + len(p.Raw)
		if p.ImageURL != nil {
			n += len(p.ImageURL.URL)
		}
	}
	return n
}

// FNV-1a, 64 bit: deterministic across processes, allocation-free.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	h ^= 0xff // field separator, a byte UTF-8 text never holds
	h *= fnvPrime
	return h
}

// hashMessage hashes what sameMessage compares.
func hashMessage(m *llm.Message, class uint8) uint64 {
	h := uint64(fnvOffset)
	h ^= uint64(class)
	h *= fnvPrime
	if class != dupTool {
		h = fnvString(h, m.Role)
		h = fnvString(h, m.Name)
		h = fnvString(h, m.Refusal)
	}
	h = fnvString(h, m.Content)
	for j := range m.Parts {
		p := &m.Parts[j]
		h = fnvString(h, p.Type)
		h = fnvString(h, p.Text)
		h = fnvString(h, string(p.Raw))
		if p.ImageURL != nil {
			h = fnvString(h, p.ImageURL.URL)
			h = fnvString(h, p.ImageURL.Detail)
		}
	}
	return h
}

// sameMessage reports whether a and b are duplicates within class.
func sameMessage(a, b *llm.Message, class uint8) bool {
	if class != dupTool && (a.Role != b.Role || a.Name != b.Name || a.Refusal != b.Refusal) {
		return false
	}
	return a.Content == b.Content && slices.EqualFunc(a.Parts, b.Parts, samePart)
}

func samePart(a, b llm.Part) bool {
	if a.Type != b.Type || a.Text != b.Text || string(a.Raw) != string(b.Raw) || (a.ImageURL == nil) != (b.ImageURL == nil) {
		return false
	}
	return a.ImageURL == nil || *a.ImageURL == *b.ImageURL
}
