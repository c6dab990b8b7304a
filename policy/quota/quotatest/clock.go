// Package quotatest provides test helpers for the quota stage: a fake
// clock that only moves when told to.
package quotatest

import (
	"sort"
	"sync"
	"time"

	"github.com/aigw/aigw/policy/quota"
)

// Clock is a fake quota.Clock. Time stands still until Advance or Set;
// timers due by then run, in due order, in the goroutine that moved the
// clock, after it has moved. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
	seq    uint64
}

// NewClock returns a clock standing at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

type timer struct {
	c    *Clock
	at   time.Time
	seq  uint64
	f    func()
	done bool
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f for d from now. A d <= 0 runs at the next Advance
// or Set (or Fire).
func (c *Clock) AfterFunc(d time.Duration, f func()) quota.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.seq++
	c.timers = append(c.timers, t)
	return t
}

// Stop implements quota.Timer.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// Advance moves the clock forward by d and runs the timers due by then.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t (which may be earlier) and runs the timers due
// by then.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
	c.Fire()
}

// Fire runs the timers due now, including those they schedule for now.
func (c *Clock) Fire() {
	for {
		c.mu.Lock()
		var due []*timer
		keep := c.timers[:0]
		for _, t := range c.timers {
			switch {
			case t.done:
			case !t.at.After(c.now):
				t.done = true
				due = append(due, t)
			default:
				keep = append(keep, t)
			}
		}
		for i := len(keep); i < len(c.timers); i++ {
			c.timers[i] = nil
		}
		c.timers = keep
		c.mu.Unlock()
		if len(due) == 0 {
			return
		}
		sort.Slice(due, func(i, j int) bool {
			if !due[i].at.Equal(due[j].at) {
				return due[i].at.Before(due[j].at)
			}
			return due[i].seq < due[j].seq
		})
		for _, t := range due {
			t.f()
		}
	}
}

// Pending returns the number of timers not yet run or stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}
