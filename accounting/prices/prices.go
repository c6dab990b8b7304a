// Package prices holds the per-model price table and computes the cost of a
// request's usage exactly, in integer micro-dollars.
//
// # Units and rounding
//
// A price is given per million tokens as a decimal ("2.50", "0.075") and
// stored as an integer number of micro-dollars per million tokens, which is
// exact for every price with at most six decimals (finer prices are
// rejected, not rounded). The cost of a record is
//
//	(uncached*input + cached*cached_input + cache_write*cache_write_price + completion*output) / 1e6
//
// computed in integers and rounded half up to the micro-dollar once, at the
// end. Summing records therefore never drifts.
//
// # Usage conventions
//
// llm.Usage follows OpenAI's conventions for every provider (the adapters
// convert): PromptTokens includes CachedTokens and CacheWriteTokens, and
// CompletionTokens includes ReasoningTokens. So
//
//	uncached = PromptTokens - CachedTokens - CacheWriteTokens
//
// bills at the input price, cached reads at cached_input, cache writes at
// cache_write, and all completion tokens (reasoning or "thinking" included,
// as OpenAI, Anthropic and Gemini all bill them) at output. Anthropic
// reports input_tokens without cache reads and writes; its adapter adds them
// in, so its uncached figure comes back out here unchanged.
//
// # Missing prices are never free
//
// A model the table does not know is unpriced: Cost reports priced=false
// and the ledger flags the record. An entry without cached_input or
// cache_write bills those tokens at its input price.
package prices

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/providers/llm"
)

// PerMillion is a price in micro-dollars per million tokens; equivalently,
// pico-dollars per token.
type PerMillion int64

// ParsePerMillion parses a decimal dollar price per million tokens ("2.50",
// "0.075") exactly. At most six decimals are accepted.
func ParsePerMillion(s string) (PerMillion, error) {
	v, err := accounting.ParseMicros(s)
	return PerMillion(v), err
}

// String formats p as dollars per million tokens.
func (p PerMillion) String() string { return accounting.MicroUSD(p).String() }

// Rates are the four prices of one model. Zero is a valid price (a free
// tier, a mock); absence is expressed by the model not being in the table.
type Rates struct {
	Input       PerMillion
	Output      PerMillion
	CachedInput PerMillion
	CacheWrite  PerMillion
}

// Price is what the table holds for one provider and model.
type Price struct {
	Provider string
	Model    string
	Rates
	// LongContext, when set, replaces Rates for requests whose prompt is
	// longer than its threshold (Gemini 2.5 Pro above 200k tokens).
	LongContext *LongContext
	// Source and AsOf say where the figures come from and when they were
	// read; Origin says which file (and line) defined them.
	Source string
	AsOf   string
	Origin string
}

// LongContext is a price tier for long prompts.
type LongContext struct {
	// AbovePromptTokens is the threshold: a request with more prompt tokens
	// (cached included) bills every token at these rates.
	AbovePromptTokens int
	Rates
}

// RatesFor returns the rates that apply to a request with this many prompt
// tokens.
func (p *Price) RatesFor(promptTokens int) Rates {
	if p.LongContext != nil && promptTokens > p.LongContext.AbovePromptTokens {
		return p.LongContext.Rates
	}
	return p.Rates
}

// Cost returns the cost of u at this price, rounded half up to the
// micro-dollar. Inconsistent usage (more cached than prompt tokens) is
// clamped so no count is negative; negative counts are treated as zero.
// Amounts beyond int64 saturate.
func (p *Price) Cost(u llm.Usage) accounting.MicroUSD {
	r := p.RatesFor(u.PromptTokens)
	cached := nonNeg(u.CachedTokens)
	write := nonNeg(u.CacheWriteTokens)
	var uncached uint64
	if prompt := nonNeg(u.PromptTokens); prompt > cached+write {
		uncached = prompt - cached - write
	}
	var acc acc128
	acc.add(uncached, r.Input)
	acc.add(cached, r.CachedInput)
	acc.add(write, r.CacheWrite)
	acc.add(nonNeg(u.CompletionTokens), r.Output)
	return acc.micros()
}

func nonNeg(n int) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// acc128 is an unsigned 128-bit sum of tokens x price products, so no
// realistic (or unrealistic) figure overflows before the final division.
type acc128 struct{ hi, lo uint64 }

func (a *acc128) add(tokens uint64, price PerMillion) {
	if price <= 0 || tokens == 0 {
		return
	}
	hi, lo := bits.Mul64(tokens, uint64(price))
	var carry uint64
	a.lo, carry = bits.Add64(a.lo, lo, 0)
	a.hi += hi + carry
}

// micros divides by one million, rounding half up, and saturates.
func (a *acc128) micros() accounting.MicroUSD {
	lo, carry := bits.Add64(a.lo, 500_000, 0)
	hi := a.hi + carry
	if hi >= 1_000_000 {
		return accounting.MicroUSD(1<<63 - 1)
	}
	q, _ := bits.Div64(hi, lo, 1_000_000)
	if q > 1<<63-1 {
		q = 1<<63 - 1
	}
	return accounting.MicroUSD(q)
}

// Table is an immutable price table, safe for concurrent use. Build it with
// New, Load or Merge; a new policy generation builds a new Table.
type Table struct {
	// byKey maps provider + "\x00" + model to its price.
	byKey map[string]*Price
}

func key(provider, model string) string {
	return strings.ToLower(provider) + "\x00" + strings.ToLower(model)
}

