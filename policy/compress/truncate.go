package compress

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// markerReserve is the tokens kept free for the truncation marker.
const markerReserve = 16

// truncate cuts every touchable tool result (its string content, or each of
// its text parts) longer than MaxToolResultTokens down to that many tokens:
// the head of the text, the marker "\n[... aigw truncated N tokens ...]" and,
// when ToolResultTailTokens is set, a newline and that many tokens of its
// end. N is the tokens cut out. Cuts fall on line ends when one is near, and
// always on UTF-8 boundaries; blanks at the cuts are dropped. With
// whitespace enabled, a text result is normalised again after the cut (a
// cut through a fenced block changes which lines are code), so that a
// second pass changes nothing. Tool
// results of the current turn (after the last user message) are truncated
// too: that is where oversized results usually are.
func (st *run) truncate() {
	msgs := st.r.Messages
	for i := range msgs {
		m := &msgs[i]
		if !isTool(m) || !st.touchable(i) {
			continue
		}
		saved := 0
		known := -1 // m.Content's tokens, when the message's cost gives them
		if st.exact && m.Parts == nil && len(m.Content) > st.c.maxTool {
			bare := *m
			bare.Content = ""
			known = st.msgCost(i) - st.costOf(&bare)
		}
		if s, d, ok := st.cut(m.Content, known); ok {
			m.Content, saved = s, d
		}
		copied := false
		for j := range m.Parts {
			p := &m.Parts[j]
			if p.Type != "text" || len(p.Raw) > 0 {
				continue
			}
			if s, d, ok := st.cut(p.Text, -1); ok {
				if !copied {
					m.Parts, copied = slices.Clone(m.Parts), true
				}
				m.Parts[j].Text = s
				saved += d
			}
		}
		if saved == 0 {
			continue
		}
		st.saved[TruncateToolResults.index()] += saved
		st.changed = true
		if st.exact && st.costs[i] >= 0 {
			st.costs[i] -= saved
		} else {
			st.costs[i] = -1
		}
	}
}

// cut returns s truncated and the tokens saved, or false when s is within
// the limit. total is s's count when known, -1 otherwise.
func (st *run) cut(s string, total int) (string, int, bool) {
	limit := st.c.maxTool
	if len(s) <= limit { // no tokenizer makes more tokens than bytes
		return "", 0, false
	}
	count := func(t string) int { return st.c.counter.CountText(st.model, t) }
	if total < 0 {
		total = count(s)
	}
	if total <= limit {
		return "", 0, false
	}
	headBudget := limit - st.c.tail - markerReserve
	for range 4 {
		k, nh := prefixWithin(s, headBudget, total, count)
		j, nt := len(s), 0
		if st.c.tail > 0 {
			j, nt = suffixWithin(s, st.c.tail, total, count)
			if j < k {
				j, nt = k, count(s[k:])
			}
		}
		head := strings.TrimRight(s[:k], " \t\r\n")
		tail := strings.TrimLeft(s[j:], "\r\n")
		removed := max(total-nh-nt, 1)
		var b strings.Builder
		b.Grow(len(head) + len(tail) + 48)
		b.WriteString(head)
		b.WriteString("\n[... aigw truncated ")
		b.WriteString(strconv.Itoa(removed))
		b.WriteString(" tokens ...]")
		if tail != "" {
			b.WriteByte('\n')
			b.WriteString(tail)
		}
		out := b.String()
		if st.c.Enabled(Whitespace) && !looksJSON(s) {
			// A cut through a fenced block changes which lines are code;
			// normalising again keeps a second pass a no-op.
			st.buf = normalizeText(st.buf[:0], out, st.c.opts.CodeWhitespace)
			if string(st.buf) != out {
				out = string(st.buf)
			}
		}
		n := count(out)
		if n <= limit || headBudget <= 0 {
			return out, total - n, n < total
		}
		headBudget -= n - limit + markerReserve
	}
	return "", 0, false
}

// prefixWithin returns the end of the longest prefix of s found to count at
// most budget tokens (within an eighth of it), cut at a line end when one
// is near, and the prefix's count. total is the count of s. It counts a few candidate prefixes, steering by the text's
// tokens per byte, rather than searching byte by byte.
func prefixWithin(s string, budget, total int, count func(string) int) (int, int) {
	if budget <= 0 {
		return 0, 0
	}
	best, bestN, prev := 0, 0, -1
	guess := int(int64(len(s)) * int64(budget) / int64(total))
	for range 6 {
		k := snapBack(s, min(guess, len(s)))
		if k == prev {
			break
		}
		prev = k
		n := count(s[:k])
		if n <= budget {
			if k > best {
				best, bestN = k, n
			}
			if n >= budget-budget/8 || k == len(s) {
				break
			}
			guess = k + int(int64(k)*int64(budget-n)/int64(max(n, 1)))
		} else {
			guess = int(int64(k) * int64(budget) / int64(n) * 15 / 16)
		}
	}
	return best, bestN
}

// suffixWithin is prefixWithin for the end of s: it returns the start of the
// longest suffix found to count at most budget tokens, starting a line when
// one starts near, and the suffix's count.
func suffixWithin(s string, budget, total int, count func(string) int) (int, int) {
	if budget <= 0 {
		return len(s), 0
	}
	best, bestN, prev := len(s), 0, -1
	guess := int(int64(len(s)) * int64(budget) / int64(total))
	for range 6 {
		j := snapForward(s, len(s)-min(guess, len(s)))
		if j == prev {
			break
		}
		prev = j
		size := len(s) - j
		n := count(s[j:])
		if n <= budget {
			if j < best {
				best, bestN = j, n
			}
			if n >= budget-budget/8 || j == 0 {
				break
			}
			guess = size + int(int64(size)*int64(budget-n)/int64(max(n, 1)))
		} else {
			guess = int(int64(size) * int64(budget) / int64(n) * 15 / 16)
		}
	}
	return best, bestN
}

// snapWindow bounds how far a cut moves to reach a line end.
func snapWindow(k int) int { return min(512, k/8) }

// snapBack moves the cut k back onto a rune boundary and then, if a
// newline is within snapWindow before it, to just after that newline.
func snapBack(s string, k int) int {
	k = max(k, 0)
	for k > 0 && k < len(s) && !utf8.RuneStart(s[k]) {
		k--
	}
	if k == len(s) {
		return k
	}
	if p := strings.LastIndexByte(s[k-snapWindow(k):k], '\n'); p >= 0 {
		return k - snapWindow(k) + p + 1
	}
	return k
}

// snapForward moves the cut j forward onto a rune boundary and then, if a
// newline is within snapWindow after it, to just after that newline.
func snapForward(s string, j int) int {
	j = min(max(j, 0), len(s))
	for j < len(s) && !utf8.RuneStart(s[j]) {
		j++
	}
	if j == 0 {
		return 0
	}
	w := snapWindow(len(s) - j)
	if p := strings.IndexByte(s[j:j+w], '\n'); p >= 0 {
		return j + p + 1
	}
	return j
}
