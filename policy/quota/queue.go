package quota

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// queue holds an org's requests that are waiting for a rate limit instead
// of being refused at once. It is bounded (Queue.Depth) and ordered by
// class, highest first, then by arrival.
//
// A waiter is retried when the capacity it waits for should be back (its
// refusal's RetryAfter), and at once when a reservation of the org gives
// capacity back. Retries run one at a time, in queue order. A waiter refused
// on an org-wide limit holds back every waiter behind it (they wait for the
// same capacity); one refused on a key's limit holds back only the same
// key's. New requests queue behind a waiter that would hold them back
// rather than overtake it, so higher classes are served first. When the
// queue is full the lowest class is shed first: a newcomer displaces the
// latest arrival of the lowest class if that class is lower than its own,
// and is refused otherwise. A waiter that cannot be admitted before its
// deadline (its arrival plus MaxWait, or its context's deadline if
// earlier) is refused as soon as that is known.
type queue struct {
	l   *Limiter
	org string
	n   atomic.Int32

	mu      sync.Mutex
	ws      []*waiter
	seq     uint64
	timer   Timer
	timerAt int64
	running bool
	again   bool
}

type waiter struct {
	ctx   context.Context
	try   func(context.Context) (*Hold, Decision, error)
	key   string
	class Class
	seq   uint64
	last  Decision // the latest refusal

	ready    int64 // µs: when a retry may succeed
	deadline int64 // µs: when the waiter gives up
	since    int64 // µs: when it arrived

	queued, trying, cancelled bool
	done                      chan outcome
}

type outcome struct {
	h   *Hold
	d   Decision
	err error
}

// newWaiter returns a waiter for a request refused with d at now, or nil
// when it could not be admitted within its wait budget.
func newWaiter(ctx context.Context, key string, d Decision, now time.Time, qs Queue) *waiter {
	t := now.UnixMicro()
	deadline := t + qs.MaxWait.Microseconds()
	if dl, ok := ctx.Deadline(); ok { // a wall-clock deadline: count what is left of it from now
		deadline = min(deadline, t+time.Until(dl).Microseconds())
	}
	ready := t + d.RetryAfter.Microseconds()
	if ready > deadline {
		return nil
	}
	return &waiter{ctx: ctx, key: key, class: d.Class, last: d, ready: ready, deadline: deadline, since: t,
		done: make(chan outcome, 1)}
}

// blockedBy reports whether a request of key and class must queue behind
// a waiter, and if so returns that waiter's refusal, its RetryAfter
// counted from now.
func (q *queue) blockedBy(key string, class Class, now time.Time) (Decision, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, w := range q.ws {
		if w.class >= class && (w.last.Reason.OrgWide() || w.key == key) {
			d := w.last
			d.RetryAfter = time.Duration(max(w.ready-now.UnixMicro(), 0)) * time.Microsecond
			return d, true
		}
	}
	return Decision{}, false
}

// wait queues w and blocks until it is admitted, refused or its ctx ends.
func (q *queue) wait(ctx context.Context, w *waiter, depth int) (*Hold, Decision, error) {
	now := q.l.clock.Now().UnixMicro()
	q.mu.Lock()
	if len(q.ws) >= depth {
		var victim *waiter
		for i := len(q.ws) - 1; i >= 0; i-- {
			if !q.ws[i].trying {
				victim = q.ws[i]
				break
			}
		}
		if victim == nil || victim.class >= w.class {
			q.mu.Unlock()
			d := w.last
			d.Shed = true
			return nil, d, nil
		}
		q.removeLocked(victim)
		victim.last.Shed = true
		q.refuseLocked(victim, now)
	}
	w.seq = q.seq
	q.seq++
	i := 0
	for i < len(q.ws) && q.ws[i].class >= w.class {
		i++
	}
	q.ws = append(q.ws, nil)
	copy(q.ws[i+1:], q.ws[i:])
	q.ws[i] = w
	w.queued = true
	q.depthChangedLocked()
	q.scheduleLocked(now)
	q.mu.Unlock()

	select {
	case o := <-w.done:
		return o.h, o.d, o.err
	case <-ctx.Done():
	}
	q.mu.Lock()
	if w.queued && !w.trying {
		q.removeLocked(w)
		q.mu.Unlock()
		return nil, Decision{}, canceled(ctx)
	}
	w.cancelled = true
	q.mu.Unlock()
	if o := <-w.done; o.h != nil {
		_ = o.h.Release(ctx)
	}
	return nil, Decision{}, canceled(ctx)
}

