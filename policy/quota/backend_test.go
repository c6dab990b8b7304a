package quota

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRedisMatchesMemory runs one random sequence of takes and adjusts
// (shadow rules, costs past the burst, refunds, extra charges, a replica's
// clock behind) on the in-process backend and on the Lua script, and
// requires the same decisions and the same state after every step.
func TestRedisMatchesMemory(t *testing.T) {
	client := RedisClient(t)
	ns := UniqueNamespace(t)
	red := NewRedis(client, RedisConfig{Timeout: time.Second})
	mem := NewMemory()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))

	type spec struct {
		counter      bool
		max, burst   int64
		window       time.Duration
		tokens       bool
		shadowChance int
	}
	specs := []spec{
		{max: 5, burst: 3, window: time.Minute},
		{max: 7, burst: 7, window: time.Minute},
		{max: 1000, burst: 1500, window: time.Minute, tokens: true},
		{max: 5000, burst: 2000, window: time.Hour, tokens: true, shadowChance: 3},
		{max: 1 << 40, burst: 1 << 39, window: time.Hour, tokens: true},
		{counter: true, max: 20},
		{counter: true, max: 3000, tokens: true, shadowChance: 4},
	}
	build := func(now int64) *batch {
		b := &batch{org: ns + ":{o}:", now: now}
		for i, s := range specs {
			if rng.IntN(3) == 0 {
				continue
			}
			need := int64(1)
			if s.tokens {
				need = rng.Int64N(700)
				if rng.IntN(20) == 0 {
					need = s.burst + 1
				}
			}
			r := rule{key: ns + ":{o}:" + string(rune('a'+i)), need: need, limit: s.max}
			if s.shadowChance > 0 && rng.IntN(s.shadowChance) == 0 {
				r.shadow = true
			}
			if s.counter {
				r.counter, r.max, r.ttl = true, s.max, 86_400_000
				r.cost = min(need, s.max+1)
			} else {
				r.spec = newRate(s.max, s.burst, s.window)
				r.cost = need * r.spec.unit
				if need > s.burst {
					r.cost = r.spec.cap + r.spec.unit
				}
			}
			b.rules[b.n] = r
			b.n++
		}
		return b
	}

	var offset int64
	var held []*batch
	var allowedN, refusedN int
	for step := 0; step < 2500; step++ {
		switch rng.IntN(5) {
		case 0:
			offset += rng.Int64N(3 * sec)
		case 1:
			offset += rng.Int64N(100_000)
		}
		now := time.Now().UnixMicro() + offset
		if rng.IntN(10) == 0 {
			now -= rng.Int64N(50_000) // another replica's clock, behind
		}
		if len(held) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(held))
			b := held[i]
			held = append(held[:i], held[i+1:]...)
			var delta [maxRules]int64
			for j := 0; j < b.n; j++ {
				switch rng.IntN(3) {
				case 0:
					delta[j] = -b.rules[j].cost
				case 1:
					delta[j] = rng.Int64N(2*b.rules[j].cost+1) - b.rules[j].cost
				}
			}
			b.now = now
			mb, rb := *b, *b
			rb.via = viaShared
			if err := mem.adjust(ctx, &mb, &delta); err != nil {
				t.Fatal(err)
			}
			if err := red.adjust(ctx, &rb, &delta); err != nil {
				t.Fatalf("step %d: redis adjust: %v", step, err)
			}
			continue
		}
		mb := build(now)
		rb := *mb
		if err := mem.take(ctx, mb); err != nil {
			t.Fatal(err)
		}
		if err := red.take(ctx, &rb); err != nil || rb.via != viaShared {
			t.Fatalf("step %d: redis take: %v (via %d)", step, err, rb.via)
		}
		if mb.allowed != rb.allowed || mb.level != rb.level || mb.last != rb.last {
			t.Fatalf("step %d: memory and Redis differ:\nmemory %v %v %v\nredis  %v %v %v",
				step, mb.allowed, mb.level[:mb.n], mb.last[:mb.n], rb.allowed, rb.level[:rb.n], rb.last[:rb.n])
		}
		if mb.allowed {
			allowedN++
			held = append(held, mb)
		} else {
			refusedN++
		}
	}
	if allowedN < 100 || refusedN < 100 {
		t.Fatalf("sequence exercised too little: %d allowed, %d refused", allowedN, refusedN)
	}
}
