package quota

import (
	"context"
	"sync"
)

// Memory keeps limit state in process: the single-node default, and the
// local fallback of the Redis backend. State is sharded by org, one mutex
// each, so a decision over all of an org's limits is atomic. Expired state
// is swept as the org is used.
type Memory struct {
	shards sync.Map // org -> *memShard
}

// NewMemory returns an empty in-process backend.
func NewMemory() *Memory { return &Memory{} }

type memShard struct {
	mu    sync.Mutex
	cells map[string]cell
	ops   uint32
}

// cell is a rule's state. Rate: a = level, b = last drained (µs).
// Counter: a = count. exp is when it may be forgotten (µs).
type cell struct {
	a, b, exp int64
}

const sweepEvery = 1024

func (m *Memory) shard(org string) *memShard {
	if v, ok := m.shards.Load(org); ok {
		return v.(*memShard)
	}
	v, _ := m.shards.LoadOrStore(org, &memShard{cells: make(map[string]cell)})
	return v.(*memShard)
}

// load returns rule r's state at now: level (or count) and last.
func (s *memShard) load(r *rule, now int64) (int64, int64, bool) {
	c, ok := s.cells[r.key]
	if ok && c.exp <= now {
		ok = false
	}
	if r.counter {
		if !ok {
			return 0, 0, false
		}
		return c.a, 0, true
	}
	if !ok {
		return 0, now, false
	}
	l, t := r.spec.drain(c.a, c.b, now)
	return l, t, true
}

func (s *memShard) store(r *rule, level, last, now int64) {
	if level <= 0 {
		delete(s.cells, r.key)
		return
	}
	if r.counter {
		s.cells[r.key] = cell{a: level, exp: now + r.ttl*1000}
		return
	}
	s.cells[r.key] = cell{a: level, b: last, exp: last + r.spec.until(level, last, 0, last) + 1}
}

func (s *memShard) sweep(now int64) {
	s.ops++
	if s.ops%sweepEvery != 0 {
		return
	}
	for k, c := range s.cells {
		if c.exp <= now {
			delete(s.cells, k)
		}
	}
}

func (m *Memory) take(_ context.Context, b *batch) error {
	s := m.shard(b.org)
	s.mu.Lock()
	defer s.mu.Unlock()
	b.allowed, b.via = true, viaMemory
	for i := 0; i < b.n; i++ {
		r := &b.rules[i]
		b.level[i], b.last[i], _ = s.load(r, b.now)
		if !r.shadow && r.over(b.level[i]) {
			b.allowed = false
		}
	}
	if b.allowed {
		for i := 0; i < b.n; i++ {
			r := &b.rules[i]
			if r.cost == 0 || r.over(b.level[i]) { // a shadow rule over its limit is not consumed
				continue
			}
			s.store(r, b.level[i]+r.cost, b.last[i], b.now)
		}
	}
	s.sweep(b.now)
	return nil
}

func (m *Memory) adjust(_ context.Context, b *batch, delta *[maxRules]int64) error {
	s := m.shard(b.org)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < b.n; i++ {
		d := delta[i]
		if d == 0 {
			continue
		}
		r := &b.rules[i]
		level, last, ok := s.load(r, b.now)
		if !ok && d < 0 {
			continue
		}
		s.store(r, clampLevel(level+d), last, b.now)
	}
	return nil
}