// kick retries every waiter now, in order: capacity was given back.
func (q *queue) kick() {
	if q.n.Load() == 0 {
		return
	}
	now := q.l.clock.Now().UnixMicro()
	q.mu.Lock()
	for _, w := range q.ws {
		w.ready = min(w.ready, now)
	}
	q.mu.Unlock()
	go q.dispatch()
}

// dispatch retries the waiters that are due, one at a time in queue order,
// until none is; then it schedules itself for the next due time.
func (q *queue) dispatch() {
	q.mu.Lock()
	if q.running {
		q.again = true
		q.mu.Unlock()
		return
	}
	q.running = true
	if q.timer != nil {
		q.timer.Stop()
		q.timer, q.timerAt = nil, 0
	}
	for {
		now := q.l.clock.Now().UnixMicro()
		q.expireLocked(now)
		w := q.nextLocked(now)
		if w == nil {
			if q.again {
				q.again = false
				continue
			}
			q.running = false
			q.scheduleLocked(now)
			q.mu.Unlock()
			return
		}
		w.trying = true
		q.mu.Unlock()
		h, d, err := w.try(w.ctx)
		q.mu.Lock()
		w.trying = false
		now = q.l.clock.Now().UnixMicro()
		waited := time.Duration(now-w.since) * time.Microsecond
		if err != nil || d.Allowed || w.cancelled {
			q.removeLocked(w)
			if h != nil {
				h.d.Queued = waited
			}
			w.done <- outcome{h: h, d: d, err: err}
			continue
		}
		w.last = d
		w.ready = now + d.RetryAfter.Microseconds()
		if d.never || d.Reason.Daily() || d.Reason == ReasonUnavailable || d.RetryAfter <= 0 || w.ready > w.deadline {
			q.removeLocked(w)
			q.refuseLocked(w, now)
		}
	}
}

// nextLocked returns the first waiter in queue order that is due and not
// held back by a waiter ahead of it.
func (q *queue) nextLocked(now int64) *waiter {
	var ahead []*waiter
	for _, w := range q.ws {
		if b := blocker(ahead, w); b != nil {
			w.ready = max(w.ready, b.ready)
			continue
		}
		if w.ready > now {
			ahead = append(ahead, w)
			continue
		}
		return w
	}
	return nil
}

// blocker returns the first waiter of ahead that holds w back.
func blocker(ahead []*waiter, w *waiter) *waiter {
	for _, b := range ahead {
		if b.class >= w.class && (b.last.Reason.OrgWide() || b.key == w.key) {
			return b
		}
	}
	return nil
}

// expireLocked refuses the waiters whose deadline has passed.
func (q *queue) expireLocked(now int64) {
	for i := 0; i < len(q.ws); {
		w := q.ws[i]
		if w.trying || w.deadline > now {
			i++
			continue
		}
		q.removeLocked(w)
		q.refuseLocked(w, now)
	}
}

// refuseLocked delivers w's latest refusal, with its RetryAfter counted
// from now. w is out of the queue.
func (q *queue) refuseLocked(w *waiter, now int64) {
	d := w.last
	d.RetryAfter = time.Duration(max(w.ready-now, 0)) * time.Microsecond
	if d.never {
		d.RetryAfter = 0
	}
	d.Queued = time.Duration(now-w.since) * time.Microsecond
	w.done <- outcome{d: d}
}

func (q *queue) removeLocked(w *waiter) {
	for i, x := range q.ws {
		if x == w {
			copy(q.ws[i:], q.ws[i+1:])
			q.ws[len(q.ws)-1] = nil
			q.ws = q.ws[:len(q.ws)-1]
			break
		}
	}
	w.queued = false
	q.depthChangedLocked()
}

func (q *queue) depthChangedLocked() {
	q.n.Store(int32(len(q.ws)))
	q.l.metrics.QueueDepth(q.org, len(q.ws))
}

// scheduleLocked arms the timer for the next due time or deadline. While a
// dispatch runs, it schedules itself when done.
func (q *queue) scheduleLocked(now int64) {
	if q.running {
		return
	}
	next := int64(math.MaxInt64)
	for _, w := range q.ws {
		next = min(next, w.ready, w.deadline)
	}
	if len(q.ws) == 0 {
		if q.timer != nil {
			q.timer.Stop()
			q.timer, q.timerAt = nil, 0
		}
		return
	}
	if q.timer != nil {
		if q.timerAt == next {
			return
		}
		q.timer.Stop()
	}
	q.timerAt = next
	q.timer = q.l.clock.AfterFunc(time.Duration(max(next-now, 0))*time.Microsecond, q.dispatch)
}
