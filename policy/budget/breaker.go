package budget

import (
	"sync"
	"sync/atomic"
)

const (
	brClosed int32 = iota
	brOpen
	brHalfOpen
)

// breaker guards the shared backend. Closed, it lets every call through and
// counts consecutive failures; at threshold it opens. Open, it lets nothing
// through until cooldown has passed, then lets one probe through
// (half-open): the probe's success closes it, its failure opens it again.
// The closed path is lock-free.
type breaker struct {
	threshold int32
	cooldown  int64 // µs

	state atomic.Int32
	fails atomic.Int32

	mu        sync.Mutex
	openUntil int64
	probing   bool
}

// allow reports whether a call may go to the shared backend at now (µs),
// and whether it is the half-open probe.
func (b *breaker) allow(now int64) (ok, probe bool) {
	if b.state.Load() == brClosed {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case brClosed:
		return true, false
	case brOpen:
		if now < b.openUntil {
			return false, false
		}
		b.state.Store(brHalfOpen)
	}
	if b.probing {
		return false, false
	}
	b.probing = true
	return true, true
}

// success records a call that worked; it reports whether it closed the
// breaker (the backend recovered).
func (b *breaker) success(probe bool) bool {
	if !probe {
		if b.fails.Load() != 0 {
			b.fails.Store(0)
		}
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	b.fails.Store(0)
	b.state.Store(brClosed)
	return true
}

// failure records a failed call at now; it reports whether it opened a
// closed breaker (an outage began).
func (b *breaker) failure(now int64, probe bool) bool {
	if !probe && b.fails.Add(1) < b.threshold {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
		b.state.Store(brOpen)
		b.openUntil = now + b.cooldown
		return false
	}
	if b.state.Load() != brClosed {
		return false
	}
	b.fails.Store(0)
	b.state.Store(brOpen)
	b.openUntil = now + b.cooldown
	return true
}

// abort gives up a probe that neither failed nor succeeded (its caller
// went away): the next call probes instead.
func (b *breaker) abort(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// retryIn returns the µs until a probe may be tried, 0 when closed.
func (b *breaker) retryIn(now int64) int64 {
	if b.state.Load() == brClosed {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := b.openUntil - now; d > 0 {
		return d
	}
	return 0
}

func (b *breaker) closed() bool { return b.state.Load() == brClosed }
