package tokens

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiktoken-go/tokenizer/codec"

	"github.com/aigw/aigw/providers/llm"
)

// The Counter is expensive to build; tests share one, as the gateway does.
var (
	counterOnce sync.Once
	shared      *Counter
)

func counter(tb testing.TB) *Counter {
	tb.Helper()
	counterOnce.Do(func() { shared = New(Options{}) })
	return shared
}

// TestKnownCounts checks counts published in OpenAI's cookbook ("How to
// count tokens with tiktoken", the compare_encodings examples).
func TestKnownCounts(t *testing.T) {
	c := counter(t)
	tests := []struct {
		text          string
		o200k, cl100k int
	}{
		{"tiktoken is great!", 6, 6},
		{"antidisestablishmentarianism", 6, 6},
		{"2 + 2 = 4", 7, 7},
		{"お誕生日おめでとう", 8, 9},
		{"hello world", 2, 2},
		{"We know what we are, but know not what we may be.", 14, 14},
		{"", 0, 0},
	}
	for _, tt := range tests {
		if got := c.CountText("gpt-4o", tt.text); got != tt.o200k {
			t.Errorf("o200k_base %q = %d, want %d", tt.text, got, tt.o200k)
		}
		if got := c.CountText("gpt-4", tt.text); got != tt.cl100k {
			t.Errorf("cl100k_base %q = %d, want %d", tt.text, got, tt.cl100k)
		}
	}
}

