package proxy

import (
	"context"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/policy"
	"github.com/aigw/aigw/policy/route"
	"github.com/aigw/aigw/providers/llm"
)

// Pipeline is the fixed admission order every request goes through: auth,
// guard, quota, budget, compress, cache, route. It is a struct, not a list:
// the order is a product invariant. Stages never call back into the proxy.
// A nil stage is skipped. Stages are safe for concurrent use.
type Pipeline struct {
	Auth     Authenticator
	Guard    Guard
	Quota    Gate
	Budget   Gate
	Compress Compressor
	Cache    Cache
	Route    Router
}

// Authenticator maps a presented key to its principal, or fails with an
// *llm.Error of KindAuth.
type Authenticator interface {
	Authenticate(key []byte) (*policy.Principal, error)
}

// Guard inspects (and may rewrite) a request before anything is reserved.
type Guard interface {
	Inspect(ctx context.Context, x *policy.Exchange) error
}

// Gate reserves capacity (requests, tokens, money) for one request. A
// refusal is an *llm.Error (KindRateLimit or KindQuotaExceeded).
type Gate interface {
	Reserve(ctx context.Context, x *policy.Exchange) (Reservation, error)
}

// Reservation is held from admission to Finish. Exactly one of Commit or
// Release is called, once. Commit gets the request's actual usage and its
// cost at the target that served it (0 when unpriced).
type Reservation interface {
	Commit(ctx context.Context, actual llm.Usage, cost accounting.MicroUSD) error
	Release(ctx context.Context) error
}

// Compressor may shorten the request's messages; it reports tokens saved.
type Compressor interface {
	Compress(ctx context.Context, x *policy.Exchange) (saved int, err error)
}

// Cache answers repeated requests. Lookup returns a stored answer body;
// Store keeps a completed one.
type Cache interface {
	Lookup(ctx context.Context, x *policy.Exchange) ([]byte, bool)
	Store(ctx context.Context, x *policy.Exchange, answer []byte)
}

// Router plans a request's attempts over its model's targets (x.Model)
// into f: strategy, capabilities, org rules, the debug pin and open
// breakers. It is pure: no I/O. A refusal (403, 400, context length) is an
// *llm.Error and the request must not be sent anywhere. The indices f
// yields address the model's Targets.
type Router interface {
	Begin(f *route.Failover, x *policy.Exchange) error
}

// admission is what admit reserved; finish settles it.
type admission struct {
	holds []Reservation
}

// settle commits the reservations with the actual usage (ok) or releases
// them. Errors are logged by the caller; a reservation that cannot be
// settled expires on its own in its backend.
func (a *admission) settle(ctx context.Context, ok bool, usage llm.Usage, cost accounting.MicroUSD) error {
	var first error
	for _, r := range a.holds {
		var err error
		if ok {
			err = r.Commit(ctx, usage, cost)
		} else {
			err = r.Release(ctx)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	a.holds = nil
	return first
}

// admit runs guard, quota, budget and compress for x, in that order (auth
// ran before the body was parsed). On a refusal everything reserved so far is
// released and the refusal returned.
func (p *Pipeline) admit(ctx context.Context, x *policy.Exchange, a *admission) *llm.Error {
	if p.Guard != nil {
		if err := p.Guard.Inspect(ctx, x); err != nil {
			return llm.AsError(err)
		}
	}
	for _, g := range [...]Gate{p.Quota, p.Budget} {
		if g == nil {
			continue
		}
		r, err := g.Reserve(ctx, x)
		if err != nil {
			_ = a.settle(ctx, false, llm.Usage{}, 0)
			return llm.AsError(err)
		}
		if r != nil { // nil: the stage reserved nothing for this request
			a.holds = append(a.holds, r)
		}
	}
	if p.Compress != nil {
		if _, err := p.Compress.Compress(ctx, x); err != nil {
			_ = a.settle(ctx, false, llm.Usage{}, 0)
			return llm.AsError(err)
		}
	}
	return nil
}
