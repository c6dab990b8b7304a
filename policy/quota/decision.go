package quota

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// Headers the quota stage defines besides OpenAI's x-ratelimit-* ones.
const (
	// HeaderReason names the limit that refused the request (a Reason).
	HeaderReason = "x-aigw-quota-reason"
	// HeaderShadow lists, comma-separated, the shadow limits that would
	// have refused the request.
	HeaderShadow = "x-aigw-quota-shadow"
)

// Status is the state of one applicable limit after a decision.
type Status struct {
	Reason    Reason        // which limit
	Limit     int64         // its Max per window or per day; 0: no limit applies
	Remaining int64         // what could still be taken now
	Reset     time.Duration // until the limit is whole again (a rate) or resets (a daily quota)
}

// Decision is the outcome of one admission.
type Decision struct {
	Allowed bool
	// Reason names the limit that refused; "" when allowed.
	Reason Reason
	// RetryAfter is when the same request could pass; 0 when allowed, and
	// when no wait would help (the request is larger than the limit).
	RetryAfter time.Duration
	// Requests and Tokens are the tightest applicable enforced limits
	// (least remaining), for OpenAI's x-ratelimit-*-requests and
	// x-ratelimit-*-tokens headers. On a refusal they are the state before
	// the request; when admitted, after it.
	Requests, Tokens Status
	// Refused is the refusing limit's state; zero when allowed.
	Refused Status
	// Shadowed lists the shadow limits that would have refused.
	Shadowed []Reason
	// Class is the request's effective queue class.
	Class Class
	// Queued is how long the request waited in its org's queue.
	Queued time.Duration
	// Shed is true when the request was refused because its org's queue
	// was full of requests of a class at least as high, or a higher class
	// took its place.
	Shed bool
	// Fallback is true when the shared backend was unavailable and the
	// decision was taken per the org's fail mode (local share or open).
	Fallback bool
	// Need is what was asked for.
	Need Need

	never bool
	zero  bool // refused by a limit set to Zero
}

// Headers calls set for each response header the decision implies: the
// x-ratelimit-{limit,remaining,reset}-{requests,tokens} sextet for the
// tightest limits that apply, HeaderReason on a refusal and HeaderShadow
// when shadow limits would have refused. Reset values use OpenAI's format
// ("1s", "6m0s", "20ms"). Retry-After is the proxy's, from the error.
func (d *Decision) Headers(set func(name, value string)) {
	for _, x := range [...]struct {
		suffix string
		s      *Status
	}{{"requests", &d.Requests}, {"tokens", &d.Tokens}} {
		if x.s.Limit <= 0 && x.s.Reason == "" {
			continue
		}
		set("x-ratelimit-limit-"+x.suffix, strconv.FormatInt(x.s.Limit, 10))
		set("x-ratelimit-remaining-"+x.suffix, strconv.FormatInt(x.s.Remaining, 10))
		set("x-ratelimit-reset-"+x.suffix, FormatReset(x.s.Reset))
	}
	if !d.Allowed && d.Reason != "" {
		set(HeaderReason, string(d.Reason))
	}
	if len(d.Shadowed) > 0 {
		var b strings.Builder
		for i, r := range d.Shadowed {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(string(r))
		}
		set(HeaderShadow, b.String())
	}
}

// FormatReset formats a reset duration as OpenAI does: Go's duration
// syntax at millisecond precision ("1s", "6m0s", "20ms", "0s").
func FormatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d.Round(time.Millisecond).String()
}

// Refusal is the cause inside the *llm.Error a refused admission returns;
// find it with errors.As, or use DecisionOf.
type Refusal struct {
	Decision Decision
}

// Error implements error.
func (r *Refusal) Error() string { return "quota: refused by " + string(r.Decision.Reason) }

// DecisionOf returns the decision carried by a refusal error.
func DecisionOf(err error) (*Decision, bool) {
	var r *Refusal
	if errors.As(err, &r) {
		return &r.Decision, true
	}
	return nil, false
}