// cookbookMessages is the example conversation of OpenAI's cookbook, whose
// prompt the API reported as 129 tokens for gpt-3.5-turbo and gpt-4 and 124
// for gpt-4o and gpt-4o-mini.
func cookbookMessages() *llm.Request {
	return &llm.Request{Messages: []llm.Message{
		{Role: "system", Content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
		{Role: "system", Name: "example_user", Content: "New synergies will help drive top-line growth."},
		{Role: "system", Name: "example_assistant", Content: "Things working well together will increase revenue."},
		{Role: "system", Name: "example_user", Content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
		{Role: "system", Name: "example_assistant", Content: "Let's talk later when we're less busy about how to do better."},
		{Role: "user", Content: "This late pivot means we don't have time to boil the ocean for the client deliverable."},
	}}
}

func TestCountRequestMatchesCookbook(t *testing.T) {
	c := counter(t)
	r := cookbookMessages()
	for model, want := range map[string]int{
		"gpt-3.5-turbo": 129, "gpt-4-0613": 129, "gpt-4": 129,
		"gpt-4o": 124, "gpt-4o-mini": 124, "gpt-4o-2024-08-06": 124,
	} {
		if got := c.CountRequest(model, r); got != want {
			t.Errorf("CountRequest(%s) = %d, want %d", model, got, want)
		}
	}
}

func TestEncodingFor(t *testing.T) {
	tests := map[string]Encoding{
		"gpt-4o": O200kBase, "gpt-4o-mini-2024-07-18": O200kBase, "chatgpt-4o-latest": O200kBase,
		"gpt-4.1-nano": O200kBase, "gpt-5": O200kBase, "gpt-5.1": O200kBase, "o1": O200kBase,
		"o3-mini": O200kBase, "o4-mini": O200kBase, "openai/gpt-4o": O200kBase,
		"ft:gpt-4o-mini-2024-07-18:org::abc": O200kBase, "gpt-oss-120b": O200kBase,
		"gpt-4": Cl100kBase, "gpt-4-turbo": Cl100kBase, "gpt-3.5-turbo": Cl100kBase,
		"text-embedding-3-small": Cl100kBase, "text-embedding-ada-002": Cl100kBase,
		"claude-sonnet-4-5": None, "gemini-2.5-pro": None, "o3x": None, "gpt-40": None, "": None,
	}
	for model, want := range tests {
		if got := EncodingFor(model); got != want {
			t.Errorf("EncodingFor(%q) = %q, want %q", model, got, want)
		}
	}
}

// TestSpecialTokensAreText: special-token text in user input is counted as
// ordinary text, never as the special token, and never panics.
func TestSpecialTokensAreText(t *testing.T) {
	c := counter(t)
	specials := map[*codec.Codec]uint{c.o200k: 199999, c.cl100k: 100257}
	for _, s := range []string{"<|endoftext|>", "<|endofprompt|>", "<|im_start|>user", "<|fim_prefix|>x<|fim_suffix|>",
		"a<|endoftext|>b", strings.Repeat("<|endoftext|>", 1000)} {
		for enc, special := range specials {
			ids, _, err := enc.Encode(s)
			if err != nil {
				t.Fatalf("%s %q: %v", enc.GetName(), s, err)
			}
			for _, id := range ids {
				if id == special {
					t.Errorf("%s %q encoded the special token %d", enc.GetName(), s, id)
				}
			}
		}
		if n := c.CountText("gpt-4o", s); n < 3 {
			t.Errorf("CountText(%q) = %d, want it counted as several text tokens", s, n)
		}
		if n := c.CountText("claude-haiku-4-5", s); n < 3 || n > len(s) {
			t.Errorf("estimate(%q) = %d, want within [3, %d]", s, n, len(s))
		}
	}
}

// TestLongRunCutsStayClose measures what cutting long runs costs in
// accuracy: against the uncut tokenizer, at most two tokens per cut.
func TestLongRunCutsStayClose(t *testing.T) {
	c := counter(t)
	rng := rand.New(rand.NewPCG(1, 2))
	randLetters := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	inputs := map[string]string{
		"a":        strings.Repeat("a", 9000),
		"space":    strings.Repeat(" ", 9000),
		"newline":  strings.Repeat("\n", 9000),
		"bang":     strings.Repeat("!", 9000),
		"ab":       strings.Repeat("ab", 4500),
		"upper":    strings.Repeat("ACGT", 2250),
		"random":   randLetters(9000),
		"thai":     strings.Repeat("สวัสดีครับ", 300),
		"emoji":    strings.Repeat("😀", 2250),
		"mixed":    "hello " + strings.Repeat("z", 5000) + " world " + strings.Repeat(".", 3000),
		"no cut":   strings.Repeat("word ", 2000),
		"accented": strings.Repeat("é", 4500),
	}
	for name, s := range inputs {
		segs := cutLongRuns(s, runCut)
		cuts := 0
		if segs != nil {
			cuts = len(segs) - 1
			if strings.Join(segs, "") != s {
				t.Fatalf("%s: segments do not rebuild the input", name)
			}
		}
		for _, enc := range []*codec.Codec{c.o200k, c.cl100k} {
			exact, err := enc.Count(s)
			if err != nil {
				t.Fatal(err)
			}
			got := c.count(enc, s)
			diff := got - exact
			if diff < 0 {
				diff = -diff
			}
			if diff > 2*cuts {
				t.Errorf("%s/%s: cut count %d, exact %d, %d cuts", name, enc.GetName(), got, exact, cuts)
			}
		}
	}
	if segs := cutLongRuns(strings.Repeat("word ", 2000), runCut); segs != nil {
		t.Errorf("ordinary text was cut into %d segments", len(segs))
	}
}

// TestAdversarialInputSmoke is a smoke check that 1 MiB prompts of
// repeated characters are counted in roughly linear time: a quadratic
// merge would take hours here. The real goal (200 ms of CPU for one
// repeated character) is measured by BenchmarkCount1MiBRepeated; this bound
// is deliberately loose so a busy machine or the race detector does not
// fail it.
func TestAdversarialInputSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := counter(t)
	for _, ch := range []string{"a", " ", "\n", "!", "é", "中", "😀", "ab", "a1"} {
		s := strings.Repeat(ch, (1<<20)/len(ch))
		start := time.Now()
		n := c.CountText("gpt-4o", s)
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%q x 1 MiB took %v", ch, d)
		}
		if n <= 0 || n > len(s) {
			t.Errorf("%q x 1 MiB counted %d tokens", ch, n)
		}
	}
}

// calibrationCorpus holds the content kinds the estimate must not
// under-count: prose, code, JSON, base64, punctuation, digits, non-Latin
// scripts and emoji.
func calibrationCorpus() map[string]string {
	rng := rand.New(rand.NewPCG(3, 4))
	raw := make([]byte, 3000)
	for i := range raw {
		raw[i] = byte(rng.IntN(256))
	}
	return map[string]string{
		"english":     strings.Repeat("The quick brown fox jumps over the lazy dog while the band plays on. ", 40),
		"code":        strings.Repeat("func (s *Server) handle(ctx context.Context, req *Request) (*Response, error) {\n\tif err := req.Validate(); err != nil {\n\t\treturn nil, fmt.Errorf(\"validate: %w\", err)\n\t}\n}\n", 15),
		"json":        strings.Repeat(`{"id":"evt_123","amount":4200,"currency":"gbp","tags":["a","b"],"ok":true},`, 30),
		"base64":      base64.StdEncoding.EncodeToString(raw),
		"punctuation": strings.Repeat("!?;:.,-_=+*&^%$#@~`|\\/<>()[]{}", 80),
		"digits":      strings.Repeat("3141592653 5897932384 6264338327 ", 60),
		"chinese":     strings.Repeat("人工智能网关负责认证、限流、路由和计费。", 60),
		"hindi":       strings.Repeat("कृत्रिम बुद्धिमत्ता गेटवे अनुरोधों को प्रमाणित करता है। ", 30),
		"russian":     strings.Repeat("Шлюз проверяет ключи, ограничивает запросы и считает стоимость. ", 30),
		"emoji":       strings.Repeat("🎉👰🤵💍🥂🎂 ", 100),
	}
}

