package proxy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/redis/go-redis/v9"

	"github.com/aigw/aigw/policy/quota"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

const testRedis = "127.0.0.1:6379"

// requireRedis checks that the test Redis answers: without it the test is
// skipped, or fails when CI is set (CI must run it).
func requireRedis(t testing.TB) {
	t.Helper()
	probe := redis.NewClient(&redis.Options{Addr: testRedis, DialTimeout: time.Second, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := probe.Ping(ctx).Err()
	cancel()
	_ = probe.Close()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is required under CI: %v", testRedis, err)
		}
		t.Skipf("no Redis at %s (set CI to make this a failure): %v", testRedis, err)
	}
}

// redisBackend returns a QuotaBackend option on the Redis at addr, after
// requireRedis.
func redisBackend(t testing.TB, addr, ns string) func(*proxy.Options) {
	t.Helper()
	requireRedis(t)
	// These tests are about sharing, not outages: under the race detector
	// and 200 concurrent streams on two cores a call can take longer than
	// the production bounds (100 ms), which would open the breaker and
	// hand decisions to the local fallback. A reachable Redis gets
	// generous bounds; the closed port keeps the production ones.
	timeout := quota.DefaultRedisTimeout
	ro := quota.ClientOptions(&redis.Options{Addr: addr})
	if addr == testRedis {
		timeout = 5 * time.Second
		ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout = timeout, timeout, timeout, timeout
	}
	client := redis.NewClient(ro)
	t.Cleanup(func() { _ = client.Close() })
	return func(o *proxy.Options) {
		o.QuotaNamespace = ns
		o.QuotaBackend = func(m quota.Metrics) quota.Backend {
			return quota.NewRedis(client, quota.RedisConfig{Metrics: m, Replicas: 2, Timeout: timeout})
		}
	}
}

func uniqueNamespace() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "aigwtest-" + hex.EncodeToString(b[:])
}

// sharedPolicy: org demo has the daily limits given; org strict fails
// closed while the shared backend is down.
func sharedPolicy(limits string) string {
	return `
providers:
  - id: openai
    type: openai
    base_url: ${OPENAI_BASE_URL}
models:
  - id: gpt-4o-mini
    targets: [{provider: openai}]
orgs:
  - id: demo
    models: ["*"]
    limits: ` + limits + `
  - id: strict
    models: ["*"]
    limits: {rpd: 1000}
    fail_mode: closed
keys:
  - id: demo
    org: demo
    sha256: ` + digest(demoKey) + `
  - id: strict
    org: strict
    sha256: ` + digest("sk-aigw-strict") + "\n"
}

// sharedPair starts two gateways on sharedPolicy(limits) whose quotas
// share the test Redis under a fresh namespace, both routed to fake.
func sharedPair(t *testing.T, fake *fakeopenai.Server, limits string) []*gateway {
	t.Helper()
	ns := uniqueNamespace()
	env := map[string]string{"OPENAI_BASE_URL": fake.URL()}
	pol := sharedPolicy(limits)
	return []*gateway{
		startGateway(t, pol, env, redisBackend(t, testRedis, ns)),
		startGateway(t, pol, env, redisBackend(t, testRedis, ns)),
	}
}

