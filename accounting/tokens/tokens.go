// Package tokens counts the tokens of prompts and completions without any
// download at run time.
//
// # Library choice
//
// Counting uses github.com/tiktoken-go/tokenizer, a pure-Go port of
// OpenAI's tiktoken, rather than github.com/pkoukk/tiktoken-go, for two
// reasons. Its vocabularies are compiled into the binary, so nothing is
// downloaded at run time (pkoukk's loader fetches the BPE files over HTTP
// into a cache directory unless an offline loader is wired in). And its
// byte-pair merge switches from a linear scan to a heap for pieces of 96
// bytes and more, so a piece costs O(n log n), where pkoukk's scans all parts
// for every merge: O(n^2) per piece, which is hours for one 1 MiB piece.
// On ordinary text both give tiktoken's counts; this one takes about 200 µs
// per 2 KB prompt here (BenchmarkCount2KB). Special tokens are not
// interpreted: "<|endoftext|>" in user text is counted as the ordinary text
// it is (tiktoken's encode_ordinary), and never panics.
//
// # Long runs
//
// Even O(n log n) is too slow for a 1 MiB prompt of one repeated character,
// which is a single regex piece (about 300 ms of CPU). The Counter therefore
// cuts every run of letters, of punctuation or of whitespace longer than
// 1 KiB into 1 KiB segments, counts each distinct segment once and sums. On
// text without such runs (prose in scripts that separate words, code, JSON,
// base64) the count is exactly tiktoken's; where there are such runs (one
// character repeated, or a long paragraph of Thai) it differs by at most a
// couple of tokens per cut (the test suite measures this), and identical
// segments are counted only once, which makes repetitive adversarial input
// cheap.
//
// # Models
//
// OpenAI models are counted exactly with their encoding (o200k_base for
// gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4 and gpt-oss; cl100k_base for
// gpt-4, gpt-3.5 and the embedding models). Every other model (Anthropic,
// Gemini, unknown) gets the calibrated Estimate described on Counter.Estimate.
package tokens

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer/codec"

	"github.com/aigw/aigw/providers/llm"
)

// Encoding names a tiktoken encoding.
type Encoding string

// The encodings the Counter knows. None means the model has no public
// tokenizer and is estimated.
const (
	O200kBase  Encoding = "o200k_base"
	Cl100kBase Encoding = "cl100k_base"
	None       Encoding = ""
)

// Chat framing constants from OpenAI's cookbook ("How to count tokens with
// tiktoken", num_tokens_from_messages) for gpt-3.5-turbo-0613 and later,
// gpt-4, gpt-4o and gpt-4.1: every message costs 3 tokens of framing
// (<|start|>role<|message|>...<|end|>), a name 1 more, and the reply is primed
// with 3.
const (
	tokensPerMessage = 3
	tokensPerName    = 1
	tokensReply      = 3
)

// Tool framing, after the cookbook's num_tokens_for_tools for gpt-4o: 7
// tokens to open the tools section and 12 to close each function. The schema
// itself is counted as its JSON text, which is longer than the TypeScript-like
// form OpenAI renders it into, so the total does not under-count.
const (
	toolsInit = 7
	toolEnd   = 12
	// toolCallOverhead covers the framing of one tool call an assistant
	// message carries (id, type, name and arguments wrapper).
	toolCallOverhead = 3
)

// toolUseSystemPrompt is added to the estimate for models without a public
// tokenizer when the request offers tools: Anthropic documents that tool use
// adds a system prompt of a few hundred tokens (between 159 and 346 for its
// current models); 600 covers it with margin.
const toolUseSystemPrompt = 600

// Image token bounds for OpenAI vision models: a low-detail image costs a
// fixed base; a high-detail (or auto) one costs base + per-tile tokens for up
// to 8 tiles of 512 px (an image is scaled to fit 2048x2048, then its short
// side to 768 px: at most 2x4 tiles). gpt-4o-mini bills images at its own,
// much larger, figures.
const (
	imageBase      = 85
	imageTile      = 170
	miniImageBase  = 2833
	miniImageTile  = 5667
	imageMaxTiles  = 8
	defaultPercent = 135
)

