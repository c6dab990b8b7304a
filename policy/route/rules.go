package route

import "fmt"

// OrgRule overrides routing for one organisation. Entries of Only and Bar
// name a provider id or a target id.
type OrgRule struct {
	Org string
	// Only restricts the org to these providers or targets; empty means no
	// restriction. A model none of whose targets match is refused to the
	// org with a 403.
	Only []string
	// Bar excludes these providers or targets; Bar wins over Only.
	Bar []string
	// AllowPin lets the org's requests pin a target with the debug header
	// (policy.Exchange.PinTarget). Orgs without a rule may not pin.
	AllowPin bool
}

// Rules are the org overrides of one config generation, shared by every
// Table built from it. Immutable after NewRules; safe for concurrent use.
type Rules struct {
	byOrg map[string]*OrgRule
}

// NewRules checks and indexes the rules. An org may have one rule only.
func NewRules(rules []OrgRule) (*Rules, error) {
	r := &Rules{byOrg: make(map[string]*OrgRule, len(rules))}
	for i := range rules {
		o := rules[i] // copy: the caller's slice may change
		if o.Org == "" {
			return nil, fmt.Errorf("route: org rule %d has no org", i)
		}
		if _, dup := r.byOrg[o.Org]; dup {
			return nil, fmt.Errorf("route: org %q has more than one routing rule", o.Org)
		}
		r.byOrg[o.Org] = &o
	}
	return r, nil
}
