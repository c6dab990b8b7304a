package compress

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aigw/aigw/providers/llm"
)

func text(role, s string) llm.Message { return llm.Message{Role: role, Content: s, HasContent: true} }

func TestNewValidates(t *testing.T) {
	c := &wordCounter{}
	bad := []struct {
		name string
		o    Options
		c    Counter
	}{
		{"nil counter", Options{}, nil},
		{"unknown strategy", Options{Enabled: []Strategy{"gzip"}}, c},
		{"repeated strategy", Options{Enabled: []Strategy{Dedupe, Dedupe}}, c},
		{"negative prefix", Options{PreservePrefix: true, PrefixMessages: -1}, c},
		{"prefix without preserve", Options{PrefixMessages: 2}, c},
		{"negative max tool", Options{MaxToolResultTokens: -1}, c},
		{"tiny max tool", Options{MaxToolResultTokens: 10}, c},
		{"negative tail", Options{ToolResultTailTokens: -1}, c},
		{"tail over half", Options{MaxToolResultTokens: 100, ToolResultTailTokens: 51}, c},
		{"tail over half of default", Options{ToolResultTailTokens: DefaultMaxToolResultTokens/2 + 1}, c},
		{"negative keep", Options{KeepLastTurns: -1}, c},
		{"negative max input", Options{MaxInputTokens: -1}, c},
	}
	for _, tc := range bad {
		if _, err := New(tc.o, tc.c); err == nil {
			t.Errorf("%s: New accepted %+v", tc.name, tc.o)
		}
	}
	o := DefaultOptions()
	o.Enabled = all()
	cp, err := New(o, c)
	if err != nil {
		t.Fatal(err)
	}
	o.Enabled[0] = "changed after New"
	if !cp.Enabled(Whitespace) || cp.Options().Enabled[0] != Whitespace {
		t.Error("the Compressor shares the caller's Enabled slice")
	}
	if len(Strategies()) != numStrategies {
		t.Errorf("Strategies() has %d entries", len(Strategies()))
	}
	for i, s := range Strategies() {
		if s.index() != i || strategyAt(i) != s {
			t.Errorf("strategy %q: index %d, want %d", s, s.index(), i)
		}
	}
}

func messy() *llm.Request {
	return &llm.Request{Model: "gpt-4o", Messages: []llm.Message{
		text("system", "Be   brief.   \n\n\n\nAlways."),
		text("user", "Hello    there   \r\n\r\n\r\nfriend"),
		text("assistant", "Hi!   How   can I   help?   "),
		text("user", "Last   message   \n\n\n"),
	}}
}

func TestDisabledIsFree(t *testing.T) {
	c := &wordCounter{}
	cp := mustNew(t, Options{}, c)
	r := messy()
	want := encode(r)
	res, err := cp.Compress("gpt-4o", r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if texts, reqs := c.calls(); texts+reqs != 0 {
		t.Errorf("counted %d texts and %d requests with nothing enabled", texts, reqs)
	}
	if res.Saved != nil || res.Omitted != 0 || !bytes.Equal(encode(r), want) {
		t.Errorf("changed the request: %+v\n%s", res, encode(r))
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = cp.Compress("gpt-4o", r, 0) }); allocs != 0 {
		t.Errorf("disabled Compress allocates %v times", allocs)
	}
}

