package proxy

import (
	"context"
	"fmt"

	"github.com/aigw/aigw/accounting/tokens"
	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/policy/compress"
)

// compressOrg is one org's compressor and the models it applies to.
type compressOrg struct {
	c         *compress.Compressor
	models    map[string]bool // nil: every model
	fitBudget bool            // compress to fit a budget shortfall first
}

// compressModel is what compression needs of a model: the upstream model
// name tokens are counted with (the first target's) and the smallest
// context window of its targets with the output cap they reserve.
type compressModel struct {
	countAs   string
	window    int
	maxOutput int
}

// compressStage is one generation's prompt compression. Immutable; safe
// for concurrent use.
type compressStage struct {
	orgs    map[string]*compressOrg
	models  map[string]compressModel
	metrics *Metrics
}

// Compress shortens x's chat messages with its org's strategies, fitting
// them into the model's context window (less the output the request
// reserves) and the policy's max_input_tokens. It returns the prompt
// tokens saved; a request that still does not fit is refused with 400
// context_length_exceeded before any upstream is called. A request the
// budget stage already compressed (x.Compressed) is left as it is.
func (cs *compressStage) Compress(_ context.Context, x *policy.Exchange) (int, error) {
	oc := cs.org(x)
	if oc == nil || x.Compressed {
		return 0, nil
	}
	return cs.run(oc, x, 0)
}

// org is x's org's compressor when it compresses x's model, else nil.
func (cs *compressStage) org(x *policy.Exchange) *compressOrg {
	oc := cs.orgs[x.Principal.Org]
	if oc == nil || x.Chat == nil || (oc.models != nil && !oc.models[x.Model]) {
		return nil
	}
	return oc
}

// run compresses x into the model's limit (and the policy's
// max_input_tokens), tightened to maxPrompt tokens when that is positive, and accounts the tokens saved (in x and the
// metric) whether or not it fit, and x's prompt estimate. It marks x
// compressed when it fit.
func (cs *compressStage) run(oc *compressOrg, x *policy.Exchange, maxPrompt int) (int, error) {
	m := cs.models[x.Model]
	out := m.maxOutput
	if n, ok := x.Chat.MaxOutputTokens(); ok {
		out = n
	}
	limit := compress.Limit(m.window, out, maxPrompt)
	res, err := oc.c.Compress(m.countAs, x.Chat, limit)
	for s, n := range res.Saved {
		cs.metrics.CompressionSaved.WithLabelValues(string(s)).Add(float64(n))
	}
	saved := max(res.Before-res.After, 0)
	x.TokensSaved += saved
	if res.After > 0 { // routing checks context windows against the shortened prompt
		x.EstimatedPromptTokens = res.After
	}
	if err == nil {
		x.Compressed = true
	}
	return saved, err
}

// FitBudget is the cost-aware path: when x's org opted in
// (compression.fit_budget), it compresses x so that its prompt is at most
// maxPrompt tokens (and fits the model as Compress would). It reports
// whether x now fits; x may have been shortened either way.
func (cs *compressStage) FitBudget(x *policy.Exchange, maxPrompt int) bool {
	oc := cs.org(x)
	if oc == nil || !oc.fitBudget || x.Compressed || maxPrompt <= 0 {
		return false
	}
	_, err := cs.run(oc, x, maxPrompt)
	return err == nil
}

// buildCompress returns the generation's compression stage; nil when no
// org compresses.
func buildCompress(pol *configs.Policy, counter func() *tokens.Counter, m *Metrics) (*compressStage, error) {
	st := &compressStage{orgs: map[string]*compressOrg{}, models: map[string]compressModel{}, metrics: m}
	for i := range pol.Orgs {
		o := &pol.Orgs[i]
		p := &o.Compression
		if len(p.Strategies) == 0 {
			continue
		}
		opts := compress.DefaultOptions()
		opts.PreservePrefix = !p.RewritePrefix
		for _, s := range p.Strategies {
			opts.Enabled = append(opts.Enabled, compress.Strategy(s))
		}
		if p.MaxToolResultTokens > 0 {
			opts.MaxToolResultTokens = p.MaxToolResultTokens
		}
		opts.KeepLastTurns, opts.MaxInputTokens = p.KeepLastTurns, p.MaxInputTokens
		c, err := compress.New(opts, counter())
		if err != nil {
			return nil, fmt.Errorf("org %s: compression: %w", o.ID, err)
		}
		oc := &compressOrg{c: c, fitBudget: p.FitBudget}
		for _, id := range p.Models {
			if id == configs.AllModels {
				oc.models = nil
				break
			}
			if oc.models == nil {
				oc.models = map[string]bool{}
			}
			oc.models[id] = true
		}
		st.orgs[o.ID] = oc
	}
	if len(st.orgs) == 0 {
		return nil, nil
	}
	for _, md := range pol.Models {
		cm := compressModel{}
		for j, t := range md.Targets {
			if j == 0 {
				cm.countAs = t.Model
				if cm.countAs == "" {
					cm.countAs = md.ID
				}
			}
			if t.ContextWindow > 0 && (cm.window == 0 || t.ContextWindow < cm.window) {
				cm.window, cm.maxOutput = t.ContextWindow, t.MaxTokens
			}
		}
		st.models[md.ID] = cm
	}
	return st, nil
}
