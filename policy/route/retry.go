package route

import (
	"math/rand/v2"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

// RetryPolicy says when a failed attempt is retried, where, and after how
// long. Zero fields take the documented defaults. A RetryPolicy is read
// only once built into a Table.
type RetryPolicy struct {
	// MaxAttempts caps the attempts of one request, same-target retries
	// included (default 3).
	MaxAttempts int
	// SameTarget is how many extra attempts a target gets, after a
	// backoff, for errors that may clear on the same target (5xx, 529,
	// connection failures, 429) before the request moves on (default 0:
	// always move on, except for a short Retry-After, see MaxRetryAfter).
	SameTarget int
	// Deadline is the failover budget (default 2 s): no attempt starts, and
	// no delay is taken, later than Deadline after the request's first
	// failure. It never cuts a running attempt short; the transport's own
	// deadlines do that.
	Deadline time.Duration
	// BaseBackoff and MaxBackoff bound the full-jitter backoff before a
	// same-target retry: uniform in [0, min(MaxBackoff, BaseBackoff·2^n)]
	// for the n-th retry (defaults 100 ms and 1 s).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxRetryAfter is the longest upstream Retry-After the gateway waits
	// out (default 1 s): an error carrying a shorter one is retried once on
	// the same target after that delay even when SameTarget is 0; a longer
	// one moves on at once.
	MaxRetryAfter time.Duration
	// Rand returns a uniform integer in [0, n) for the jitter; it must be
	// safe for concurrent use. NewTable fills it from the Registry when nil.
	Rand func(n uint64) uint64
}

// withDefaults returns p with zero fields defaulted.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.SameTarget < 0 {
		p.SameTarget = 0
	}
	if p.Deadline <= 0 {
		p.Deadline = 2 * time.Second
	}
	if p.BaseBackoff <= 0 {
		p.BaseBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = time.Second
	}
	if p.MaxBackoff < p.BaseBackoff {
		p.MaxBackoff = p.BaseBackoff
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = time.Second
	}
	if p.Rand == nil {
		p.Rand = rand.Uint64N
	}
	return p
}

// Class is what an attempt's error allows next.
type Class uint8

// Retry classes.
const (
	// Fatal errors reach the client at once: the request itself is at
	// fault (400, 401, 403, 404, 413, context length), the client went
	// away, the gateway failed, or the upstream said not to retry.
	Fatal Class = iota
	// RetryNext errors may succeed on another target but not soon on this
	// one: timeouts before headers, and an exhausted upstream account.
	RetryNext
	// RetrySame errors may clear on the same target after a delay, or
	// succeed on another: 429, 500, 502, 503, 529, refused connections.
	RetrySame
)

// String returns "fatal", "retry_next" or "retry_same".
func (c Class) String() string {
	switch c {
	case RetryNext:
		return "retry_next"
	case RetrySame:
		return "retry_same"
	}
	return "fatal"
}

// Classify maps an attempt's error to its Class, by the *llm.Error's Kind
// (errors without one are internal, hence Fatal):
//
//	InvalidRequest, Auth, Permission, NotFound, TooLarge,
//	ContextLength, Canceled, Internal                   Fatal
//	QuotaExceeded                                       RetryNext (whatever Retryable says:
//	                                                    another account may have quota)
//	Timeout                                             RetryNext  } Fatal when
//	RateLimit, Upstream, Overloaded, Unavailable        RetrySame  } !Retryable
//
// The proxy reports an upstream's rejection of the gateway's own
// credentials as a retryable Upstream error, so that it fails over; a
// client's bad key never reaches the failover loop.
func (p *RetryPolicy) Classify(err error) Class {
	e := llm.AsError(err)
	if e == nil {
		return Fatal
	}
	switch e.Kind {
	case llm.KindQuotaExceeded:
		return RetryNext
	case llm.KindTimeout:
		if e.Retryable {
			return RetryNext
		}
	case llm.KindRateLimit, llm.KindUpstream, llm.KindOverloaded, llm.KindUnavailable:
		if e.Retryable {
			return RetrySame
		}
	}
	return Fatal
}

// Backoff returns the delay before the n-th same-target retry (n from 0):
// full jitter, uniform in [0, min(MaxBackoff, BaseBackoff·2^n)].
func (p *RetryPolicy) Backoff(n int) time.Duration {
	q := p.withDefaults()
	ceil := q.MaxBackoff
	if n < 62 {
		if d := q.BaseBackoff << uint(n); d > 0 && d < ceil && d>>uint(n) == q.BaseBackoff {
			ceil = d
		}
	}
	return time.Duration(q.Rand(uint64(ceil) + 1))
}

// action is the failover loop's next step.
type action uint8

const (
	stop action = iota // answer the client with the error
	next               // try the next target in the plan, at once
	same               // try the same target again after the delay
)

// decide picks the next step after a failed attempt. attempts counts the
// request's attempts so far (this one included), retries the same-target
// retries already made on the current target, elapsed the time since the
// request's first failure. p must have its defaults applied.
func (p *RetryPolicy) decide(err error, attempts, retries int, elapsed time.Duration) (action, time.Duration) {
	c := p.Classify(err)
	if c == Fatal || attempts >= p.MaxAttempts {
		return stop, 0
	}
	left := p.Deadline - elapsed
	if left <= 0 {
		return stop, 0
	}
	if c == RetrySame {
		if ra := llm.AsError(err).RetryAfter; ra > 0 {
			if ra <= p.MaxRetryAfter && ra < left && retries < max(p.SameTarget, 1) {
				return same, ra
			}
			return next, 0 // a long Retry-After: this target is out for now
		}
		if retries < p.SameTarget {
			if d := p.Backoff(retries); d < left {
				return same, d
			}
		}
	}
	return next, 0
}
