package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// BenchmarkGatewayQuota measures what the quota stage costs a request
// end to end, against the same gateway without quotas in the same run:
// each parallel client alternates between a gateway without limits (the
// backbone) and one whose org and key have all five limits (so prompts are
// counted with tiktoken and every limit is checked and settled), in
// process or in Redis. Reported: ns per request through each, and their
// ratio (quota/backbone; 1.00 is free).
//
//	go test -run '^$' -bench GatewayQuota -benchtime 5000x ./proxy/
func BenchmarkGatewayQuota(b *testing.B) {
	const limits = `
    limits: {rpm: 100000000, tpm: 1000000000000, tph: 1000000000000, rpd: 1000000000, tpd: 1000000000000}`
	const keyLimits = `
    limits: {rpm: 100000000, tpm: 1000000000000, rpd: 1000000000}`
	withLimits := func() string {
		p := sharedPolicy("{}")
		p = strings.Replace(p, "\n    limits: {}", limits, 1)
		return strings.Replace(p, "    sha256: "+digest(demoKey), "    sha256: "+digest(demoKey)+keyLimits, 1)
	}
	backbone := strings.Replace(sharedPolicy("{}"), "\n    limits: {}", "", 1)
	for _, backend := range []string{"memory", "redis"} {
		b.Run(backend, func(b *testing.B) {
			fake := fakeopenai.New(b)
			env := map[string]string{"OPENAI_BASE_URL": fake.URL()}
			var opts []func(*proxy.Options)
			if backend == "redis" {
				opts = append(opts, redisBackend(b, testRedis, uniqueNamespace()))
			}
			gws := [2]*gateway{startGateway(b, backbone, env), startGateway(b, withLimits(), env, opts...)}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			post := func(g *gateway) {
				req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions", strings.NewReader(helloBody))
				req.Header.Set("Authorization", "Bearer "+demoKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
			post(gws[0])
			post(gws[1]) // builds the tokenizer outside the timing
			var ns [2]atomic.Int64
			var n [2]atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					k := i % 2
					start := time.Now()
					post(gws[k])
					ns[k].Add(int64(time.Since(start)))
					n[k].Add(1)
					i++
				}
			})
			b.StopTimer()
			if n[0].Load() == 0 || n[1].Load() == 0 {
				return
			}
			off := float64(ns[0].Load()) / float64(n[0].Load())
			on := float64(ns[1].Load()) / float64(n[1].Load())
			b.ReportMetric(off, "ns/req-backbone")
			b.ReportMetric(on, "ns/req-quota")
			b.ReportMetric(on/off, "quota/backbone")
		})
	}
}
