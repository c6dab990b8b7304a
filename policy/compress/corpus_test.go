package compress

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aigw/aigw/providers/llm"
)

// corpusFile is one request of testdata/corpus: realistic requests to
// wedding-vendor assistants (photographers, venues, planners, caterers,
// florists, DJs...) with system prompts, multi-turn history, tool schemas,
// JSON tool results, pasted e-mails with messy white space, repeated system
// prompts and code blocks.
type corpusFile struct {
	name string
	data []byte
}

func readCorpus(t testing.TB) []corpusFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 20 {
		t.Fatalf("corpus has %d requests, want at least 20", len(paths))
	}
	files := make([]corpusFile, len(paths))
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[i] = corpusFile{strings.TrimSuffix(filepath.Base(p), ".json"), data}
	}
	return files
}

// Measured mean token saving ratios of the corpus (all strategies but
// fit_history, which needs a limit; see TestCorpus's log). The bounds are
// loose around them so that harmless changes pass while a strategy that
// stops working, or starts eating content, fails.
const (
	preservedRatioLo, preservedRatioHi   = 0.15, 0.24 // measured 0.194
	aggressiveRatioLo, aggressiveRatioHi = 0.18, 0.28 // measured 0.230
)

// TestCorpus runs every strategy over the corpus, with and without
// PreservePrefix, and checks for each request: the last user message is
// byte-identical, tool calls stay paired and the request stays valid,
// After is the request's count and the savings add up to Before-After,
// the protected prefix is untouched, the output is deterministic (two
// runs from the same bytes give the same bytes) and idempotent (a second
// pass saves nothing and changes nothing). It logs each request's saving
// and asserts the mean saving ratio is in the measured range.
func TestCorpus(t *testing.T) {
	files := readCorpus(t)
	for _, preserve := range []bool{true, false} {
		o := DefaultOptions()
		o.Enabled = all()
		o.PreservePrefix = preserve
		cp := mustNew(t, o, realCounter())
		var sum float64
		per := map[Strategy]int{}
		for _, f := range files {
			r := parse(t, f.data)
			in := parse(t, f.data)
			if err := checkPairing(in); err != nil {
				t.Fatalf("%s: corpus request is invalid: %v", f.name, err)
			}
			res, err := cp.Compress(r.Model, r, 0)
			if err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
			ratio := float64(res.Before-res.After) / float64(res.Before)
			sum += ratio
			t.Logf("preserve=%-5v %-34s %6d -> %6d tokens  %5.1f%%  %v", preserve, f.name, res.Before, res.After, 100*ratio, res.Saved)
			saved := 0
			for s, n := range res.Saved {
				saved += n
				per[s] += n
			}
			if got := realCounter().CountRequest(r.Model, r); got != res.After || saved != res.Before-res.After {
				t.Errorf("%s: counts %d, After %d, Before %d, saved %d", f.name, got, res.After, res.Before, saved)
			}
			if !bytes.Equal(lastUser(r), lastUser(in)) {
				t.Errorf("%s: last user message changed", f.name)
			}
			if err := checkPairing(r); err != nil {
				t.Errorf("%s: %v", f.name, err)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("%s: compressed request is invalid: %v", f.name, err)
			}
			if preserve {
				checkPrefix(t, f.name, in, r)
			}
			out := encode(r)
			r2 := parse(t, f.data)
			if _, err := cp.Compress(r2.Model, r2, 0); err != nil || !bytes.Equal(encode(r2), out) {
				t.Errorf("%s: not deterministic (%v)", f.name, err)
			}
			res, err = cp.Compress(r.Model, r, 0)
			if err != nil || res.Saved != nil || !bytes.Equal(encode(r), out) {
				t.Errorf("%s: second pass saved %v (%v)", f.name, res.Saved, err)
			}
		}
		mean := sum / float64(len(files))
		t.Logf("preserve=%v: mean saving %.3f over %d requests; tokens saved per strategy %v", preserve, mean, len(files), per)
		lo, hi := preservedRatioLo, preservedRatioHi
		if !preserve {
			lo, hi = aggressiveRatioLo, aggressiveRatioHi
		}
		if mean < lo || mean > hi {
			t.Errorf("preserve=%v: mean saving ratio %.3f outside [%.2f, %.2f]", preserve, mean, lo, hi)
		}
		for _, s := range Strategies()[:4] {
			if per[s] == 0 {
				t.Errorf("preserve=%v: %s saved nothing on the whole corpus", preserve, s)
			}
		}
	}
}

// checkPrefix asserts that the tools, response_format and leading system
// messages are byte-identical.
func checkPrefix(t *testing.T, name string, in, out *llm.Request) {
	t.Helper()
	tools := func(r *llm.Request) []byte {
		return (&llm.Request{Tools: r.Tools, ResponseFormat: r.ResponseFormat}).AppendJSON(nil)
	}
	if !bytes.Equal(tools(in), tools(out)) {
		t.Errorf("%s: tools or response_format changed under PreservePrefix", name)
	}
	for i := range in.Messages {
		if !isSystem(in.Messages[i].Role) {
			break
		}
		if i >= len(out.Messages) || !bytes.Equal(in.Messages[i].AppendJSON(nil), out.Messages[i].AppendJSON(nil)) {
			t.Errorf("%s: system message %d changed under PreservePrefix", name, i)
		}
	}
}