// New builds a table from prices. Two prices for the same provider and
// model (compared case-insensitively) are an error, as is a negative rate
// or an empty provider or model. Model "*" is the provider's catch-all.
func New(list []Price) (*Table, error) {
	t := &Table{byKey: make(map[string]*Price, len(list))}
	var errs []error
	for i := range list {
		p := list[i]
		if err := p.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		k := key(p.Provider, p.Model)
		if prev, dup := t.byKey[k]; dup {
			errs = append(errs, fmt.Errorf("%s: price for %s/%s already given at %s", p.Origin, p.Provider, p.Model, prev.Origin))
			continue
		}
		t.byKey[k] = &p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func (p *Price) check() error {
	where := p.Origin
	if where == "" {
		where = p.Provider + "/" + p.Model
	}
	if p.Provider == "" || p.Model == "" {
		return fmt.Errorf("%s: provider and model are required", where)
	}
	tiers := []Rates{p.Rates}
	if p.LongContext != nil {
		if p.LongContext.AbovePromptTokens <= 0 {
			return fmt.Errorf("%s: long_context.above_prompt_tokens must be positive", where)
		}
		tiers = append(tiers, p.LongContext.Rates)
	}
	for _, r := range tiers {
		if r.Input < 0 || r.Output < 0 || r.CachedInput < 0 || r.CacheWrite < 0 {
			return fmt.Errorf("%s: negative price", where)
		}
	}
	return nil
}

// Merge returns a new table holding t's prices with overrides applied: an
// override for a provider and model already in t replaces it whole, others
// are added. t is not modified. Policies use it to override or add prices;
// it runs again on every policy reload.
func (t *Table) Merge(overrides []Price) (*Table, error) {
	add, err := New(overrides)
	if err != nil {
		return nil, err
	}
	out := &Table{byKey: make(map[string]*Price, len(t.byKey)+len(add.byKey))}
	for k, p := range t.byKey {
		out.byKey[k] = p
	}
	for k, p := range add.byKey {
		out.byKey[k] = p
	}
	return out, nil
}

// Len returns the number of prices in the table.
func (t *Table) Len() int { return len(t.byKey) }

// All returns the table's prices sorted by provider and model.
func (t *Table) All() []Price {
	out := make([]Price, 0, len(t.byKey))
	for _, p := range t.byKey {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Model < out[j].Model
	})
	return out
}

// trimVersion removes the snapshot suffix providers append to a model
// name: OpenAI's dates (-2024-08-06), Anthropic's (-20250929), Gemini's
// numbered versions (-001) and the -latest alias. It returns model
// unchanged when there is none.
func trimVersion(model string) string {
	if base, ok := strings.CutSuffix(model, "-latest"); ok {
		return base
	}
	digitsAt := func(s string, pos ...int) bool {
		for _, i := range pos {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	n := len(model)
	// -YYYY-MM-DD
	if n > 11 && model[n-11] == '-' && model[n-6] == '-' && model[n-3] == '-' &&
		digitsAt(model, n-10, n-9, n-8, n-7, n-5, n-4, n-2, n-1) {
		return model[:n-11]
	}
	// -YYYYMMDD
	if n > 9 && model[n-9] == '-' && digitsAt(model, n-8, n-7, n-6, n-5, n-4, n-3, n-2, n-1) {
		return model[:n-9]
	}
	// -NNN
	if n > 4 && model[n-4] == '-' && digitsAt(model, n-3, n-2, n-1) {
		return model[:n-4]
	}
	return model
}

// Lookup returns the price of model at provider. Provider and model compare
// case-insensitively. It tries, in order:
//
//  1. the exact model;
//  2. the model without a version suffix: "gpt-4o-2024-08-06" -> "gpt-4o",
//     "claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5",
//     "gemini-2.0-flash-001" -> "gemini-2.0-flash", "x-latest" -> "x";
//  3. the provider's catch-all model "*", if the table has one.
//
// There is no other prefix matching: "gpt-4o-mini" never falls back to
// "gpt-4o". ok is false when nothing matched: the model is unpriced, which
// is not the same as free. The Price is a copy; its LongContext is shared
// with the table and must not be modified.
func (t *Table) Lookup(provider, model string) (Price, bool) {
	if p := t.lookup(provider, model); p != nil {
		return *p, true
	}
	return Price{}, false
}

func (t *Table) lookup(provider, model string) *Price {
	if t == nil {
		return nil
	}
	if p, ok := t.byKey[key(provider, model)]; ok {
		return p
	}
	if base := trimVersion(model); base != model {
		if p, ok := t.byKey[key(provider, base)]; ok {
			return p
		}
	}
	return t.byKey[key(provider, "*")]
}

// ForTarget returns the price for an upstream target: first under its
// policy provider id (so a policy can price "openai-eu" apart), then under
// its provider type ("openai", "anthropic", "gemini", "azure", "mock").
func (t *Table) ForTarget(tg *llm.Target) (Price, bool) {
	if p, ok := t.Lookup(tg.Provider, tg.Model); ok {
		return p, true
	}
	if tg.Type != "" && !strings.EqualFold(tg.Type, tg.Provider) {
		return t.Lookup(tg.Type, tg.Model)
	}
	return Price{}, false
}

// Unpriced returns the targets the table has no price for (by ForTarget's
// rules), in order. Configuration validation uses it: a routable model
// whose target is unpriced is an error.
func (t *Table) Unpriced(targets []llm.Target) []llm.Target {
	var out []llm.Target
	for i := range targets {
		if _, ok := t.ForTarget(&targets[i]); !ok {
			out = append(out, targets[i])
		}
	}
	return out
}

// Cost prices u for model at provider. priced is false when the table has
// no price for it; the cost is then 0 and must be recorded as unpriced, not
// as free.
func (t *Table) Cost(provider, model string, u llm.Usage) (cost accounting.MicroUSD, priced bool) {
	p := t.lookup(provider, model)
	if p == nil {
		return 0, false
	}
	return p.Cost(u), true
}