func TestContextLengthExceeded(t *testing.T) {
	c := &wordCounter{}
	for _, o := range []Options{
		{},                                   // nothing enabled: only the limit
		{Enabled: []Strategy{Whitespace}},    // not enough, and no fit_history
		{Enabled: all(), KeepLastTurns: 2},   // fit_history may not drop enough
		{Enabled: all(), MaxInputTokens: 10}, // the policy's own cap
	} {
		cp := mustNew(t, o, c)
		r := messy()
		limit := 18
		if o.MaxInputTokens > 0 {
			limit = 0
		}
		res, err := cp.Compress("gpt-4o", r, limit)
		var e *llm.Error
		if !errors.As(err, &e) {
			t.Fatalf("%+v: err = %v, want *llm.Error", o, err)
		}
		if e.Kind != llm.KindContextLength || e.Kind.Status() != 400 || e.Code != "context_length_exceeded" || e.Param != "messages" {
			t.Errorf("%+v: error %+v", o, e)
		}
		if eff := max(limit, o.MaxInputTokens); res.After <= eff || !strings.Contains(e.Msg, strconv.Itoa(eff)+" tokens") {
			t.Errorf("%+v: result %+v, message %q", o, res, e.Msg)
		}
	}
	cp := mustNew(t, Options{}, c)
	if _, err := cp.Compress("gpt-4o", messy(), 1000); err != nil {
		t.Errorf("fits, yet %v", err)
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct{ window, out, max, want int }{
		{0, 0, 0, 0},
		{128_000, 4_000, 0, 124_000},
		{128_000, 4_000, 50_000, 50_000},
		{8_000, 0, 50_000, 8_000},
		{0, 4_000, 50_000, 50_000},
		{8_000, 8_000, 0, 1},
		{8_000, -5, 0, 8_000},
	} {
		if got := Limit(tc.window, tc.out, tc.max); got != tc.want {
			t.Errorf("Limit(%d, %d, %d) = %d, want %d", tc.window, tc.out, tc.max, got, tc.want)
		}
	}
}

// TestRewriteNeedsSaving: with a counter that ignores blanks, whitespace
// saves nothing and so must change nothing.
func TestRewriteNeedsSaving(t *testing.T) {
	cp := mustNew(t, Options{Enabled: []Strategy{Whitespace, MinifyJSON}}, &wordCounter{})
	r := messy()
	want := encode(r)
	res, err := cp.Compress("m", r, 0)
	if err != nil || res.Saved != nil || !bytes.Equal(encode(r), want) {
		t.Errorf("rewrote without saving: %+v, %v\n%s", res, err, encode(r))
	}
}

func TestLastUserAndCodeUntouched(t *testing.T) {
	code := "```go\nfunc  f()  {   \n\n\n\n\treturn\t\t1   \r\n}\n```"
	tilde := "~~~\n a   b   \n\n\n\n~~~"
	r := &llm.Request{Model: "gpt-4o", Messages: []llm.Message{
		text("system", "Sys   prompt.  \n\n\n\n"),
		text("user", "Please   review:\n\n"+code+"\n\n\n\nand\n\n"+tilde),
		text("assistant", "Sure   thing.   "),
		{Role: "user", HasContent: true, Parts: []llm.Part{{Type: "text", Text: "Last   one   " + code + "\n\n\n"}}},
		text("assistant", "Prefill   with   blanks   "),
	}}
	last := lastUser(r)
	o := DefaultOptions()
	o.Enabled = all()
	res, err := mustNew(t, o, realCounter()).Compress("gpt-4o", r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Saved[Whitespace] == 0 {
		t.Errorf("whitespace saved nothing: %+v", res)
	}
	if got := lastUser(r); !bytes.Equal(got, last) {
		t.Errorf("last user message changed:\n%s", got)
	}
	if u := r.Messages[1].Content; !strings.Contains(u, "\n\n"+code+"\n\nand\n\n"+tilde) || !strings.HasPrefix(u, "Please review:") {
		t.Errorf("code blocks changed:\n%q", u)
	}
	if got := r.Messages[4].Content; got != "Prefill with blanks" {
		t.Errorf("message after the last user message: %q", got)
	}
}

// toolConversation has duplicated tool results and a parallel call.
func toolConversation() *llm.Request {
	res := `{"vendor": "Backbeat DJ Co.", "confirmed": true, "arrival": "15:00", "balance_due": 650}`
	call := func(id string) llm.ToolCall {
		return llm.ToolCall{ID: id, Type: "function", Function: llm.FunctionCall{Name: "vendor_status", Arguments: `{"vendor": "dj"}`}}
	}
	return &llm.Request{Model: "gpt-4o", Messages: []llm.Message{
		text("system", "Coordinator."),
		text("user", "Check the DJ."),
		{Role: "assistant", ToolCalls: []llm.ToolCall{call("call_1")}},
		{Role: "tool", ToolCallID: "call_1", Content: res, HasContent: true},
		text("assistant", "The DJ is confirmed; $650 is due. That is all I know about the DJ for now."),
		text("user", "Check again, and the florist."),
		{Role: "assistant", ToolCalls: []llm.ToolCall{call("call_2"), call("call_3")}},
		{Role: "tool", ToolCallID: "call_2", Content: res, HasContent: true},
		{Role: "tool", ToolCallID: "call_3", Content: `{"vendor": "Wild Fern", "confirmed": true}`, HasContent: true},
		text("assistant", "The DJ is confirmed; $650 is due. That is all I know about the DJ for now."),
		text("user", "Thanks."),
	}}
}

func TestDedupeKeepsPairing(t *testing.T) {
	r := toolConversation()
	res, err := mustNew(t, Options{Enabled: []Strategy{Dedupe}}, realCounter()).Compress("gpt-4o", r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPairing(r); err != nil {
		t.Fatal(err)
	}
	if len(r.Messages) != 10 {
		t.Errorf("%d messages, want 10 (one assistant duplicate removed)", len(r.Messages))
	}
	if got := r.Messages[3].Content; got != toolRef("call_2") {
		t.Errorf("earlier tool result is %q", got)
	}
	if res.Saved[Dedupe] <= 0 {
		t.Errorf("result %+v", res)
	}
	// Idempotent: the reference is never deduplicated again.
	again := encode(r)
	res, _ = mustNew(t, Options{Enabled: []Strategy{Dedupe}}, realCounter()).Compress("gpt-4o", r, 0)
	if res.Saved != nil || !bytes.Equal(encode(r), again) {
		t.Errorf("second pass changed the request: %+v", res)
	}
}

// longHistory is a conversation of n question/answer turns with a tool
// group in every third turn.
func longHistory(n int) *llm.Request {
	r := &llm.Request{Model: "gpt-4o", Messages: []llm.Message{text("system", "You are Juniper, a wedding planning assistant.")}}
	for i := range n {
		q := "Question " + strings.Repeat("about the seating chart and the shuttle times ", 3)
		r.Messages = append(r.Messages, text("user", q+string(rune('A'+i%26))))
		if i%3 == 1 {
			id := "call_" + string(rune('a'+i%26))
			r.Messages = append(r.Messages,
				llm.Message{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: id, Type: "function", Function: llm.FunctionCall{Name: "lookup", Arguments: "{}"}}}},
				llm.Message{Role: "tool", ToolCallID: id, Content: `{"ok":true,"rows":[1,2,3,4,5,6,7,8,9]}`, HasContent: true})
		}
		r.Messages = append(r.Messages, text("assistant", "Answer "+strings.Repeat("with the details you asked for ", 4)+string(rune('a'+i%26))))
	}
	r.Messages = append(r.Messages, text("user", "Now summarise everything."))
	return r
}

func TestFitHistory(t *testing.T) {
	for _, model := range []string{"gpt-4o", "claude-sonnet-4"} { // exact and estimated counts
		for _, pp := range []bool{false, true} {
			r := longHistory(30)
			before := realCounter().CountRequest(model, r)
			limit := before / 3
			last := lastUser(r)
			o := Options{Enabled: []Strategy{FitHistory}, PreservePrefix: pp}
			if pp {
				o.PrefixMessages = 2
			}
			res, err := mustNew(t, o, realCounter()).Compress(model, r, limit)
			if err != nil {
				t.Fatalf("%s: %v", model, err)
			}
			got := realCounter().CountRequest(model, r)
			if got > limit || got != res.After || res.Before != before {
				t.Errorf("%s: %d tokens after fit (After %d, Before %d/%d), limit %d", model, got, res.After, res.Before, before, limit)
			}
			if res.Omitted == 0 || res.Saved[FitHistory] != before-got {
				t.Errorf("%s: result %+v", model, res)
			}
			if err := checkPairing(r); err != nil {
				t.Errorf("%s: %v", model, err)
			}
			if !bytes.Equal(lastUser(r), last) || r.Messages[0].Role != "system" {
				t.Errorf("%s: lost the system prompt or changed the last user message", model)
			}
			markers := 0
			for i, m := range r.Messages {
				if strings.HasPrefix(m.Content, "[aigw: ") {
					markers++
					if m.Role != "user" || !strings.Contains(m.Content, " earlier messages were omitted") {
						t.Errorf("%s: marker %+v", model, m)
					}
					if want := 1; pp {
						want = 3
						if i != want {
							t.Errorf("%s: marker at %d, want %d (after the protected prefix)", model, i, want)
						}
					} else if i != want {
						t.Errorf("%s: marker at %d, want %d", model, i, want)
					}
				}
			}
			if markers != 1 {
				t.Errorf("%s: %d markers", model, markers)
			}
			if pp && r.Messages[1].Content != longHistory(1).Messages[1].Content {
				t.Errorf("%s: the protected prefix was dropped though the rest was enough", model)
			}
			// Fitting again changes nothing.
			again := encode(r)
			res, err = mustNew(t, o, realCounter()).Compress(model, r, limit)
			if err != nil || res.Saved != nil || !bytes.Equal(encode(r), again) {
				t.Errorf("%s: second fit changed the request: %+v %v", model, res, err)
			}
		}
	}
}

func TestFitHistoryBreaksPrefixWhenItMust(t *testing.T) {
	r := longHistory(6)
	limit := realCounter().CountRequest("gpt-4o", &llm.Request{Messages: []llm.Message{r.Messages[0], r.Messages[len(r.Messages)-1]}}) + 30
	o := Options{Enabled: []Strategy{FitHistory}, PreservePrefix: true, PrefixMessages: 4}
	if _, err := mustNew(t, o, realCounter()).Compress("gpt-4o", r, limit); err != nil {
		t.Fatal(err)
	}
	if len(r.Messages) != 3 || r.Messages[1].Role != "user" || !strings.HasPrefix(r.Messages[1].Content, "[aigw: ") {
		t.Errorf("got %d messages: %s", len(r.Messages), encode(r))
	}
}

func TestFitHistoryKeepsMidSystemMessages(t *testing.T) {
	r := longHistory(8)
	note := text("developer", "The couple moved the date to October 25.")
	r.Messages = slices.Insert(r.Messages, 5, note)
	limit := realCounter().CountRequest("gpt-4o", r) / 3
	if _, err := mustNew(t, Options{Enabled: []Strategy{FitHistory}}, realCounter()).Compress("gpt-4o", r, limit); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(r.Messages, func(m llm.Message) bool { return m.Content == note.Content }) {
		t.Error("dropped a developer message")
	}
}

func TestTruncateToolResults(t *testing.T) {
	var sb strings.Builder
	for i := range 400 {
		sb.WriteString("guest ")
		sb.WriteString(strings.Repeat("x", i%7+1))
		sb.WriteString(" table 12 — meal: short rib, needs: none\n")
	}
	big := sb.String()
	r := &llm.Request{Model: "gpt-4o", Messages: []llm.Message{
		text("user", "List guests."),
		{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "c1", Type: "function", Function: llm.FunctionCall{Name: "guests", Arguments: "{}"}}}},
		{Role: "tool", ToolCallID: "c1", HasContent: true, Parts: []llm.Part{{Type: "text", Text: big}, {Type: "text", Text: "small"}}},
	}}
	o := Options{Enabled: []Strategy{TruncateToolResults}, MaxToolResultTokens: 500, ToolResultTailTokens: 100}
	res, err := mustNew(t, o, realCounter()).Compress("gpt-4o", r, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := r.Messages[2].Parts[0].Text
	n := realCounter().CountText("gpt-4o", got)
	if n > 500 || n < 400 {
		t.Errorf("truncated to %d tokens, want 400..500", n)
	}
	head, tail, ok := strings.Cut(got, "\n[... aigw truncated ")
	if !ok || !strings.HasPrefix(big, head) || !strings.HasSuffix(big, tail[strings.Index(tail, "]\n")+2:]) {
		t.Errorf("not head + marker + tail:\n%s", got)
	}
	if r.Messages[2].Parts[1].Text != "small" || res.Saved[TruncateToolResults] <= 0 {
		t.Errorf("result %+v", res)
	}
	if realCounter().CountRequest("gpt-4o", r) != res.After {
		t.Error("After is not the request's count")
	}
}