// refusalError builds the client-facing error: 429 with OpenAI's codes,
// rate_limit_exceeded for rates and insufficient_quota for daily quotas;
// 503 quota_unavailable when the shared backend is down and the org fails
// closed.
func refusalError(d Decision) error {
	e := &llm.Error{Kind: llm.KindRateLimit, Code: "rate_limit_exceeded", RetryAfter: d.RetryAfter,
		Retryable: d.RetryAfter > 0, Err: &Refusal{Decision: d}}
	switch {
	case d.Reason == ReasonUnavailable:
		e.Kind, e.Code = llm.KindUnavailable, "quota_unavailable"
		e.Msg = "The gateway cannot check quotas right now. Please retry shortly."
		e.Retryable = true
		return e
	case d.Reason.Daily():
		e.Kind, e.Code = llm.KindQuotaExceeded, "insufficient_quota"
	}
	e.Msg = refusalMessage(&d)
	return e
}

func refusalMessage(d *Decision) string {
	k := kindOf(d.Reason)
	info := kindInfo[k]
	who := "organization"
	if !d.Reason.OrgWide() {
		who = "API key"
	}
	st := d.Refused
	need := d.Need.Requests
	if info.tokens {
		need = d.Need.Tokens
	}
	switch {
	case d.zero:
		return fmt.Sprintf("Your %s has no quota of %s (its limit is 0). Contact the gateway's operators to raise it.",
			who, info.text)
	case d.never:
		return fmt.Sprintf("Request too large for the %s's %s limit: it needs %d, more than the limit ever allows at once.",
			who, info.text, need)
	case d.Reason.Daily():
		return fmt.Sprintf("You exceeded your %s's quota of %s (limit %d). It resets in %s.",
			who, info.text, st.Limit, FormatReset(d.RetryAfter))
	}
	return fmt.Sprintf("Rate limit reached for the %s's %s (limit %d, remaining %d, requested %d). Please try again in %s.",
		who, info.text, st.Limit, st.Remaining, need, FormatReset(d.RetryAfter))
}

func kindOf(r Reason) limitKind {
	for _, row := range reasons {
		for k, x := range row {
			if x == r {
				return limitKind(k)
			}
		}
	}
	return kRPM
}

// decide fills d from a batch the backend has evaluated, and returns the
// bit set of rules it consumed.
func decide(b *batch, d *Decision) (consumed uint16) {
	d.Allowed = b.allowed
	if b.via == viaNone {
		d.Fallback = true
		return 0
	}
	d.Fallback = b.via == viaLocal
	var worst int64 = -1
	for i := 0; i < b.n; i++ {
		r := &b.rules[i]
		level, last := b.level[i], b.last[i]
		over := r.over(level)
		after := level
		if b.allowed && !over {
			after += r.cost
			if r.cost != 0 {
				consumed |= 1 << i
			}
		}
		st := Status{Reason: r.reason, Limit: r.limit}
		if r.counter {
			st.Remaining = max(r.max-after, 0)
			st.Reset = time.Duration(r.resetAt-b.now) * time.Microsecond
		} else {
			st.Remaining = max((r.spec.cap-after)/r.spec.unit, 0)
			st.Reset = time.Duration(r.spec.until(after, last, 0, b.now)) * time.Microsecond
		}
		if over {
			if r.shadow {
				d.Shadowed = append(d.Shadowed, r.reason)
			} else if !b.allowed {
				// A local share of a limit may be smaller than the need.
				never := r.never || (r.counter && r.cost > r.max) || (!r.counter && r.cost > r.spec.cap)
				var retry int64
				switch {
				case never:
				case r.counter:
					retry = r.resetAt - b.now
				default:
					retry = r.spec.until(level, last, r.spec.cap-r.cost, b.now)
				}
				if !d.never && (never || retry > worst) {
					worst, d.never = retry, never
					d.Reason, d.Refused = r.reason, st
					d.RetryAfter = time.Duration(retry) * time.Microsecond
				}
			}
		}
		if r.shadow {
			continue
		}
		tight := &d.Requests
		if r.tokens {
			tight = &d.Tokens
		}
		if tight.Limit == 0 || st.Remaining < tight.Remaining ||
			(st.Remaining == tight.Remaining && st.Reset > tight.Reset) {
			*tight = st
		}
	}
	if d.never {
		d.RetryAfter = 0
	}
	return consumed
}