// runCut is the length in bytes after which a run of one character class is
// cut into segments for counting. See the package documentation.
const runCut = 1024

// Counter counts tokens. Build one with New at start and share it: it holds
// one encoder per encoding and is safe for concurrent use.
type Counter struct {
	o200k   *codec.Codec
	cl100k  *codec.Codec
	percent int
}

// Options tune a Counter. The zero value is the default.
type Options struct {
	// EstimatePercent multiplies the o200k_base count for models without a
	// public tokenizer, in percent. 0 means 135. See Counter.Estimate.
	EstimatePercent int
}

// New builds a Counter: both encoders are constructed here, once (the
// vocabularies are compiled into the binary; nothing is downloaded). It
// takes about a second and some 50 MB of heap the first time in a process.
func New(opts Options) *Counter {
	p := opts.EstimatePercent
	if p <= 0 {
		p = defaultPercent
	}
	return &Counter{o200k: codec.NewO200kBase(), cl100k: codec.NewCl100kBase(), percent: p}
}

// EncodingFor returns the encoding OpenAI uses for model, or None when the
// model has no public tokenizer (Anthropic, Gemini, anything unknown). A
// provider prefix ("openai/gpt-4o") and a fine-tune prefix ("ft:gpt-4o-...")
// are ignored.
func EncodingFor(model string) Encoding {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	switch {
	case hasFamily(m, "gpt-4o"), hasFamily(m, "chatgpt-4o"), hasFamily(m, "gpt-4.1"),
		hasFamily(m, "gpt-4.5"), hasFamily(m, "gpt-5"), hasFamily(m, "o1"),
		hasFamily(m, "o3"), hasFamily(m, "o4"), hasFamily(m, "gpt-oss"):
		return O200kBase
	case hasFamily(m, "gpt-4"), hasFamily(m, "gpt-3.5"), hasFamily(m, "gpt-35"),
		hasFamily(m, "text-embedding-3-small"), hasFamily(m, "text-embedding-3-large"),
		hasFamily(m, "text-embedding-ada-002"):
		return Cl100kBase
	}
	return None
}

// hasFamily reports whether m is family or family followed by a separator
// ("gpt-4o", "gpt-4o-mini", "gpt-5.1", "o3-mini").
func hasFamily(m, family string) bool {
	if !strings.HasPrefix(m, family) {
		return false
	}
	if len(m) == len(family) {
		return true
	}
	c := m[len(family)]
	return c == '-' || c == '.' || c == ':' || c == '_'
}

// Exact reports whether counts for model are tiktoken's own (true) or the
// calibrated estimate (false). Records made from an inexact count must be
// flagged as estimated.
func (c *Counter) Exact(model string) bool { return EncodingFor(model) != None }

// CountText returns the number of tokens of s for model: exact for OpenAI
// models, the Estimate for the others. It never panics and never fails; if
// the tokenizer reports an error the byte length (a hard upper bound for
// every byte-level tokenizer) is returned.
func (c *Counter) CountText(model, s string) int {
	switch EncodingFor(model) {
	case O200kBase:
		return c.count(c.o200k, s)
	case Cl100kBase:
		return c.count(c.cl100k, s)
	}
	return c.Estimate(s)
}

// Estimate returns the calibrated token estimate of s for a model without a
// public tokenizer (Anthropic, Gemini, anything unknown):
//
//	min(len(s), max(ceil(max(o200k(s), cl100k(s)) * EstimatePercent / 100), ceil(len(s)/4)))
//
// Calibration. Counting with real BPE vocabularies, rather than bytes/4,
// follows the content: base64, punctuation, emoji and non-Latin scripts,
// which bytes/4 under-counts by up to 2.9x (TestEstimateCalibration logs the
// ratios), come out high because both vocabularies split them finely too.
// Taking the larger of o200k_base and cl100k_base matters for non-Latin
// scripts, where the older, smaller vocabulary needs up to 3x more tokens
// (Hindi) and stands in for tokenizers less tuned to those scripts. The
// 135 % default margin then covers tokenizers less efficient than both on
// English and code (Anthropic's produce roughly 10-35 % more tokens than
// OpenAI's; Gemini's about as many or fewer). The byte length caps the
// result because no byte-level or byte-fallback tokenizer produces more
// tokens than bytes: the estimate never exceeds the true upper bound, which
// is all a reservation may hold. It costs two tokenizer passes.
func (c *Counter) Estimate(s string) int {
	return c.scale(max(c.count(c.o200k, s), c.count(c.cl100k, s)), len(s))
}

