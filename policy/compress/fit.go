package compress

import (
	"strconv"

	"github.com/aigw/aigw/providers/llm"
)

// unit is one droppable turn: messages [start, end), the system and
// developer messages among them excepted.
type unit struct{ start, end int }

// fitMarker is the note that replaces the n messages fit_history dropped.
func fitMarker(n int) llm.Message {
	return llm.Message{Role: "user", HasContent: true,
		Content: markerPrefix + " " + strconv.Itoa(n) + " earlier messages were omitted to fit the context window]"}
}

// fit drops whole turns until the request's total tokens are within limit
// and returns the new total; it changes nothing and returns total when
// even dropping every droppable turn would not be enough.
//
// A turn starts at a user message and runs to the next one (messages
// before the first user message form a turn of their own), so an
// assistant's tool calls and the tool results answering them always go
// together. System and developer messages are never dropped, wherever they
// are; nor is the turn of the last user message, nor the KeepLastTurns-1
// turns before it. Turns go oldest first; with PreservePrefix, turns after
// the protected prefix go first (oldest first) and turns inside it only
// then (newest first), so the dropped turns are always one contiguous run.
// One user message, "[aigw: N earlier messages were omitted to fit the
// context window]", takes the place of that run: a user note rather than a
// system one, because adapters hoist system messages into the provider's
// system prompt, and a changing system prompt defeats prompt caching.
func (st *run) fit(total, limit int) int {
	msgs := st.r.Messages
	if st.lastUser < 0 {
		return total
	}
	units := st.units[:0]
	for i := 0; i < st.lastUser; i++ {
		switch {
		case isSystem(msgs[i].Role):
		case msgs[i].Role == "user" || len(units) == 0:
			units = append(units, unit{i, i + 1})
		default:
			units[len(units)-1].end = i + 1
		}
	}
	st.units = units
	nd := len(units) - (st.c.keep - 1)
	if nd <= 0 {
		return total
	}
	p := 0 // units starting in the protected prefix
	for p < nd && units[p].start < st.prefixEnd {
		p++
	}
	// order(k) is the k-th unit to drop.
	order := func(k int) int {
		if k < nd-p {
			return p + k
		}
		return p - 1 - (k - (nd - p))
	}
	goal := total - limit // what dropped-marker must reach
	dropped, n := 0, 0    // tokens and messages dropped so far
	for k := 0; k < nd; k++ {
		u := units[order(k)]
		for i := u.start; i < u.end; i++ {
			if !isSystem(msgs[i].Role) {
				dropped += st.msgCost(i)
				n++
			}
		}
		if dropped < goal {
			continue
		}
		marker := fitMarker(n)
		mc := st.costOf(&marker)
		if dropped-mc < goal {
			continue
		}
		var lo, hi int
		if k < nd-p {
			lo, hi = units[p].start, units[p+k].end
		} else {
			lo, hi = units[order(k)].start, units[nd-1].end
		}
		cand := st.candidate(lo, hi, &marker)
		after := total - dropped + mc
		if !st.exact {
			probe := *st.r
			probe.Messages = cand
			if after = st.c.counter.CountRequest(st.model, &probe); after > limit {
				goal = dropped - mc + after - limit
				continue
			}
		}
		w := copy(msgs, cand)
		clear(msgs[w:])
		clear(cand)
		st.r.Messages = msgs[:w]
		st.saved[FitHistory.index()] += total - after
		st.omitted = n
		st.changed = true
		st.costs = st.costs[:0] // no longer indexed like the messages
		return after
	}
	return total
}

// candidate builds in st.cand the messages without the non-system
// messages of [lo, hi), with marker in place of the first of them.
func (st *run) candidate(lo, hi int, marker *llm.Message) []llm.Message {
	msgs := st.r.Messages
	cand := st.cand[:0]
	placed := false
	for i := range msgs {
		if i >= lo && i < hi && !isSystem(msgs[i].Role) {
			if !placed {
				cand = append(cand, *marker)
				placed = true
			}
			continue
		}
		cand = append(cand, msgs[i])
	}
	st.cand = cand
	return cand
}