// TestEstimateCalibration: for models without a public tokenizer the
// estimate is at least the o200k_base count (with margin), never more than
// the byte length, and at least what bytes/4 would say; it also logs how
// far bytes/4 falls short, which is why bytes/4 is not used.
func TestEstimateCalibration(t *testing.T) {
	c := counter(t)
	for name, s := range calibrationCorpus() {
		o, _ := c.o200k.Count(s)
		cl, _ := c.cl100k.Count(s)
		est := c.Estimate(s)
		if est > len(s) {
			t.Errorf("%s: estimate %d above the byte bound %d", name, est, len(s))
		}
		if est < max(o, cl) && est != len(s) {
			t.Errorf("%s: estimate %d below the larger vocabulary's count %d", name, est, max(o, cl))
		}
		if est < (len(s)+3)/4 {
			t.Errorf("%s: estimate %d below bytes/4 = %d", name, est, (len(s)+3)/4)
		}
		if got := c.CountText("claude-sonnet-4-5", s); got != est {
			t.Errorf("%s: CountText for an estimated model = %d, Estimate = %d", name, got, est)
		}
		t.Logf("%-11s bytes=%5d o200k=%5d cl100k=%5d estimate=%5d bytes/4 under-counts cl100k by %.2fx",
			name, len(s), o, cl, est, float64(cl)/float64((len(s)+3)/4))
	}
}

func TestCountRequestShapes(t *testing.T) {
	c := counter(t)
	low, high := "low", "high"
	params := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string","description":"City name"}},"required":["city"]}`)
	base := func() *llm.Request {
		return &llm.Request{Messages: []llm.Message{{Role: "user", Content: "What is the weather in Paris?"}}}
	}
	plain := c.CountRequest("gpt-4o", base())
	if want := tokensReply + tokensPerMessage + 1 + c.CountText("gpt-4o", "What is the weather in Paris?"); plain != want {
		t.Fatalf("plain request = %d, want %d", plain, want)
	}

	withTools := base()
	withTools.Tools = []llm.Tool{{Type: "function", Function: llm.FunctionDecl{Name: "get_weather", Description: "Weather now", Parameters: params}}}
	if got := c.CountRequest("gpt-4o", withTools); got <= plain+toolsInit+toolEnd {
		t.Errorf("tools add nothing beyond framing: %d vs %d", got, plain)
	}

	img := func(detail string) *llm.Request {
		r := base()
		r.Messages[0].Content = ""
		r.Messages[0].Parts = []llm.Part{{Type: "text", Text: "What is this?"}, {Type: "image_url", ImageURL: &llm.ImageURL{URL: "https://x/y.png", Detail: detail}}}
		return r
	}
	if d := c.CountRequest("gpt-4o", img(high)) - c.CountRequest("gpt-4o", img(low)); d != imageTile*imageMaxTiles {
		t.Errorf("high-detail image costs %d more than low, want %d", d, imageTile*imageMaxTiles)
	}
	if got := c.CountRequest("gpt-4o-mini", img(low)) - c.CountRequest("gpt-4o", img(low)); got != miniImageBase-imageBase {
		t.Errorf("gpt-4o-mini low image delta = %d", got)
	}

	calls := &llm.Request{Messages: []llm.Message{
		{Role: "user", Content: "weather?"},
		{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "call_1", Type: "function", Function: llm.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}},
		{Role: "tool", ToolCallID: "call_1", Content: `{"temp":21}`},
	}}
	if got := c.CountRequest("gpt-4o", calls); got < 3*tokensPerMessage+tokensReply+10 {
		t.Errorf("tool-call conversation = %d, too low", got)
	}

	// Estimated models: margin applied, tool-use system prompt added, and the
	// byte bound never exceeded.
	for _, r := range []*llm.Request{base(), withTools, img(high), calls, cookbookMessages()} {
		exact := max(c.CountRequest("gpt-4o", r), c.CountRequest("gpt-4", r))
		est := c.CountRequest("claude-sonnet-4-5", r)
		ub := UpperBound("claude-sonnet-4-5", r)
		if est > ub {
			t.Errorf("estimate %d above UpperBound %d", est, ub)
		}
		if est < exact && est != ub {
			t.Errorf("estimate %d below the exact counts %d", est, exact)
		}
		if ubo := UpperBound("gpt-4o", r); exact > ubo {
			t.Errorf("exact %d above UpperBound %d", exact, ubo)
		}
	}
	if got, exact := c.CountRequest("claude-sonnet-4-5", withTools), c.CountRequest("gpt-4o", withTools); got < exact+toolUseSystemPrompt {
		t.Errorf("tool-use system prompt missing: estimate %d, o200k %d", got, exact)
	}
}