// TestCorpusFit gives every corpus request a limit of 60% of its tokens:
// fit_history (after the other strategies) must make it fit, or, when even
// its whole droppable history is not enough, refuse with
// context_length_exceeded, never anything else.
func TestCorpusFit(t *testing.T) {
	o := DefaultOptions()
	o.Enabled = all()
	cp := mustNew(t, o, realCounter())
	fitted, refused := 0, 0
	for _, f := range readCorpus(t) {
		for _, model := range []string{"gpt-4o", "claude-sonnet-4"} {
			r := parse(t, f.data)
			last := lastUser(r)
			limit := realCounter().CountRequest(model, r) * 6 / 10
			res, err := cp.Compress(model, r, limit)
			var e *llm.Error
			switch {
			case err == nil:
				fitted++
				if got := realCounter().CountRequest(model, r); got > limit || got != res.After {
					t.Errorf("%s/%s: %d tokens (After %d), limit %d", f.name, model, got, res.After, limit)
				}
			case errors.As(err, &e) && e.Code == "context_length_exceeded":
				refused++
				if res.After <= limit {
					t.Errorf("%s/%s: refused at %d tokens, limit %d", f.name, model, res.After, limit)
				}
			default:
				t.Fatalf("%s/%s: %v", f.name, model, err)
			}
			if !bytes.Equal(lastUser(r), last) {
				t.Errorf("%s/%s: last user message changed", f.name, model)
			}
			if err := checkPairing(r); err != nil {
				t.Errorf("%s/%s: %v", f.name, model, err)
			}
			t.Logf("%-34s %-16s limit %6d: after %6d, omitted %2d, err %v", f.name, model, limit, res.After, res.Omitted, err)
		}
	}
	t.Logf("%d fitted, %d refused", fitted, refused)
	if fitted < 30 {
		t.Errorf("only %d of %d requests fitted 60%% of their size", fitted, fitted+refused)
	}
}

// benchRequest builds a realistic request of about size bytes (encoded)
// from the corpus: one system prompt, then whole conversations (so tool
// calls stay paired), then a last user question.
func benchRequest(b testing.TB, size int) *llm.Request {
	r := &llm.Request{Model: "gpt-4o"}
	for _, f := range readCorpus(b) {
		if len(f.data) > size {
			continue
		}
		c := parse(b, f.data)
		if len(r.Messages) == 0 {
			r.Messages = append(r.Messages, c.Messages[0])
		}
		for _, m := range c.Messages {
			if !isSystem(m.Role) {
				r.Messages = append(r.Messages, m)
			}
		}
		for _, tl := range c.Tools {
			if !slices.ContainsFunc(r.Tools, func(x llm.Tool) bool { return x.Function.Name == tl.Function.Name }) {
				r.Tools = append(r.Tools, tl)
			}
		}
		if len(encode(r)) >= size {
			break
		}
	}
	r.Messages = append(r.Messages, text("user", "Thanks! What should I do first?"))
	return r
}

func benchCompress(b *testing.B, size int, counted bool) {
	o := DefaultOptions()
	o.Enabled = all()
	cp := mustNew(b, o, realCounter())
	src := benchRequest(b, size)
	before := realCounter().CountRequest(src.Model, src)
	res, err := mustNew(b, Options{Enabled: Strategies()[:4], PreservePrefix: true}, realCounter()).Compress(src.Model, clone(src), 0)
	if err != nil {
		b.Fatal(err)
	}
	limit := res.After * 8 / 10 // fit_history has work to do too
	b.ReportMetric(float64(len(encode(src))), "req_bytes")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := clone(src)
		var err error
		if counted {
			_, err = cp.CompressCounted(r.Model, r, limit, before)
		} else {
			_, err = cp.Compress(r.Model, r, limit)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// The benchmarks run all strategies on a realistic request (the loop
// includes a shallow clone of it: one allocation per slice).
func BenchmarkCompress4KB(b *testing.B)         { benchCompress(b, 4<<10, false) }
func BenchmarkCompress64KB(b *testing.B)        { benchCompress(b, 64<<10, false) }
func BenchmarkCompress64KBCounted(b *testing.B) { benchCompress(b, 64<<10, true) }

func BenchmarkCompressDisabled(b *testing.B) {
	cp := mustNew(b, Options{}, realCounter())
	r := benchRequest(b, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cp.Compress(r.Model, r, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCount64KB is the floor: one CountRequest of the same request.
func BenchmarkCount64KB(b *testing.B) {
	r := benchRequest(b, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		realCounter().CountRequest(r.Model, r)
	}
}

// BenchmarkCount4KB is the floor of BenchmarkCompress4KB.
func BenchmarkCount4KB(b *testing.B) {
	r := benchRequest(b, 4<<10)
	b.ReportAllocs()
	for b.Loop() {
		realCounter().CountRequest(r.Model, r)
	}
}

// TestCorpusEstimatedModel runs the corpus for a model without a public
// tokenizer, where counts are estimates that do not add up message by
// message: After must still be the request's recount, the last user
// message byte-identical, and a second pass a no-op.
func TestCorpusEstimatedModel(t *testing.T) {
	o := DefaultOptions()
	o.Enabled = all()
	cp := mustNew(t, o, realCounter())
	const model = "claude-sonnet-4"
	for _, f := range readCorpus(t) {
		r := parse(t, f.data)
		last := lastUser(r)
		res, err := cp.Compress(model, r, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := realCounter().CountRequest(model, r); got != res.After || res.After > res.Before {
			t.Errorf("%s: counts %d, result %+v", f.name, got, res)
		}
		if !bytes.Equal(lastUser(r), last) {
			t.Errorf("%s: last user message changed", f.name)
		}
		out := encode(r)
		if res, err = cp.Compress(model, r, 0); err != nil || res.Saved != nil || !bytes.Equal(encode(r), out) {
			t.Errorf("%s: second pass saved %v (%v)", f.name, res.Saved, err)
		}
	}
}
