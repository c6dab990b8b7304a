package proxy_test

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// BenchmarkCacheHit measures a cached answer end to end against an
// upstream answer in the same run: one gateway on the savings policy
// (cache on for temperature 0), one client, the same request each time.
//
//   - upstream: x-aigw-cache: no-store, so every request goes to the fake
//     OpenAI on 127.0.0.1 (which answers at once: a real upstream adds its
//     own hundreds of milliseconds on top);
//   - hit-memory: answered from the in-process tier;
//   - hit-redis: the in-process tier is sized below the entry, so every
//     request is answered from the shared Redis tier.
//
// Each sub-benchmark's ns/op is one request through the gateway; the
// three run one after another in the same process, so their ratio is the
// figure (docs/benchmarks.md).
//
//	go test -run '^$' -bench CacheHit -benchtime 3000x ./proxy/
func BenchmarkCacheHit(b *testing.B) {
	example, err := os.ReadFile("../configs/examples/savings.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name     string
		header   string
		maxBytes string
		redis    bool
		want     string
	}{
		{name: "upstream", header: "no-store", want: "miss"},
		{name: "hit-memory", want: "hit"},
		{name: "hit-redis", maxBytes: "1", redis: true, want: "hit"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			fake := fakeopenai.New(b)
			policy := string(example)
			if c.maxBytes != "" {
				policy = strings.Replace(policy, "max_bytes: 256MiB", "max_bytes: "+c.maxBytes, 1)
			}
			var opts []func(*proxy.Options)
			if c.redis {
				client := benchRedis(b)
				ns := uniqueNamespace()
				opts = append(opts, func(o *proxy.Options) { o.CacheRedis, o.CacheNamespace = client, ns })
			}
			g := startGateway(b, policy, map[string]string{"OPENAI_BASE_URL": fake.URL(), "OPENAI_API_KEY": "k"}, opts...)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			post := func(header string) string {
				req, err := newRequest(http.MethodPost, g.URL+"/chat/completions", demoKey, cacheBody)
				if err != nil {
					b.Fatal(err)
				}
				if header != "" {
					req.Header.Set("x-aigw-cache", header)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
				return resp.Header.Get("x-aigw-cache")
			}
			post("") // fills the cache (both tiers when Redis is on)
			if c.redis && c.want == "hit" {
				// The Redis write is asynchronous to the answer: wait for it.
				deadline := time.Now().Add(5 * time.Second)
				for post(c.header) != "hit" && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			before := chatCount(fake)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got := post(c.header); got != c.want {
					b.Fatalf("x-aigw-cache %q, want %q", got, c.want)
				}
			}
			b.StopTimer()
			calls := chatCount(fake) - before
			if c.want == "hit" && calls != 0 {
				b.Fatalf("%d upstream calls on hits", calls)
			}
			if c.want == "miss" && calls != b.N {
				b.Fatalf("%d upstream calls for %d requests", calls, b.N)
			}
		})
	}
}

// benchRedis is a client of the test Redis (see requireRedis).
func benchRedis(b *testing.B) *redis.Client {
	requireRedis(b)
	client := redis.NewClient(&redis.Options{Addr: testRedis, DialTimeout: time.Second})
	b.Cleanup(func() { _ = client.Close() })
	return client
}
