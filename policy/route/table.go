package route

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"

	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/providers/llm"
)

// MaxTargets is the most targets one Table (one model alias) may have; the
// planner keeps target sets in 64-bit masks.
const MaxTargets = 64

// TableConfig is one model alias's routing policy.
type TableConfig struct {
	// Model is the alias, used in error messages.
	Model    string
	Strategy Strategy
	// Targets in configured order; Plan returns indices into this slice.
	Targets []Target
	// Rules are the org overrides; nil means none (and no org may pin).
	Rules *Rules
	Retry RetryPolicy
}

// Table routes one model alias for one config generation. Its immutable
// parts are built by NewTable; the live parts (breakers, EWMA, in-flight)
// are the Registry's. Safe for concurrent use.
type Table struct {
	reg      *Registry
	model    string
	strategy Strategy
	targets  []Target
	states   []*state
	retry    RetryPolicy

	all     uint64               // every target
	caps    [len(capBits)]uint64 // targets declaring each capability, in capBits order
	byCost  []int                // StrategyCost order
	orgs    map[string]orgMask
	pins    map[string]uint64 // target id or provider id -> targets
	windows bool              // some target declares a context window
}

// orgMask is an org's compiled rule for one table.
type orgMask struct {
	allow uint64
	pin   bool
}