// scale applies the estimate margin and the bytes/4 floor to a count of
// something limit bytes long, and caps the result at limit.
func (c *Counter) scale(n, limit int) int {
	est := max((n*c.percent+99)/100, (limit+3)/4)
	return min(est, limit)
}

// count runs one encoder over s with the long-run cut described in the
// package documentation. A panic or error inside the tokenizer (none is
// known) degrades to the byte length rather than failing the request.
func (c *Counter) count(enc *codec.Codec, s string) (n int) {
	if s == "" {
		return 0
	}
	defer func() {
		if recover() != nil {
			n = len(s)
		}
	}()
	segs := cutLongRuns(s, runCut)
	if segs == nil {
		k, err := enc.Count(s)
		if err != nil {
			return len(s)
		}
		return k
	}
	seen := make(map[string]int, 4)
	for _, seg := range segs {
		k, ok := seen[seg]
		if !ok {
			var err error
			if k, err = enc.Count(seg); err != nil {
				k = len(seg)
			}
			seen[seg] = k
		}
		n += k
	}
	return n
}

// Character classes that form long regex pieces in tiktoken's split
// patterns: letters (with marks), punctuation and symbols, whitespace.
// Digits never form pieces longer than three characters.
const (
	classOther = iota
	classLetter
	classPunct
	classSpace
)

func classOf(r rune) int {
	switch {
	case r < utf8.RuneSelf:
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			return classLetter
		case r >= '0' && r <= '9':
			return classOther
		case r == ' ', r == '\t', r == '\n', r == '\r', r == '\v', r == '\f':
			return classSpace
		}
		return classPunct
	case unicode.IsLetter(r), unicode.Is(unicode.M, r):
		return classLetter
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsNumber(r):
		return classOther
	}
	return classPunct
}

// cutLongRuns returns s split into segments so that no run of one class is
// longer than limit bytes without a cut, or nil when s has no such run (the
// common case: nothing is allocated). Cuts fall on rune boundaries.
func cutLongRuns(s string, limit int) []string {
	var segs []string
	segStart, runStart, runClass := 0, 0, -1
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		cl := classOf(r)
		if cl != runClass || cl == classOther {
			runClass, runStart = cl, i
		} else if i-runStart >= limit {
			segs = append(segs, s[segStart:i])
			segStart, runStart = i, i
		}
		i += size
	}
	if segs == nil {
		return nil
	}
	return append(segs, s[segStart:])
}

// CountRequest returns the prompt tokens of a chat request for model, the
// way OpenAI's cookbook counts them: 3 tokens per message, the role, the
// content, the name (+1), tool calls, and 3 to prime the reply; plus the
// tools' schemas as JSON text, the response_format schema, and images at
// their maximum for the model. For models without a public tokenizer the
// total is computed as Estimate computes a text's (the larger of both
// vocabularies, with margin and a tool-use system prompt when tools are
// offered), capped by UpperBound.
func (c *Counter) CountRequest(model string, r *llm.Request) int {
	switch EncodingFor(model) {
	case O200kBase:
		return c.requestTokens(c.o200k, model, r)
	case Cl100kBase:
		return c.requestTokens(c.cl100k, model, r)
	}
	n := max(c.requestTokens(c.o200k, model, r), c.requestTokens(c.cl100k, model, r))
	if len(r.Tools) > 0 {
		n += toolUseSystemPrompt
	}
	return c.scale(n, UpperBound(model, r))
}