// TestUpperBoundHolds checks the byte bound against the exact counts on the
// calibration corpus, wrapped as chat messages.
func TestUpperBoundHolds(t *testing.T) {
	c := counter(t)
	for name, s := range calibrationCorpus() {
		r := &llm.Request{Messages: []llm.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Name: "u1", Content: s}}}
		for _, model := range []string{"gpt-4o", "gpt-4"} {
			if n, ub := c.CountRequest(model, r), UpperBound(model, r); n > ub {
				t.Errorf("%s/%s: count %d above UpperBound %d", name, model, n, ub)
			}
		}
	}
}

func TestCountEmbeddingInput(t *testing.T) {
	c := counter(t)
	m := "text-embedding-3-small"
	hw := c.CountText(m, "hello world")
	tests := map[string]int{
		`"hello world"`:                 hw,
		`["hello world","hello world"]`: 2 * hw,
		`[1,2,3]`:                       3,
		`[[1,2],[3,4,5]]`:               5,
		`{"not":"valid"}`:               len(`{"not":"valid"}`),
		`["hello world",[1,2]]`:         hw + 2,
	}
	for in, want := range tests {
		if got := c.CountEmbeddingInput(m, json.RawMessage(in)); got != want {
			t.Errorf("CountEmbeddingInput(%s) = %d, want %d", in, got, want)
		}
	}
}

// TestConcurrentUse shares one Counter between goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	c := counter(t)
	want := c.CountRequest("gpt-4o", cookbookMessages())
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if got := c.CountRequest("gpt-4o", cookbookMessages()); got != want {
					t.Errorf("concurrent count %d, want %d", got, want)
					return
				}
				c.CountText("claude-haiku-4-5", strings.Repeat("x", 3000))
			}
		}()
	}
	wg.Wait()
}

// prose returns about n bytes of varied English text.
func prose(n int) string {
	words := strings.Fields("the gateway authenticates every caller, applies the organisation's policy, picks an upstream and records tokens and cost exactly once; " +
		"wedding vendors ask about venues, catering, photographers, florists and dates in June 2027 with budgets near £18,500 and guest lists of 120.")
	rng := rand.New(rand.NewPCG(5, 6))
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()[:n]
}

func benchmarkText(b *testing.B, model, s string) {
	c := counter(b)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.CountText(model, s)
	}
}

func BenchmarkCount2KB(b *testing.B)   { benchmarkText(b, "gpt-4o", prose(2<<10)) }
func BenchmarkCount100KB(b *testing.B) { benchmarkText(b, "gpt-4o", prose(100<<10)) }

// BenchmarkCount1MiBRepeated is the adversarial case: the goal is
// at most 200 ms of CPU per op.
func BenchmarkCount1MiBRepeated(b *testing.B) {
	for _, ch := range []string{"a", " ", "!"} {
		b.Run(map[string]string{"a": "letter", " ": "space", "!": "punct"}[ch], func(b *testing.B) {
			benchmarkText(b, "gpt-4o", strings.Repeat(ch, 1<<20))
		})
	}
}

// BenchmarkCount1MiBRandomLetters is the adversarial case without
// repetition: one 1 MiB run of random letters.
func BenchmarkCount1MiBRandomLetters(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte('a' + rng.IntN(26))
	}
	benchmarkText(b, "gpt-4o", string(buf))
}

func BenchmarkCountRequestCookbook(b *testing.B) {
	c := counter(b)
	r := cookbookMessages()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.CountRequest("gpt-4o", r)
	}
}
