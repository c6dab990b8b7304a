package route

import (
	"sync"
	"time"
)

// Event is one failover run, for the admin API: requests moved from one
// target to another for one reason. Consecutive failovers with the same
// From, To and Reason are coalesced into one event while it is unrecovered.
type Event struct {
	// Time is the first failover of the run, Last the latest.
	Time, Last time.Time
	// From and To are target ids.
	From, To string
	// Reason is the error kind of From's failure (llm.Kind.String()), and
	// Status the upstream HTTP status of the latest one (0 when none).
	Reason string
	Status int
	// Requests counts the failovers coalesced into the event.
	Requests int
	// Recovered is when From was next seen healthy: a success while its
	// breaker was closed, or its breaker closing again. Zero until then.
	Recovered time.Time
}

// Recovery is how long From took to recover, counted from the first
// failover; zero while it has not.
func (e *Event) Recovery() time.Duration {
	if e.Recovered.IsZero() {
		return 0
	}
	return e.Recovered.Sub(e.Time)
}

// eventRing keeps the newest events in a fixed ring. Safe for concurrent
// use.
type eventRing struct {
	mu   sync.Mutex
	buf  []Event
	next int // where the next new event goes
	n    int // events stored, up to len(buf)
}

func newEventRing(size int) *eventRing {
	return &eventRing{buf: make([]Event, size)}
}

// add records one failover, coalescing it into the newest event when that
// one has the same from, to and reason and has not recovered.
func (r *eventRing) add(now time.Time, from, to, reason string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n > 0 {
		e := &r.buf[(r.next-1+len(r.buf))%len(r.buf)]
		if e.From == from && e.To == to && e.Reason == reason && e.Recovered.IsZero() {
			e.Requests++
			e.Last = now
			e.Status = status
			return
		}
	}
	r.buf[r.next] = Event{Time: now, Last: now, From: from, To: to, Reason: reason, Status: status, Requests: 1}
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// recover stamps every unrecovered event from the target.
func (r *eventRing) recover(from string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.buf[:r.n] {
		if e := &r.buf[i]; e.From == from && e.Recovered.IsZero() {
			e.Recovered = now
		}
	}
}

// snapshot appends the events to dst, newest first.
func (r *eventRing) snapshot(dst []Event) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := 1; k <= r.n; k++ {
		dst = append(dst, r.buf[(r.next-k+len(r.buf))%len(r.buf)])
	}
	return dst
}