// TestCompressCounted: passing the count changes nothing but the work.
func TestCompressCounted(t *testing.T) {
	o := DefaultOptions()
	o.Enabled = all()
	cp := mustNew(t, o, realCounter())
	for _, model := range []string{"gpt-4o", "claude-sonnet-4"} {
		a, b := toolConversation(), toolConversation()
		ra, err := cp.Compress(model, a, 0)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := cp.CompressCounted(model, b, 0, realCounter().CountRequest(model, b))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encode(a), encode(b)) || ra.Before != rb.Before || ra.After != rb.After {
			t.Errorf("%s: %+v vs %+v", model, ra, rb)
		}
	}
}

// TestCountsOnlyWhatChanges: with an exact counter the request is never
// counted whole, and clean messages are counted once.
func TestCountsOnlyWhatChanges(t *testing.T) {
	c := &wordCounter{perMessageTax: 1}
	o := Options{Enabled: []Strategy{Whitespace, MinifyJSON, Dedupe, TruncateToolResults}}
	r := longHistory(20)
	n := len(r.Messages)
	if _, err := mustNew(t, o, c).CompressCounted("m", r, 0, 1000); err != nil {
		t.Fatal(err)
	}
	if _, reqs := c.calls(); reqs != 1 { // the empty request, and nothing else
		t.Errorf("%d CountRequest calls for %d clean messages with the count given", reqs, n)
	}
}

