package route

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/aigw/aigw/providers/llm"
)

// Target describes one upstream a model alias can be sent to, as far as
// routing cares. Where to send and with which credential stay in the
// proxy's own target type; the proxy keeps its targets in the same order as
// the descriptors it gives NewTable, so Plan's indices address both.
type Target struct {
	// ID names the target and keys its breaker, EWMA and health state in
	// the Registry. It must be stable across reloads for that state to
	// survive them (the proxy uses provider id + "/" + upstream model).
	// Two aliases that list the same ID share that state.
	ID string
	// Provider is the policy's provider id; org rules and the debug pin
	// may name it instead of the target ID.
	Provider string
	// Weight is the target's share under StrategyWeighted. A zero weight
	// makes the target a fallback only: it is never drawn first.
	Weight int
	// Cost is the relative price StrategyCost minimises (for example USD per
	// million tokens blended from the price table). Ties keep the
	// configured order.
	Cost float64
	// Caps is what the target supports. A request that needs a capability
	// only goes to targets that declare it. The config layer decides the
	// default for targets that declare nothing (CapAll is a safe choice for
	// current OpenAI, Anthropic and Gemini chat models).
	Caps Caps
	// ContextWindow is the model's context in tokens; a request whose
	// estimated prompt plus requested output exceeds it is not sent there.
	// Zero means unknown: no limit is enforced.
	ContextWindow int
}

// Caps is a set of request features a target supports.
type Caps uint8

// Capabilities a request may need.
const (
	CapTools  Caps = 1 << iota // tool definitions or tool-call turns
	CapImages                  // image parts in messages
	CapJSON                    // response_format json_object or json_schema

	// CapAll is every capability.
	CapAll = CapTools | CapImages | CapJSON
)

// capBits lists the capabilities in the order errors report them.
var capBits = [...]struct {
	c    Caps
	name string
}{{CapTools, "tools"}, {CapImages, "images"}, {CapJSON, "json"}}

// String lists the set's names joined by "|", or "none".
func (c Caps) String() string {
	var b strings.Builder
	for _, cb := range capBits {
		if c&cb.c != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(cb.name)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// ParseCap returns the capability named "tools", "images" or "json", the
// names policy files use.
func ParseCap(s string) (Caps, error) {
	for _, cb := range capBits {
		if s == cb.name {
			return cb.c, nil
		}
	}
	return 0, fmt.Errorf("unknown capability %q (want tools, images or json)", s)
}

// Needs returns the capabilities r requires of a target: tools when it
// offers tools or replays tool calls, images when a message has an image
// part, json when response_format asks for JSON output. A nil request needs
// nothing. It does not allocate.
func Needs(r *llm.Request) Caps {
	if r == nil {
		return 0
	}
	var c Caps
	if len(r.Tools) > 0 {
		c |= CapTools
	}
	for i := range r.Messages {
		m := &r.Messages[i]
		if len(m.ToolCalls) > 0 || m.Role == "tool" {
			c |= CapTools
		}
		for j := range m.Parts {
			if m.Parts[j].ImageURL != nil || m.Parts[j].Type == "image_url" {
				c |= CapImages
			}
		}
	}
	if len(r.ResponseFormat) > 0 && (bytes.Contains(r.ResponseFormat, []byte(`"json_object"`)) ||
		bytes.Contains(r.ResponseFormat, []byte(`"json_schema"`))) {
		c |= CapJSON
	}
	return c
}

// Strategy is how a Table orders the targets that survive filtering.
type Strategy uint8

// Strategies. Every strategy breaks ties by the configured order, and every
// one puts targets with an open breaker out of the plan.
const (
	// StrategyPriority keeps the configured order: the first target first,
	// the next ones as fallbacks.
	StrategyPriority Strategy = iota
	// StrategyWeighted draws the order at random in proportion to Weight,
	// without replacement; zero-weight targets follow in configured order.
	StrategyWeighted
	// StrategyLeastLatency orders by the EWMA of time to first byte,
	// fastest first; targets never measured come first so they get
	// measured.
	StrategyLeastLatency
	// StrategyLeastBusy orders by requests in flight, fewest first.
	StrategyLeastBusy
	// StrategyCost orders by Cost, cheapest first.
	StrategyCost
)

var strategyNames = [...]string{
	StrategyPriority:     "priority",
	StrategyWeighted:     "weighted",
	StrategyLeastLatency: "least_latency",
	StrategyLeastBusy:    "least_busy",
	StrategyCost:         "cost",
}

// String returns the name policy files use.
func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("strategy(%d)", int(s))
}

// ParseStrategy maps a policy name to its Strategy; "" is StrategyPriority.
func ParseStrategy(s string) (Strategy, error) {
	if s == "" {
		return StrategyPriority, nil
	}
	for i, n := range strategyNames {
		if s == n {
			return Strategy(i), nil
		}
	}
	return 0, fmt.Errorf("unknown routing strategy %q (want priority, weighted, least_latency, least_busy or cost)", s)
}