// NewTable builds an alias's routing on r's state. It fails on an empty or
// oversized target list, duplicate or empty ids, negative weights, and a
// weighted strategy without a positive weight.
func (r *Registry) NewTable(c TableConfig) (*Table, error) {
	n := len(c.Targets)
	if n == 0 {
		return nil, fmt.Errorf("route: model %q has no targets", c.Model)
	}
	if n > MaxTargets {
		return nil, fmt.Errorf("route: model %q has %d targets, more than %d", c.Model, n, MaxTargets)
	}
	if int(c.Strategy) >= len(strategyNames) {
		return nil, fmt.Errorf("route: model %q: unknown strategy %d", c.Model, c.Strategy)
	}
	t := &Table{
		reg:      r,
		model:    c.Model,
		strategy: c.Strategy,
		targets:  slices.Clone(c.Targets),
		states:   make([]*state, n),
		all:      1<<uint(n) - 1,
		pins:     make(map[string]uint64, 2*n),
	}
	if n == MaxTargets {
		t.all = ^uint64(0)
	}
	seen := make(map[string]bool, n)
	positive := false
	for i := range t.targets {
		tg := &t.targets[i]
		if tg.ID == "" {
			return nil, fmt.Errorf("route: model %q: target %d has no id", c.Model, i)
		}
		if seen[tg.ID] {
			return nil, fmt.Errorf("route: model %q lists target %q twice", c.Model, tg.ID)
		}
		seen[tg.ID] = true
		if tg.Weight < 0 {
			return nil, fmt.Errorf("route: model %q: target %q has a negative weight", c.Model, tg.ID)
		}
		positive = positive || tg.Weight > 0
		bit := uint64(1) << uint(i)
		for k, cb := range capBits {
			if tg.Caps&cb.c != 0 {
				t.caps[k] |= bit
			}
		}
		t.windows = t.windows || tg.ContextWindow > 0
		t.pins[tg.ID] |= bit
		if tg.Provider != "" && tg.Provider != tg.ID {
			t.pins[tg.Provider] |= bit
		}
		s := r.target(tg.ID)
		if tg.Provider != "" {
			p := tg.Provider
			s.provider.Store(&p)
		}
		t.states[i] = s
	}
	if c.Strategy == StrategyWeighted && !positive {
		return nil, fmt.Errorf("route: model %q: the weighted strategy needs a target with a positive weight", c.Model)
	}
	t.byCost = make([]int, n)
	for i := range t.byCost {
		t.byCost[i] = i
	}
	slices.SortStableFunc(t.byCost, func(a, b int) int {
		switch ca, cb := t.targets[a].Cost, t.targets[b].Cost; {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return 0
	})
	if c.Rules != nil {
		t.orgs = make(map[string]orgMask, len(c.Rules.byOrg))
		for org, rule := range c.Rules.byOrg {
			allow := t.all
			if len(rule.Only) > 0 {
				allow = t.match(rule.Only)
			}
			allow &^= t.match(rule.Bar)
			t.orgs[org] = orgMask{allow: allow, pin: rule.AllowPin}
		}
	}
	t.retry = c.Retry
	if t.retry.Rand == nil {
		t.retry.Rand = r.rand
	}
	t.retry = t.retry.withDefaults()
	return t, nil
}

// match returns the targets whose id or provider is in names.
func (t *Table) match(names []string) uint64 {
	var m uint64
	for _, name := range names {
		m |= t.pins[name]
	}
	return m
}

// Model returns the alias the table routes.
func (t *Table) Model() string { return t.model }

// Len returns the number of targets.
func (t *Table) Len() int { return len(t.targets) }

// Target returns the i-th target descriptor.
func (t *Table) Target(i int) Target { return t.targets[i] }

// Plan appends to dst[:0] the indices of the targets to try for x, in
// order, and returns it. It reads live state but changes nothing, so a plan
// may be computed for display as well as for sending; Begin plans for
// sending. With a dst of capacity Len it does not allocate.
//
// Filtering, in order:
//
//  1. Org rules: targets the org is barred from, or not pinned to, are
//     dropped; none left is a 403 (KindPermission).
//  2. Debug pin (x.PinTarget, a target or provider id): refused with a 403
//     unless the org's rule allows pinning, a 400 when nothing matches. The
//     plan is the matching targets, breakers ignored, in strategy order.
//  3. Capabilities: a request that needs tools, images or JSON mode keeps
//     only targets declaring them (none left: 400, KindInvalidRequest,
//     code "unsupported_capability"); one whose estimated prompt plus
//     requested output exceeds a target's context window drops it (none
//     left: KindContextLength).
//  4. Breakers: open targets whose cooldown has not ended are dropped. If
//     that drops every target, the plan is the one whose cooldown ends
//     first, admitted as a last resort: a request is never refused only
//     because every breaker is open.
//
// The survivors are ordered by the table's Strategy.
func (t *Table) Plan(dst []int, x *policy.Exchange) ([]int, error) {
	dst, _, err := t.plan(dst[:0], x)
	return dst, err
}

// plan is Plan, also saying whether the plan must be admitted past the
// breakers (pinned, or last resort).
func (t *Table) plan(dst []int, x *policy.Exchange) ([]int, bool, error) {
	elig := t.all
	var rule orgMask
	var ruled bool
	if x.Principal != nil && t.orgs != nil {
		rule, ruled = t.orgs[x.Principal.Org]
	}
	if ruled {
		if elig &= rule.allow; elig == 0 {
			return dst, false, &llm.Error{Kind: llm.KindPermission, Code: "model_not_allowed", Param: "model",
				Msg: "Your organisation's routing rules exclude every upstream of the model `" + t.model + "`."}
		}
	}
	pinned := x.PinTarget != ""
	if pinned {
		if !ruled || !rule.pin {
			return dst, false, &llm.Error{Kind: llm.KindPermission, Code: "pin_not_allowed",
				Msg: "Pinning an upstream target is not allowed for your organisation."}
		}
		m, ok := t.pins[x.PinTarget]
		if !ok {
			return dst, false, &llm.Error{Kind: llm.KindInvalidRequest, Code: "unknown_target",
				Msg: "The model `" + t.model + "` has no upstream target `" + x.PinTarget + "`."}
		}
		if elig &= m; elig == 0 {
			return dst, false, &llm.Error{Kind: llm.KindPermission, Code: "target_not_allowed",
				Msg: "Your organisation may not use the upstream target `" + x.PinTarget + "`."}
		}
	}
	elig, err := t.filterNeeds(elig, x)
	if err != nil {
		return dst, false, err
	}
	if pinned {
		return t.order(dst, elig), true, nil
	}
	live, soonest := t.live(elig)
	if live == 0 {
		return append(dst, soonest), true, nil
	}
	return t.order(dst, live), false, nil
}

// filterNeeds drops the targets lacking a capability x needs.
func (t *Table) filterNeeds(elig uint64, x *policy.Exchange) (uint64, error) {
	if need := Needs(x.Chat); need != 0 {
		for k, cb := range capBits {
			if need&cb.c == 0 {
				continue
			}
			if elig&t.caps[k] == 0 {
				return 0, &llm.Error{Kind: llm.KindInvalidRequest, Code: "unsupported_capability",
					Msg: "No upstream of the model `" + t.model + "` available to you supports " + cb.name + "."}
			}
			elig &= t.caps[k]
		}
	}
	if t.windows && x.EstimatedPromptTokens > 0 {
		tokens := x.EstimatedPromptTokens
		if x.Chat != nil {
			if out, ok := x.Chat.MaxOutputTokens(); ok && out > 0 {
				tokens += out
			}
		}
		fits, largest := uint64(0), 0
		for m := elig; m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m)
			w := t.targets[i].ContextWindow
			if w == 0 || w >= tokens {
				fits |= 1 << uint(i)
			}
			largest = max(largest, w)
		}
		if fits == 0 {
			return 0, &llm.Error{Kind: llm.KindContextLength, Code: "context_length_exceeded", Param: "messages",
				Msg: "This request needs about " + strconv.Itoa(tokens) + " tokens, more than any upstream of the model `" +
					t.model + "` accepts (at most " + strconv.Itoa(largest) + ")."}
		}
		elig = fits
	}
	return elig, nil
}