// requestTokens is CountRequest's sum with one encoder and no margin.
func (c *Counter) requestTokens(enc *codec.Codec, model string, r *llm.Request) int {
	n := tokensReply
	for i := range r.Messages {
		m := &r.Messages[i]
		n += tokensPerMessage + c.count(enc, m.Role) + c.count(enc, m.Content) + c.count(enc, m.Refusal)
		if m.Name != "" {
			n += c.count(enc, m.Name) + tokensPerName
		}
		for j := range m.Parts {
			p := &m.Parts[j]
			switch {
			case p.Type == "text":
				n += c.count(enc, p.Text)
			case p.Type == "image_url" && p.ImageURL != nil:
				n += imageTokens(model, p.ImageURL.Detail)
			default:
				n += c.count(enc, string(p.Raw))
			}
		}
		for j := range m.ToolCalls {
			tc := &m.ToolCalls[j]
			n += toolCallOverhead + c.count(enc, tc.Function.Name) + c.count(enc, tc.Function.Arguments)
		}
		if m.ToolCallID != "" {
			n += c.count(enc, m.ToolCallID)
		}
	}
	if len(r.Tools) > 0 {
		n += toolsInit
		for i := range r.Tools {
			f := &r.Tools[i].Function
			n += toolEnd + c.count(enc, f.Name) + c.count(enc, f.Description) + c.count(enc, string(f.Parameters))
		}
	}
	if len(r.ResponseFormat) > 0 {
		n += c.count(enc, string(r.ResponseFormat))
	}
	return n
}

// imageTokens is the most an image part can cost on model.
func imageTokens(model, detail string) int {
	base, tile := imageBase, imageTile
	if strings.Contains(strings.ToLower(model), "gpt-4o-mini") {
		base, tile = miniImageBase, miniImageTile
	}
	if detail == "low" {
		return base
	}
	return base + tile*imageMaxTiles
}

// UpperBound is a hard ceiling on the prompt tokens of r for any byte-level
// (or byte-fallback) tokenizer: the byte length of every text the request
// carries plus the framing tokens, images at their maximum, and the tool-use
// system prompt. Admission may reserve at most this much; a reservation
// based on it can never be short. It needs no tokenizer and costs O(size).
func UpperBound(model string, r *llm.Request) int {
	n := tokensReply
	for i := range r.Messages {
		m := &r.Messages[i]
		n += tokensPerMessage + len(m.Role) + len(m.Content) + len(m.Refusal)
		if m.Name != "" {
			n += len(m.Name) + tokensPerName
		}
		for j := range m.Parts {
			p := &m.Parts[j]
			switch {
			case p.Type == "text":
				n += len(p.Text)
			case p.Type == "image_url" && p.ImageURL != nil:
				n += imageTokens(model, p.ImageURL.Detail)
			default:
				n += len(p.Raw)
			}
		}
		for j := range m.ToolCalls {
			tc := &m.ToolCalls[j]
			n += toolCallOverhead + len(tc.Function.Name) + len(tc.Function.Arguments)
		}
		n += len(m.ToolCallID)
	}
	if len(r.Tools) > 0 {
		n += toolsInit + toolUseSystemPrompt
		for i := range r.Tools {
			f := &r.Tools[i].Function
			n += toolEnd + len(f.Name) + len(f.Description) + len(f.Parameters)
		}
	}
	return n + len(r.ResponseFormat)
}

// CountEmbeddingInput returns the tokens of an embeddings request's input
// for model: a string, a list of strings, a list of token ids, or a list of
// such lists. Token arrays count their length. Input that is none of these
// counts its byte length (an upper bound); it is validated elsewhere.
func (c *Counter) CountEmbeddingInput(model string, input json.RawMessage) int {
	var s string
	if json.Unmarshal(input, &s) == nil {
		return c.CountText(model, s)
	}
	var list []json.RawMessage
	if json.Unmarshal(input, &list) != nil {
		return len(input)
	}
	n := 0
	for _, item := range list {
		var str string
		var ids []int
		switch {
		case json.Unmarshal(item, &str) == nil:
			n += c.CountText(model, str)
		case json.Unmarshal(item, &ids) == nil:
			n += len(ids)
		default:
			// A bare token id in a flat list of ids.
			n++
		}
	}
	return n
}
