package compress

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// whitespace normalises the text of every touchable message (see
// normalizeText). Tool results that look like JSON are left to minify_json,
// since blanks inside JSON strings are data.
func (st *run) whitespace() {
	msgs := st.r.Messages
	for i := range msgs {
		if !st.touchable(i) {
			continue
		}
		m := &msgs[i]
		tool := isTool(m)
		cand := *m
		dirty, copied := false, false
		if s, ok := st.normalize(m.Content, tool); ok {
			cand.Content, dirty = s, true
		}
		for j := range m.Parts {
			p := &m.Parts[j]
			if p.Type != "text" || len(p.Raw) > 0 {
				continue
			}
			if s, ok := st.normalize(p.Text, tool); ok {
				if !copied {
					cand.Parts, copied = slices.Clone(m.Parts), true
				}
				cand.Parts[j].Text, dirty = s, true
			}
		}
		if dirty {
			st.accept(i, &cand, Whitespace)
		}
	}
}

// normalize returns s normalised and true, or false when that changes
// nothing or s is not for whitespace to touch.
func (st *run) normalize(s string, tool bool) (string, bool) {
	if s == "" || (tool && looksJSON(s)) {
		return "", false
	}
	st.buf = normalizeText(st.buf[:0], s, st.c.opts.CodeWhitespace)
	if string(st.buf) == s {
		return "", false
	}
	return string(st.buf), true
}

// looksJSON reports whether s starts, after blanks, like a JSON object or
// array.
func looksJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

// normalizeText appends s to dst with its whitespace and markup normalised
// and returns the extended slice. Outside fenced code blocks:
//
//   - CRLF line ends become LF (a lone CR is kept);
//   - blanks (space, tab, no-break space, CR, VT, FF) at the end of a line
//     are removed, and so are blank lines at the start and the end of the
//     text;
//   - a run of two or more blank lines becomes one blank line (Markdown
//     reads both alike);
//   - inside a line, a run of two or more blanks becomes one space, unless
//     the run is tabs only (tab-separated columns); the line's indentation
//     is kept as it is;
//   - a line made only of four or more of one separator character (- = _ *
//     ─ ━ ═), as e-mail clients draw them, keeps three of them, which
//     Markdown still reads as the same rule or heading underline.
//
// Code is left alone: a line indented by a tab or four spaces (a Markdown
// code block) is only trimmed at its end, and inline code spans (`...`,
// or a backquote without a closing run, to the end of its line) are copied
// as they are.
//
// A fence is a line whose first character after blanks and '>' quote
// markers starts a run of at least three backquotes or tildes (a backquote
// fence's info string holds no backquote); it is closed by a line of the
// same character, at least as many, and nothing but blanks after them, or
// by the end of the text (as CommonMark does). Fence lines and everything
// between them are copied byte for byte, unless code is set; then only
// trailing blanks, CRLF and runs of blank lines are normalised there.
//
// normalizeText is idempotent: normalising its output changes nothing.
func normalizeText(dst []byte, s string, code bool) []byte {
	w := wsWriter{dst: dst}
	inFence := false
	var fenceCh byte
	fenceN := 0
	for rest := s; ; {
		line, last := rest, true
		if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
			line, rest, last = rest[:nl], rest[nl+1:], false
		}
		switch {
		case inFence:
			if isFenceClose(line, fenceCh, fenceN) {
				inFence = false
			}
			w.code(line, code)
		default:
			if ch, n := fenceOpen(line); n > 0 {
				inFence, fenceCh, fenceN = true, ch, n
				w.code(line, code)
				break
			}
			if l := trimRightBlank(line); l == "" {
				w.blank()
			} else {
				w.text(l)
			}
		}
		if last {
			return w.dst
		}
	}
}

// wsWriter emits lines joined by LF, owing at most one blank line between
// two emitted lines and none at the start or the end.
type wsWriter struct {
	dst     []byte
	started bool
	pending bool
}

func (w *wsWriter) sep() {
	if w.started {
		w.dst = append(w.dst, '\n')
		if w.pending {
			w.dst = append(w.dst, '\n')
		}
	}
	w.started, w.pending = true, false
}

func (w *wsWriter) blank() {
	if w.started {
		w.pending = true
	}
}

