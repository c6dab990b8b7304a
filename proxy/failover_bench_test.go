package proxy_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/providertest/fakeopenai"
)

// BenchmarkFailoverCost measures the time failover adds to a request whose
// first target fails before the commit point, against the same request
// sent straight to the survivor, in the same run: requests alternate
// between model "direct" (secondary only) and model "failover" (primary,
// then secondary). The breaker is tuned never to open, so every
// "failover" request pays for the failed attempt. Reported: p50 and p99 of
// each, and the added p50/p99 in µs.
//
//	go test -run '^$' -bench FailoverCost -benchtime 2000x ./proxy/
func BenchmarkFailoverCost(b *testing.B) {
	for _, fault := range []string{"503", "refused"} {
		b.Run(fault, func(b *testing.B) {
			secondary := fakeopenai.New(b)
			primaryURL := ""
			if fault == "503" {
				primary := fakeopenai.New(b)
				primary.SetFault(fakeopenai.Fault{Status: 503})
				primaryURL = primary.URL()
			} else {
				primaryURL = closedPort(b)
			}
			g := startGateway(b, `
server:
  breaker: {consecutive_failures: 100000000, min_requests: 100000000}
providers:
  - id: primary
    type: openai
    base_url: ${PRIMARY}
  - id: secondary
    type: openai
    base_url: ${SECONDARY}
models:
  - id: direct
    targets: [{provider: secondary, model: gpt-4o-mini}]
  - id: failover
    targets: [{provider: primary, model: gpt-4o-mini}, {provider: secondary, model: gpt-4o-mini}]
orgs: [{id: demo, models: ["*"]}]
keys: [{id: demo, org: demo, sha256: `+digest(demoKey)+`}]
`, map[string]string{"PRIMARY": primaryURL, "SECONDARY": secondary.URL()})
			client := &http.Client{}
			send := func(model string) time.Duration {
				start := time.Now()
				req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions",
					strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
				req.Header.Set("Authorization", "Bearer "+demoKey)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s: status %d", model, resp.StatusCode)
				}
				return time.Since(start)
			}
			send("direct")
			send("failover")
			var direct, failover []time.Duration
			b.ResetTimer()
			for b.Loop() {
				direct = append(direct, send("direct"))
				failover = append(failover, send("failover"))
			}
			b.StopTimer()
			slices.Sort(direct)
			slices.Sort(failover)
			q := func(v []time.Duration, p float64) float64 {
				return float64(v[int(p*float64(len(v)-1))].Microseconds())
			}
			b.ReportMetric(q(direct, .5), "µs-p50-direct")
			b.ReportMetric(q(failover, .5), "µs-p50-failover")
			b.ReportMetric(q(failover, .5)-q(direct, .5), "µs-p50-added")
			b.ReportMetric(q(failover, .99)-q(direct, .99), "µs-p99-added")
		})
	}
}