func TestConcurrentUse(t *testing.T) {
	o := DefaultOptions()
	o.Enabled = all()
	cp := mustNew(t, o, realCounter())
	want := toolConversation()
	if _, err := cp.Compress("gpt-4o", want, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				r := toolConversation()
				if _, err := cp.Compress("gpt-4o", r, 0); err != nil || !bytes.Equal(encode(r), encode(want)) {
					t.Errorf("concurrent result differs: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNormalizeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"a  b\t\tc \t d", "a b\t\tc d"},
		{"a\tb", "a\tb"},
		{"line   \r\nnext\r\n", "line\nnext"},
		{"a\rb", "a\rb"},
		{"\n\n  \nstart\n\n\n\n\nend\n\n", "start\n\nend"},
		{"  indented  twice", "  indented twice"},
		{"    code   line  ", "    code   line"},
		{"\tcode   line", "\tcode   line"},
		{"x `a   b`   y  ``c  ` d``  z", "x `a   b` y ``c  ` d`` z"},
		{"open `span   never   closes", "open `span   never   closes"},
		{"----------\n==========\n__________\n*****\n━━━━━", "---\n===\n___\n***\n━━━"},
		{"---\n- - - -\n-----x", "---\n- - - -\n-----x"},
		{"nbsp\u00a0\u00a0here\u00a0", "nbsp here"},
		{"```\na   b   \n\n\n\n```\nc   d", "```\na   b   \n\n\n\n```\nc d"},
		{"~~~~\n```\nin   side\n~~~\nstill   in\n~~~~\nout   side", "~~~~\n```\nin   side\n~~~\nstill   in\n~~~~\nout side"},
		{"```js\nunclosed   \n\n\n", "```js\nunclosed   \n\n\n"},
		{"a ```not a fence```  b", "a ```not a fence``` b"},
		{"> ```\n>   quoted   code\n> ```", "> ```\n>   quoted   code\n> ```"},
		{"  ~~~\n  in   dented\n  ~~~", "  ~~~\n  in   dented\n  ~~~"},
	} {
		got := string(normalizeText(nil, tc.in, false))
		if got != tc.want {
			t.Errorf("normalizeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := string(normalizeText(nil, got, false)); again != got {
			t.Errorf("not idempotent on %q: %q", got, again)
		}
	}
	if got := string(normalizeText(nil, "```\r\na   b   \r\n\n\n\n   c\n```  \n\n\nx", true)); got != "```\na   b\n\n   c\n```\n\nx" {
		t.Errorf("code normalisation: %q", got)
	}
}

func FuzzNormalizeText(f *testing.F) {
	for _, s := range []string{"a  b\r\n\n\n\nc", "```\nx  y\n```\n  z  ", "`a  b`  c", "~~~~\n~~~\n", "━━━━\u00a0\u00a0", "    x  y\n\t z"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, code bool) {
		once := normalizeText(nil, s, code)
		if len(once) > len(s) {
			t.Fatalf("grew: %q -> %q", s, once)
		}
		if twice := normalizeText(nil, string(once), code); !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
	})
}

// markerTax charges 60 extra tokens for a text holding the truncation
// marker, more than truncate reserves for it, so that the first cut is
// over the limit and must be redone with a smaller head.
type markerTax struct{ wordCounter }

func (m *markerTax) CountText(model, s string) int {
	n := m.wordCounter.CountText(model, s)
	if strings.Contains(s, "[... aigw truncated") {
		n += 60
	}
	return n
}

func TestTruncateRetriesOverLimit(t *testing.T) {
	big := strings.Repeat("word ", 3000)
	r := &llm.Request{Model: "m", Messages: []llm.Message{
		text("user", "Go."),
		{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "c1", Type: "function", Function: llm.FunctionCall{Name: "f", Arguments: "{}"}}}},
		{Role: "tool", ToolCallID: "c1", Content: big, HasContent: true},
	}}
	c := &markerTax{}
	o := Options{Enabled: []Strategy{TruncateToolResults}, MaxToolResultTokens: 200, ToolResultTailTokens: 50}
	if _, err := mustNew(t, o, c).Compress("m", r, 0); err != nil {
		t.Fatal(err)
	}
	got := r.Messages[2].Content
	if n := c.CountText("m", got); n > 200 || !strings.Contains(got, "[... aigw truncated") {
		t.Errorf("%d tokens: %q", n, got)
	}
}