// code emits a line of a fenced block: verbatim, or trimmed when
// normalising code.
func (w *wsWriter) code(line string, normalise bool) {
	if !normalise {
		w.sep()
		w.dst = append(w.dst, line...)
		return
	}
	if l := trimRightBlank(line); l == "" {
		w.blank()
	} else {
		w.sep()
		w.dst = append(w.dst, l...)
	}
}

// text emits a non-blank prose line that has no trailing blanks.
func (w *wsWriter) text(l string) {
	w.sep()
	k := 0
	for k < len(l) {
		n := blankWidth(l, k)
		if n == 0 {
			break
		}
		k += n
	}
	lead, body := l[:k], l[k:]
	if strings.IndexByte(lead, '\t') >= 0 || len(lead) >= 4 {
		w.dst = append(w.dst, l...)
		return
	}
	w.dst = append(w.dst, lead...)
	if r, ok := separatorLine(body); ok {
		for range 3 {
			w.dst = utf8.AppendRune(w.dst, r)
		}
		return
	}
	for i := 0; i < len(body); {
		if body[i] == '`' {
			end := codeSpanEnd(body, i)
			w.dst = append(w.dst, body[i:end]...)
			i = end
			continue
		}
		if blankWidth(body, i) == 0 {
			w.dst = append(w.dst, body[i])
			i++
			continue
		}
		j, count, tabs := i, 0, true
		for j < len(body) {
			bw := blankWidth(body, j)
			if bw == 0 {
				break
			}
			tabs = tabs && body[j] == '\t'
			j += bw
			count++
		}
		if count == 1 || tabs {
			w.dst = append(w.dst, body[i:j]...)
		} else {
			w.dst = append(w.dst, ' ')
		}
		i = j
	}
}

// codeSpanEnd returns the end of the inline code span that opens with the
// run of backquotes at s[i]: just after the next run of exactly as many
// backquotes, or len(s) when there is none (the rest of the line is then
// kept as it is).
func codeSpanEnd(s string, i int) int {
	j := i
	for j < len(s) && s[j] == '`' {
		j++
	}
	n := j - i
	for j < len(s) {
		p := strings.IndexByte(s[j:], '`')
		if p < 0 {
			break
		}
		b := j + p
		e := b
		for e < len(s) && s[e] == '`' {
			e++
		}
		if e-b == n {
			return e
		}
		j = e
	}
	return len(s)
}

// blankWidth returns the byte length of the blank at s[i] (space, tab, CR,
// VT, FF or no-break space), or 0.
func blankWidth(s string, i int) int {
	switch s[i] {
	case ' ', '\t', '\r', '\v', '\f':
		return 1
	case 0xC2:
		if i+1 < len(s) && s[i+1] == 0xA0 {
			return 2
		}
	}
	return 0
}

// trimRightBlank removes trailing blanks (see blankWidth) from s.
func trimRightBlank(s string) string {
	for len(s) > 0 {
		switch c := s[len(s)-1]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			s = s[:len(s)-1]
		case c == 0xA0 && len(s) >= 2 && s[len(s)-2] == 0xC2:
			s = s[:len(s)-2]
		default:
			return s
		}
	}
	return s
}

// separatorLine reports whether body is four or more of one separator rune
// and nothing else, and which rune.
func separatorLine(body string) (rune, bool) {
	if len(body) < 4 {
		return 0, false
	}
	r, size := utf8.DecodeRuneInString(body)
	switch r {
	case '-', '=', '_', '*', '─', '━', '═':
	default:
		return 0, false
	}
	n := 0
	for i := 0; i < len(body); i += size {
		var c rune
		if c, size = utf8.DecodeRuneInString(body[i:]); c != r {
			return 0, false
		}
		n++
	}
	return r, n >= 4
}

// fenceOpen returns the fence character and length when line opens a fenced
// code block, or n == 0.
func fenceOpen(line string) (ch byte, n int) {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '>') {
		i++
	}
	if i == len(line) || (line[i] != '`' && line[i] != '~') {
		return 0, 0
	}
	ch = line[i]
	j := i
	for j < len(line) && line[j] == ch {
		j++
	}
	if j-i < 3 || (ch == '`' && strings.IndexByte(line[j:], '`') >= 0) {
		return 0, 0
	}
	return ch, j - i
}

// isFenceClose reports whether line closes a fence of n characters ch.
func isFenceClose(line string, ch byte, n int) bool {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '>') {
		i++
	}
	j := i
	for j < len(line) && line[j] == ch {
		j++
	}
	return j-i >= n && trimRightBlank(line[j:]) == ""
}