// live returns the targets of elig whose breaker admits traffic (closed,
// half-open, or open with the cooldown over), and the open one whose
// cooldown ends first.
func (t *Table) live(elig uint64) (uint64, int) {
	var live uint64
	var now int64
	haveNow := false // read the clock only when a breaker is open
	soonest, until := -1, int64(0)
	for m := elig; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		s := t.states[i]
		if State(s.st.Load()) != Open {
			live |= 1 << uint(i)
			continue
		}
		if !haveNow {
			now, haveNow = t.reg.now().UnixNano(), true
		}
		u := s.openUntil.Load()
		if u <= now {
			live |= 1 << uint(i)
		} else if soonest < 0 || u < until {
			soonest, until = i, u
		}
	}
	return live, soonest
}

// order appends the targets of set to dst in strategy order.
func (t *Table) order(dst []int, set uint64) []int {
	switch t.strategy {
	case StrategyCost:
		for _, i := range t.byCost {
			if set&(1<<uint(i)) != 0 {
				dst = append(dst, i)
			}
		}
		return dst
	case StrategyWeighted:
		return t.weighted(dst, set)
	case StrategyLeastLatency, StrategyLeastBusy:
		start := len(dst)
		var keys [MaxTargets]int64
		for m := set; m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m)
			if t.strategy == StrategyLeastLatency {
				keys[i] = t.states[i].ewma.Load()
			} else {
				keys[i] = t.states[i].inFlight.Load()
			}
			dst = append(dst, i)
		}
		// Insertion sort: stable (ties keep configured order), no
		// allocation, and n is small.
		s := dst[start:]
		for a := 1; a < len(s); a++ {
			for b := a; b > 0 && keys[s[b]] < keys[s[b-1]]; b-- {
				s[b], s[b-1] = s[b-1], s[b]
			}
		}
		return dst
	}
	for m := set; m != 0; m &= m - 1 {
		dst = append(dst, bits.TrailingZeros64(m))
	}
	return dst
}

// weighted appends set in a random order drawn in proportion to the
// weights, without replacement; zero-weight targets follow in configured
// order.
func (t *Table) weighted(dst []int, set uint64) []int {
	var idx [MaxTargets]int
	n, total := 0, uint64(0)
	var zero uint64
	for m := set; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if w := t.targets[i].Weight; w > 0 {
			idx[n] = i
			n++
			total += uint64(w)
		} else {
			zero |= 1 << uint(i)
		}
	}
	for n > 0 {
		k := 0
		if n > 1 {
			r := t.reg.rand(total)
			for ; k < n-1; k++ {
				w := uint64(t.targets[idx[k]].Weight)
				if r < w {
					break
				}
				r -= w
			}
		}
		i := idx[k]
		dst = append(dst, i)
		total -= uint64(t.targets[i].Weight)
		copy(idx[k:n-1], idx[k+1:n])
		n--
	}
	for m := zero; m != 0; m &= m - 1 {
		dst = append(dst, bits.TrailingZeros64(m))
	}
	return dst
}