func TestDegenerateRequests(t *testing.T) {
	o := DefaultOptions()
	o.Enabled = all()
	o.PrefixMessages = 5
	cp := mustNew(t, o, realCounter())
	for _, r := range []*llm.Request{
		{Model: "gpt-4o"},
		{Model: "gpt-4o", Messages: []llm.Message{text("system", "Only   a   system   prompt.   ")}},
		{Model: "gpt-4o", Messages: []llm.Message{text("assistant", "No   user   at   all.   "), text("assistant", "Still   none.  ")}},
		{Model: "gpt-4o", Messages: []llm.Message{text("user", "   ")}},
	} {
		if _, err := cp.Compress("gpt-4o", r, 0); err != nil {
			t.Errorf("%s: %v", encode(r), err)
		}
		if _, err := cp.Compress("gpt-4o", r, 1); err == nil && len(r.Messages) > 0 {
			t.Errorf("%s: fits one token", encode(r))
		}
	}
}

// TestTruncateThroughFenceIsIdempotent: a cut that removes a fence's
// opening line turns the kept tail from code into prose (and its closing
// line into an opener); a second pass must still change nothing.
func TestTruncateThroughFenceIsIdempotent(t *testing.T) {
	var sb strings.Builder
	for i := range 200 {
		sb.WriteString("prose   line   " + strconv.Itoa(i) + "\n")
	}
	sb.WriteString("```\n") // opens in the part the cut removes
	for i := range 300 {
		sb.WriteString("code   line   " + strconv.Itoa(i) + "\n")
	}
	sb.WriteString("```\nprose   after   the   fence\n")
	r := &llm.Request{Model: "gpt-4o", Messages: []llm.Message{
		text("user", "Run it."),
		{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "c1", Type: "function", Function: llm.FunctionCall{Name: "run", Arguments: "{}"}}}},
		{Role: "tool", ToolCallID: "c1", Content: sb.String(), HasContent: true},
	}}
	o := Options{Enabled: []Strategy{Whitespace, TruncateToolResults}, MaxToolResultTokens: 300, ToolResultTailTokens: 100}
	cp := mustNew(t, o, realCounter())
	if _, err := cp.Compress("gpt-4o", r, 0); err != nil {
		t.Fatal(err)
	}
	once := encode(r)
	if !strings.Contains(r.Messages[2].Content, "[... aigw truncated") {
		t.Fatalf("not truncated: %q", r.Messages[2].Content)
	}
	res, err := cp.Compress("gpt-4o", r, 0)
	if err != nil || res.Saved != nil || !bytes.Equal(encode(r), once) {
		t.Errorf("second pass saved %v:\n%s", res.Saved, r.Messages[2].Content)
	}
}
