package compress

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/aigw/aigw/accounting/tokens"
	"github.com/aigw/aigw/providers/llm"
)

// realCounter is the production counter, built once: New takes about a
// second.
var realCounter = sync.OnceValue(func() *tokens.Counter { return tokens.New(tokens.Options{}) })

// all enables every strategy.
func all() []Strategy { return Strategies() }

func mustNew(t testing.TB, o Options, c Counter) *Compressor {
	t.Helper()
	cp, err := New(o, c)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func parse(t testing.TB, data []byte) *llm.Request {
	t.Helper()
	r := new(llm.Request)
	if err := r.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return r
}

func load(t testing.TB, path string) *llm.Request {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, data)
}

func encode(r *llm.Request) []byte { return r.AppendJSON(nil) }

// pretty lays an encoded request out for golden files: one top-level
// member per line and one element of a top-level array (a message, a tool)
// per line. Everything deeper keeps its bytes, so that minified and
// original raw JSON (tool schemas, response_format) stay visible.
func pretty(t testing.TB, b []byte) []byte {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
	out := make([]byte, 0, len(b)+len(b)/8)
	var stack []byte // container kinds, '{' or '['
	nl := func(depth int) {
		out = append(out, '\n')
		for range depth {
			out = append(out, ' ', ' ')
		}
	}
	breaks := func() bool { // a line break after the container's elements?
		d := len(stack)
		return d == 1 || (d == 2 && stack[1] == '[')
	}
	inStr, esc := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			out = append(out, c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
			out = append(out, c)
		case '{', '[':
			out = append(out, c)
			stack = append(stack, c)
			if breaks() && i+1 < len(b) && b[i+1] != '}' && b[i+1] != ']' {
				nl(len(stack))
			}
		case '}', ']':
			if breaks() && b[i-1] != '{' && b[i-1] != '[' {
				nl(len(stack) - 1)
			}
			out = append(out, c)
			stack = stack[:len(stack)-1]
		case ',':
			out = append(out, c)
			if breaks() {
				nl(len(stack))
			}
		case ':':
			out = append(out, c)
			if len(stack) == 1 {
				out = append(out, ' ')
			}
		default:
			out = append(out, c)
		}
	}
	return append(out, '\n')
}

// clone deep-copies what Compress may rewrite in place.
func clone(r *llm.Request) *llm.Request {
	c := *r
	c.Messages = slices.Clone(r.Messages)
	for i := range c.Messages {
		c.Messages[i].Parts = slices.Clone(c.Messages[i].Parts)
		c.Messages[i].ToolCalls = slices.Clone(c.Messages[i].ToolCalls)
	}
	c.Tools = slices.Clone(r.Tools)
	return &c
}

// lastUser returns the encoding of r's last user message, nil if none.
func lastUser(r *llm.Request) []byte {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].AppendJSON(nil)
		}
	}
	return nil
}

// checkPairing reports a tool message that answers no call of the
// assistant message before it, or a call that no tool message answers.
func checkPairing(r *llm.Request) error {
	msgs := r.Messages
	for i := 0; i < len(msgs); i++ {
		m := &msgs[i]
		if m.Role == "tool" {
			return fmt.Errorf("messages[%d]: tool result %q follows no assistant tool call", i, m.ToolCallID)
		}
		if m.Role != "assistant" || len(m.ToolCalls) == 0 {
			continue
		}
		want := map[string]bool{}
		for _, tc := range m.ToolCalls {
			want[tc.ID] = true
		}
		j := i + 1
		for ; j < len(msgs) && msgs[j].Role == "tool"; j++ {
			if !want[msgs[j].ToolCallID] {
				return fmt.Errorf("messages[%d]: tool result %q answers no call of messages[%d]", j, msgs[j].ToolCallID, i)
			}
			delete(want, msgs[j].ToolCallID)
		}
		if len(want) > 0 && j < len(msgs) {
			return fmt.Errorf("messages[%d]: calls %v are not answered", i, want)
		}
		i = j - 1
	}
	return nil
}

// wordCounter is a fake Counter: a text costs one token per word, so that
// blanks never matter; a message costs 3 plus its texts. It is exact and
// counts how often it is called.
type wordCounter struct {
	mu            sync.Mutex
	texts, reqs   int
	notExact      bool
	perMessageTax int
}

func (w *wordCounter) words(s string) int {
	n, in := 0, false
	for _, c := range s {
		sp := c == ' ' || c == '\n' || c == '\t' || c == '\r'
		if !sp && !in {
			n++
		}
		in = !sp
	}
	return n
}

func (w *wordCounter) CountText(_, s string) int {
	w.mu.Lock()
	w.texts++
	w.mu.Unlock()
	return w.words(s)
}

func (w *wordCounter) CountRequest(_ string, r *llm.Request) int {
	w.mu.Lock()
	w.reqs++
	w.mu.Unlock()
	n := 3
	for i := range r.Messages {
		m := &r.Messages[i]
		n += 3 + w.perMessageTax + w.words(m.Content) + w.words(m.ToolCallID)
		for _, p := range m.Parts {
			n += w.words(p.Text)
		}
		for _, tc := range m.ToolCalls {
			n += 3 + w.words(tc.Function.Arguments)
		}
	}
	for _, t := range r.Tools {
		n += w.words(string(t.Function.Parameters))
	}
	return n
}

func (w *wordCounter) Exact(string) bool { return !w.notExact }

func (w *wordCounter) calls() (int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.texts, w.reqs
}
