package quota

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

const sec = int64(time.Second / time.Microsecond)

// rateRule builds a rate rule of max per window with burst and cost need.
func rateRule(key string, max, burst, need int64, window time.Duration) rule {
	r := rule{key: key, spec: newRate(max, burst, window), need: need, limit: max}
	r.cost = need * r.spec.unit
	if need > burst {
		r.never, r.cost = true, r.spec.cap+r.spec.unit
	}
	return r
}

func takeOne(t *testing.T, b Backend, r rule, now int64) bool {
	t.Helper()
	bt := &batch{org: "o", now: now, n: 1}
	bt.rules[0] = r
	if err := b.take(context.Background(), bt); err != nil {
		t.Fatal(err)
	}
	return bt.allowed
}

func TestNewRateIsExact(t *testing.T) {
	for _, c := range []struct {
		max, burst int64
		window     time.Duration
		res        int64
	}{
		{60, 60, time.Minute, 1},
		{7, 7, time.Minute, 1},
		{1_000_000, 1_000_000, time.Hour, 1},
		{1 << 40, 1 << 40, time.Hour, 1000000},
		{100_000_000, 100_000_000, time.Hour, 100},
	} {
		s := newRate(c.max, c.burst, c.window)
		if s.res != c.res {
			t.Errorf("%+v: res %d, want %d", c, s.res, c.res)
		}
		// Max per window exactly: the bucket drains max·unit per window.
		if ticks := c.window.Microseconds() / s.res; s.rate*ticks != c.max*s.unit {
			t.Errorf("%+v: drains %d per window, want %d", c, s.rate*ticks, c.max*s.unit)
		}
		if s.cap+s.unit > maxExact {
			t.Errorf("%+v: capacity %d not exact", c, s.cap)
		}
	}
}

// TestRateWindowEdges checks exact counts at the edges, to the
// microsecond, including a rate whose emission interval is not a whole
// number of microseconds (7 per minute: 8571428.57 µs).
func TestRateWindowEdges(t *testing.T) {
	for _, c := range []struct {
		name       string
		max, burst int64
		interval   int64 // µs until the next request fits after the burst
	}{
		{"60rpm", 60, 60, sec},
		{"7rpm", 7, 7, 8571429},
		{"60rpm_burst5", 60, 5, sec},
		{"1rpm", 1, 1, 60 * sec},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := NewMemory()
			r := rateRule("k", c.max, c.burst, 1, time.Minute)
			t0 := int64(1_700_000_000) * sec
			for i := int64(0); i < c.burst; i++ {
				if !takeOne(t, m, r, t0) {
					t.Fatalf("request %d of the burst refused", i+1)
				}
			}
			if takeOne(t, m, r, t0) {
				t.Fatal("request past the burst admitted")
			}
			if takeOne(t, m, r, t0+c.interval-1) {
				t.Fatal("admitted 1µs before the interval")
			}
			if !takeOne(t, m, r, t0+c.interval) {
				t.Fatal("refused at the interval")
			}
			if takeOne(t, m, r, t0+c.interval) {
				t.Fatal("two admitted at the interval")
			}
		})
	}
}

// TestRateSlidingWindowBound drives random traffic and checks GCRA's
// guarantee on every interval: at most burst + ⌈d·max/window⌉ admitted in
// any interval of length d; and that it is not stricter than that either
// for a client sending as fast as it can.
func TestRateSlidingWindowBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const max, burst = 30, 10
	w := time.Minute.Microseconds()
	m := NewMemory()
	r := rateRule("k", max, burst, 1, time.Minute)
	now := int64(1_700_000_000) * sec
	var admitted []int64
	for i := 0; i < 20000; i++ {
		now += rng.Int64N(400_000) // mean 0.2 s: ~300 per minute offered, 30 allowed
		if takeOne(t, m, r, now) {
			admitted = append(admitted, now)
		}
	}
	for i := range admitted {
		for j := i; j < len(admitted); j++ {
			d := admitted[j] - admitted[i]
			bound := burst + (d*max+w-1)/w
			if int64(j-i+1) > bound {
				t.Fatalf("%d admitted in %dµs, bound %d", j-i+1, d, bound)
			}
			if d > 3*w {
				break
			}
		}
	}
	span := admitted[len(admitted)-1] - admitted[0]
	if want := span * max / w; int64(len(admitted)) < want {
		t.Fatalf("admitted %d over %dµs, a saturating client should get at least %d", len(admitted), span, want)
	}
}

func TestRateNeverAndRetry(t *testing.T) {
	m := NewMemory()
	now := int64(1_700_000_000) * sec
	big := rateRule("k", 1000, 1000, 1001, time.Minute)
	if !big.never || takeOne(t, m, big, now) {
		t.Fatal("a cost above the burst must never pass")
	}
	// retry: after 600 of 1000 tokens, a 500-token request waits for 100 tokens: 6 s.
	r := rateRule("t", 1000, 1000, 600, time.Minute)
	if !takeOne(t, m, r, now) {
		t.Fatal("refused")
	}
	b := &batch{org: "o", now: now, n: 1}
	b.rules[0] = rateRule("t", 1000, 1000, 500, time.Minute)
	_ = m.take(context.Background(), b)
	var d Decision
	decide(b, &d)
	if d.Allowed || d.RetryAfter != 6*time.Second || d.Refused.Remaining != 400 {
		t.Fatalf("decision %+v, want refused, retry 6s, remaining 400", d)
	}
}

func TestDrainClockBehind(t *testing.T) {
	s := newRate(60, 60, time.Minute)
	l, last := s.drain(10*s.unit, 100*sec, 99*sec)
	if l != 10*s.unit || last != 100*sec {
		t.Fatalf("a clock behind the stored time must not drain: %d %d", l, last)
	}
	l, last = s.drain(10*s.unit, 100*sec, 100*sec+sec+sec/2)
	if l != 10*s.unit-s.unit*3/2 || last != 101*sec+sec/2 { // 1.5 s drains 1.5 requests' worth
		t.Fatalf("got %d %d", l, last)
	}
	// Coarser ticks advance by whole ticks only: nothing is lost.
	h := newRate(1<<40, 1<<40, time.Hour) // res 1 s
	l, last = h.drain(h.cap, 100*sec, 100*sec+sec+sec/2)
	if l != h.cap-h.rate || last != 101*sec {
		t.Fatalf("got %d %d, want one tick drained", l, last)
	}
}