// TestTwoGatewaysShareRedisQuota: two gateways on one Redis, 16 clients
// spread over both, 300 requests against a daily quota of 100. Each
// decision is one Lua script over the org's state, so the bound is exact:
// exactly 100 pass (no over-admission, not even one request per
// instance, and no refusal while under the limit).
func TestTwoGatewaysShareRedisQuota(t *testing.T) {
	fake := fakeopenai.New(t)
	gws := sharedPair(t, fake, "{rpd: 100}")
	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300/16+1; i++ {
				if w*(300/16+1)+i >= 300 {
					return
				}
				res := postJSON(t, gws[(w+i)%2].URL+"/chat/completions", demoKey, helloBody)
				switch {
				case res.status == 200:
					ok.Add(1)
				case res.status == 429 && res.header.Get("x-aigw-quota-reason") == "org_rpd":
					refused.Add(1)
				default:
					other.Add(1)
					t.Errorf("unexpected %d %s", res.status, res.body)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 100 || refused.Load() != 200 || other.Load() != 0 {
		t.Fatalf("admitted %d, refused %d, other %d; want exactly 100 and 200", ok.Load(), refused.Load(), other.Load())
	}
	if n := len(fake.Requests()); n != 100 {
		t.Fatalf("upstream got %d requests, want 100", n)
	}
	for i, g := range gws {
		if up := g.counter(t, "aigw_quota_shared_backend_up", nil); up != 1 {
			t.Errorf("gateway %d: aigw_quota_shared_backend_up = %v", i, up)
		}
	}
}

// TestConcurrentStreamsAgainstTokenQuota: 200 concurrent streams over two
// gateways sharing Redis, against a daily token quota. Admission reserves
// each stream's prompt estimate plus its max_tokens before it starts and
// the stream's real usage replaces the reservation when it ends, so the
// tokens admitted streams actually use never exceed the quota (the bound:
// zero over, as long as no upstream uses more than its reservation), and
// what they did not use is given back.
func TestConcurrentStreamsAgainstTokenQuota(t *testing.T) {
	fake := fakeopenai.New(t, fakeopenai.WithStream(4, 20*time.Millisecond))
	const quotaTokens = 5000
	gws := sharedPair(t, fake, "{tpd: 5000}")
	var used, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := openai.NewClient(option.WithBaseURL(gws[i%2].URL+"/"), option.WithAPIKey(demoKey), option.WithMaxRetries(0),
				option.WithRequestTimeout(20*time.Second))
			p := userMsg("hello")
			p.MaxTokens = openai.Int(100)
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			s := c.Chat.Completions.NewStreaming(context.Background(), p)
			var total int64
			for s.Next() {
				if u := s.Current().Usage; u.TotalTokens > 0 {
					total = u.TotalTokens
				}
			}
			var apiErr *openai.Error
			switch err := s.Err(); {
			case err == nil && total > 0:
				admitted.Add(1)
				used.Add(total)
			case errors.As(err, &apiErr) && apiErr.StatusCode == 429 && apiErr.Code == "insufficient_quota":
				refused.Add(1)
			default:
				t.Errorf("stream %d: err %v, usage %d", i, err, total)
			}
		}()
	}
	wg.Wait()
	t.Logf("admitted %d streams using %d tokens of %d; refused %d", admitted.Load(), used.Load(), quotaTokens, refused.Load())
	for i, g := range gws {
		if up := g.counter(t, "aigw_quota_shared_backend_up", nil); up != 1 {
			t.Fatalf("gateway %d fell back from Redis during the test", i)
		}
	}
	if used.Load() > quotaTokens {
		t.Fatalf("admitted streams used %d tokens, more than the quota of %d", used.Load(), quotaTokens)
	}
	if admitted.Load() < 20 || refused.Load() == 0 || admitted.Load()+refused.Load() != 200 {
		t.Fatalf("admitted %d refused %d", admitted.Load(), refused.Load())
	}
	// Every stream has settled: the next request sees the real usage
	// deducted, not the reservations.
	waitFor(t, func() bool {
		return gws[0].counter(t, "aigw_active_streams", nil)+gws[1].counter(t, "aigw_active_streams", nil) == 0
	})
	res := postJSON(t, gws[0].URL+"/chat/completions", demoKey, `{"model":"gpt-4o-mini","max_tokens":1,"messages":[{"role":"user","content":"hello"}]}`)
	if res.status != 200 {
		t.Fatalf("after the streams: %d %s", res.status, res.body)
	}
	rem, err := strconv.ParseInt(res.header.Get("x-ratelimit-remaining-tokens"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if left := quotaTokens - used.Load(); rem >= left || rem < left-50 {
		t.Fatalf("remaining %d after the streams used %d: want just under %d (this request's small reservation)", rem, used.Load(), left)
	}
}

// TestRedisDownFailModes: with the shared backend unreachable, an org
// failing locally keeps being served from the replica's share of its
// limits, one failing closed gets 503 quota_unavailable, and the outage
// shows in aigw_quota_shared_backend_up.
func TestRedisDownFailModes(t *testing.T) {
	fake := fakeopenai.New(t)
	g := startGateway(t, sharedPolicy("{rpd: 4}"), map[string]string{"OPENAI_BASE_URL": fake.URL()},
		redisBackend(t, closedAddr(t), uniqueNamespace()))
	for i := 0; i < 2; i++ { // each of 2 replicas enforces half of 4
		start := time.Now()
		if res := postJSON(t, g.URL+"/chat/completions", demoKey, helloBody); res.status != 200 {
			t.Fatalf("local fallback %d: %d %s", i, res.status, res.body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("request took %v with Redis down", d)
		}
	}
	mustRefuse(t, "over the local share", postJSON(t, g.URL+"/chat/completions", demoKey, helloBody), "insufficient_quota", "org_rpd", true)
	res := postJSON(t, g.URL+"/chat/completions", "sk-aigw-strict", helloBody)
	if res.status != 503 || res.header.Get("x-aigw-quota-reason") != "quota_unavailable" {
		t.Fatalf("fail closed: %d %v %s", res.status, res.header, res.body)
	}
	if up := g.counter(t, "aigw_quota_shared_backend_up", nil); up != 0 {
		t.Fatalf("aigw_quota_shared_backend_up = %v during the outage", up)
	}
}

// closedAddr is a host:port nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
