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
	c      *compress.Compressor
	models map[string]bool // nil: every model
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
// context_length_exceeded before any upstream is called.
func (cs *compressStage) Compress(_ context.Context, x *policy.Exchange) (int, error) {
	oc := cs.orgs[x.Principal.Org]
	if oc == nil || x.Chat == nil || (oc.models != nil && !oc.models[x.Model]) {
		return 0, nil
	}
	m := cs.models[x.Model]
	out := m.maxOutput
	if n, ok := x.Chat.MaxOutputTokens(); ok {
		out = n
	}
	limit := compress.Limit(m.window, out, 0)
	res, err := oc.c.Compress(m.countAs, x.Chat, limit)
	for s, n := range res.Saved {
		cs.metrics.CompressionSaved.WithLabelValues(string(s)).Add(float64(n))
	}
	saved := max(res.Before-res.After, 0)
	x.TokensSaved += saved
	if err != nil {
		return saved, err
	}
	return saved, nil
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
		oc := &compressOrg{c: c}
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
