package route

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

func TestClassify(t *testing.T) {
	var p RetryPolicy
	for _, c := range []struct {
		err  error
		want Class
	}{
		{nil, Fatal},
		{errors.New("plain"), Fatal},
		{context.Canceled, Fatal},
		{&llm.Error{Kind: llm.KindInvalidRequest, Status: 400}, Fatal},
		{&llm.Error{Kind: llm.KindInvalidRequest, Status: 400, Retryable: true}, Fatal},
		{&llm.Error{Kind: llm.KindAuth, Status: 401}, Fatal},
		{&llm.Error{Kind: llm.KindPermission, Status: 403}, Fatal},
		{&llm.Error{Kind: llm.KindNotFound, Status: 404}, Fatal},
		{&llm.Error{Kind: llm.KindTooLarge, Status: 413}, Fatal},
		{&llm.Error{Kind: llm.KindContextLength, Status: 400}, Fatal},
		{&llm.Error{Kind: llm.KindCanceled}, Fatal},
		{&llm.Error{Kind: llm.KindInternal}, Fatal},
		{&llm.Error{Kind: llm.KindRateLimit, Status: 429, Retryable: true}, RetrySame},
		{&llm.Error{Kind: llm.KindQuotaExceeded, Status: 429}, RetryNext},
		{&llm.Error{Kind: llm.KindUpstream, Status: 500, Retryable: true}, RetrySame},
		{&llm.Error{Kind: llm.KindUpstream, Status: 502, Retryable: true}, RetrySame},
		{&llm.Error{Kind: llm.KindUpstream, Status: 401, Retryable: true}, RetrySame}, // gateway's own credentials
		{&llm.Error{Kind: llm.KindUpstream, Status: 500}, Fatal},                      // X-Should-Retry: false
		{&llm.Error{Kind: llm.KindUnavailable, Status: 503, Retryable: true}, RetrySame},
		{&llm.Error{Kind: llm.KindUnavailable, Retryable: true}, RetrySame}, // dial error
		{&llm.Error{Kind: llm.KindTimeout, Status: 504, Retryable: true}, RetryNext},
		{&llm.Error{Kind: llm.KindTimeout, Retryable: true}, RetryNext}, // before headers
		{&llm.Error{Kind: llm.KindOverloaded, Status: 529, Retryable: true}, RetrySame},
		{fmt.Errorf("wrapped: %w", &llm.Error{Kind: llm.KindOverloaded, Retryable: true}), RetrySame},
	} {
		if got := p.Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	p := RetryPolicy{BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Rand: seeded(7)}
	for n := range 70 {
		ceil := min(time.Second, 100*time.Millisecond<<min(n, 20))
		var hi time.Duration
		for range 500 {
			d := p.Backoff(n)
			if d < 0 || d > ceil {
				t.Fatalf("Backoff(%d) = %v, outside [0, %v]", n, d, ceil)
			}
			hi = max(hi, d)
		}
		if hi < ceil/2 {
			t.Errorf("Backoff(%d) never above %v in 500 draws: not full jitter up to %v", n, hi, ceil)
		}
	}
	// The bounds are reached exactly by the extreme draws.
	top := RetryPolicy{Rand: func(n uint64) uint64 { return n - 1 }}
	bottom := RetryPolicy{Rand: func(uint64) uint64 { return 0 }}
	for n, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, time.Second, time.Second} {
		if got := top.Backoff(n); got != want {
			t.Errorf("top Backoff(%d) = %v, want %v (defaults 100ms..1s)", n, got, want)
		}
		if got := bottom.Backoff(n); got != 0 {
			t.Errorf("bottom Backoff(%d) = %v, want 0", n, got)
		}
	}
}

func TestDecide(t *testing.T) {
	top := func(n uint64) uint64 { return n - 1 }
	def := RetryPolicy{Rand: top}.withDefaults()
	twice := RetryPolicy{SameTarget: 2, Rand: top}.withDefaults()
	roomy := RetryPolicy{SameTarget: 2, MaxAttempts: 10, Rand: top}.withDefaults()
	impatient := RetryPolicy{MaxRetryAfter: 200 * time.Millisecond}.withDefaults()
	ra := func(d time.Duration) error {
		return &llm.Error{Kind: llm.KindRateLimit, Status: 429, Retryable: true, RetryAfter: d}
	}
	for name, c := range map[string]struct {
		p                 RetryPolicy
		err               error
		attempts, retries int
		elapsed           time.Duration
		act               action
		delay             time.Duration
	}{
		"fatal 400":              {def, upstreamErr(400), 1, 0, 0, stop, 0},
		"context length":         {def, &llm.Error{Kind: llm.KindContextLength, Status: 400}, 1, 0, 0, stop, 0},
		"502 moves on":           {def, upstreamErr(502), 1, 0, 0, next, 0},
		"529 moves on":           {def, upstreamErr(529), 1, 0, 0, next, 0},
		"attempt limit":          {def, upstreamErr(502), 3, 0, 0, stop, 0},
		"deadline":               {def, upstreamErr(502), 1, 0, 2 * time.Second, stop, 0},
		"short retry-after":      {def, ra(500 * time.Millisecond), 1, 0, 0, same, 500 * time.Millisecond},
		"retry-after only once":  {def, ra(500 * time.Millisecond), 2, 1, 0, next, 0},
		"long retry-after":       {def, ra(5 * time.Second), 1, 0, 0, next, 0},
		"over MaxRetryAfter":     {impatient, ra(500 * time.Millisecond), 1, 0, 0, next, 0},
		"under MaxRetryAfter":    {impatient, ra(200 * time.Millisecond), 1, 0, 0, same, 200 * time.Millisecond},
		"retry-after past dline": {def, ra(time.Second), 1, 0, 1500 * time.Millisecond, next, 0},
		"429 no hint":            {def, ra(0), 1, 0, 0, next, 0},
		"same with backoff":      {twice, upstreamErr(502), 1, 0, 0, same, 100 * time.Millisecond},
		"same second backoff":    {twice, upstreamErr(503), 2, 1, 0, same, 200 * time.Millisecond},
		"same exhausted":         {twice, upstreamErr(502), 3, 2, 0, stop, 0}, // also the attempt limit
		"same budget spent":      {roomy, upstreamErr(502), 3, 2, 0, next, 0},
		"backoff past deadline":  {twice, upstreamErr(502), 1, 1, 1850 * time.Millisecond, next, 0},
		"timeout never same":     {twice, upstreamErr(504), 1, 0, 0, next, 0},
		"quota never same":       {twice, &llm.Error{Kind: llm.KindQuotaExceeded, Status: 429}, 1, 0, 0, next, 0},
		"retry-after with same":  {twice, ra(300 * time.Millisecond), 2, 1, 0, same, 300 * time.Millisecond},
	} {
		act, d := c.p.decide(c.err, c.attempts, c.retries, c.elapsed)
		if act != c.act || d != c.delay {
			t.Errorf("%s: decide = %v, %v; want %v, %v", name, act, d, c.act, c.delay)
		}
	}
}
