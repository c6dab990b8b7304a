package budget

import (
	"container/heap"
	"context"
	"sync"
)

// Memory keeps budget state in process: the single-node default, and the
// local fallback of the Redis backend. State is sharded by org, one mutex
// each, so an operation over all of an org's periods is atomic. Holds
// expire after their TTL and are purged as their account is used; accounts
// are forgotten some time after their period ends.
type Memory struct {
	shards sync.Map // org -> *memShard
}

// NewMemory returns an empty in-process backend.
func NewMemory() *Memory { return &Memory{} }

type memShard struct {
	mu    sync.Mutex
	accts map[string]*memAccount // by account label
	ops   uint32
}

type memAccount struct {
	spent, reserved int64
	holds           map[string]memHold
	byExp           holdHeap
	fired           map[int]struct{} // threshold percents that fired
	exhausted       bool             // the Exhausted alert fired
	expireAt        int64            // ms
}

type memHold struct {
	amount int64
	exp    int64 // ms
}

// holdHeap orders hold ids by expiry; entries of holds already settled are
// skipped when popped.
type holdHeap []heapItem

type heapItem struct {
	exp int64
	id  string
}

func (h holdHeap) Len() int           { return len(h) }
func (h holdHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h holdHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *holdHeap) Push(x any)        { *h = append(*h, x.(heapItem)) }
func (h *holdHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = heapItem{}
	*h = old[:len(old)-1]
	return it
}

// sweepEvery is how many operations on a shard pass between sweeps of its
// expired accounts.
const sweepEvery = 256

func (m *Memory) shard(org string) *memShard {
	if v, ok := m.shards.Load(org); ok {
		return v.(*memShard)
	}
	v, _ := m.shards.LoadOrStore(org, &memShard{accts: make(map[string]*memAccount)})
	return v.(*memShard)
}

// purge drops the holds expired at now (ms).
func (a *memAccount) purge(now int64) {
	for len(a.byExp) > 0 && a.byExp[0].exp <= now {
		it := heap.Pop(&a.byExp).(heapItem)
		if h, ok := a.holds[it.id]; ok && h.exp == it.exp {
			delete(a.holds, it.id)
			a.reserved -= h.amount
		}
	}
	if len(a.holds) == 0 {
		a.reserved = 0
		a.byExp = a.byExp[:0]
	}
}

func (a *memAccount) removeHold(id string) {
	h, ok := a.holds[id]
	if !ok {
		return
	}
	delete(a.holds, id)
	a.reserved -= h.amount
	if len(a.byExp) > 2*len(a.holds)+64 { // mostly settled holds: rebuild
		a.byExp = a.byExp[:0]
		for id, h := range a.holds {
			a.byExp = append(a.byExp, heapItem{exp: h.exp, id: id})
		}
		heap.Init(&a.byExp)
	}
}

func (m *Memory) do(_ context.Context, o *op) error {
	s := m.shard(o.org)
	now := o.now.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	var acc [maxPeriods]*memAccount
	for i := 0; i < o.n; i++ {
		a := s.accts[o.acct[i].label]
		if a == nil && o.kind != opRelease && o.seed[i] == seedAsk {
			o.needSeed |= 1 << i
		}
		acc[i] = a
	}
	if o.needSeed != 0 {
		return nil
	}
	for i := 0; i < o.n; i++ {
		if acc[i] == nil {
			if o.kind == opRelease {
				continue
			}
			acc[i] = &memAccount{spent: max(o.seed[i], 0), holds: make(map[string]memHold)}
			s.accts[o.acct[i].label] = acc[i]
		}
		acc[i].expireAt = o.acct[i].expireAt
		acc[i].purge(now)
	}
	switch o.kind {
	case opReserve:
		m.reserve(o, &acc, now)
	case opCommit:
		for i := 0; i < o.n; i++ {
			a := acc[i]
			a.removeHold(o.holdID)
			a.spent += o.amount
			for j, amt := range o.acct[i].thrAmt {
				p := o.acct[i].thr[j]
				if _, done := a.fired[p]; !done && a.spent >= amt {
					if a.fired == nil {
						a.fired = make(map[int]struct{})
					}
					a.fired[p] = struct{}{}
					o.flags[i] |= 1 << j
				}
			}
		}
	case opRelease:
		for i := 0; i < o.n; i++ {
			if acc[i] != nil {
				acc[i].removeHold(o.holdID)
			}
		}
	}
	for i := 0; i < o.n; i++ {
		if a := acc[i]; a != nil {
			o.spent[i] = a.spent
			if o.kind != opReserve {
				o.reserved[i] = a.reserved
			}
		}
	}
	return nil
}

func (m *Memory) reserve(o *op, acc *[maxPeriods]*memAccount, now int64) {
	ok := true
	for i := 0; i < o.n; i++ {
		a := acc[i]
		o.reserved[i] = a.reserved
		if !room(a.spent, a.reserved, o.amount, o.acct[i].limit) {
			o.flags[i] |= flagOver
			ok = false
		}
	}
	if !ok && !o.force {
		for i := 0; i < o.n; i++ {
			if o.flags[i]&flagOver != 0 && !acc[i].exhausted {
				acc[i].exhausted = true
				o.flags[i] |= flagExhausted
			}
		}
		return
	}
	exp := o.holdExp.UnixMilli()
	for i := 0; i < o.n; i++ {
		a := acc[i]
		a.removeHold(o.holdID) // ids are unique; never count one twice
		a.holds[o.holdID] = memHold{amount: o.amount, exp: exp}
		heap.Push(&a.byExp, heapItem{exp: exp, id: o.holdID})
		a.reserved += o.amount
	}
	o.admitted = true
}

// sweep forgets, every sweepEvery operations, the accounts whose state
// has outlived their period.
func (s *memShard) sweep(now int64) {
	s.ops++
	if s.ops%sweepEvery != 0 {
		return
	}
	for k, a := range s.accts {
		if a.expireAt <= now {
			delete(s.accts, k)
		}
	}
}
