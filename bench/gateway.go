package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// policyTemplate is the gateway's policy for the benchmark: one OpenAI
// provider (the fake upstream), one model, one org and the demo key
// (sha256 of sk-aigw-demo).
const policyTemplate = `# Written by the aigw benchmark harness (bench/).
providers:
  - id: openai
    type: openai
    base_url: http://%s/v1
    api_key: bench-upstream-key
models:
  - id: gpt-4o-mini
    targets:
      - provider: openai
orgs:
  - id: demo
    models: ["*"]
keys:
  - id: demo
    org: demo
    sha256: c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82
`

// gatewayInfo is what the harness knows about (c).
type gatewayInfo struct {
	bin       string
	version   string
	skipped   string // why (c) did not run at all
	crashed   string // why (c) stopped part way
	adminAddr string
	logPath   string
	metrics   map[string]float64 // sums of a few counters of /metrics at the end
	logLines  int
	errLines  int      // log lines at level WARN or ERROR
	errSample []string // a few of them
}

// startGateway writes the policy and starts the gateway on the proxy core,
// its output going to a log file, and waits for its admin /readyz.
func startGateway(p *procs, o options, dir, upstream string, gw *gatewayInfo) (*child, error) {
	bin := absPath(o.gateway)
	gw.version = gatewayVersion(bin)
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, fmt.Appendf(nil, policyTemplate, upstream), 0o600); err != nil {
		return nil, err
	}
	pub, err := freePort()
	if err != nil {
		return nil, err
	}
	adm, err := freePort()
	if err != nil {
		return nil, err
	}
	gw.logPath = filepath.Join(dir, "aigw.log")
	logf, err := os.Create(gw.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	pubAddr := "127.0.0.1:" + strconv.Itoa(pub)
	gw.adminAddr = "127.0.0.1:" + strconv.Itoa(adm)
	cmd := p.command(context.Background(), o.proxyCPU, bin, "serve", "-c", policy,
		"--listen", pubAddr, "--admin-listen", "127.0.0.1:"+strconv.Itoa(adm),
		"--log-level", "info", "--shutdown-grace", "2s")
	cmd.Dir = dir // whatever files it writes (ledger, spill) stay in the temp dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	c := p.track("aigw", cmd, nil)
	c.addr = pubAddr
	if err := waitReady("http://127.0.0.1:"+strconv.Itoa(adm)+"/readyz", c, 20*time.Second); err != nil {
		p.stop(c)
		return nil, fmt.Errorf("gateway %s (log %s): %s", err, gw.logPath, tail(gw.logPath, 5))
	}
	return c, nil
}

// gatewayCounters are the /metrics families summed at the end of a run, to
// show that metrics and accounting saw the load.
var gatewayCounters = []string{"aigw_requests_total", "aigw_tokens_total", "aigw_errors_total", "aigw_panics_total"}

// scrapeMetrics sums each of gatewayCounters over its series.
func (gw *gatewayInfo) scrapeMetrics() {
	if m, err := gw.scrape(gatewayCounters); err == nil {
		gw.metrics = m
	}
}

// scrape reads the gateway's /metrics and sums each of the named families
// over its series; a family it does not expose is absent from the map.
func (gw *gatewayInfo) scrape(names []string) (map[string]float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + gw.adminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range names {
			rest, ok := strings.CutPrefix(line, name)
			if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
				continue
			}
			f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
			if len(f) == 0 {
				continue
			}
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				m[name] += v
			}
		}
	}
	return m, sc.Err()
}

// ledgerDrainLimit bounds how long the harness waits for the ledger.
const ledgerDrainLimit = 60 * time.Second

// waitLedger waits, after a load run, until the gateway's ledger has
// stored everything it was given (aigw_ledger_backlog_bytes 0 and as many
// records flushed as appended), and returns how long that took. Accounting
// the gateway deferred past the run is then part of the run's CPU and
// shows as a lag, rather than as throughput the gateway could not sustain.
// A gateway without the ledger metrics returns at once.
func (gw *gatewayInfo) waitLedger() (time.Duration, error) {
	names := []string{"aigw_ledger_backlog_bytes", "aigw_ledger_records_appended_total", "aigw_ledger_records_flushed_total"}
	start := time.Now()
	for {
		m, err := gw.scrape(names)
		if err != nil {
			return time.Since(start), err
		}
		backlog, ok := m[names[0]]
		if !ok || (backlog == 0 && m[names[2]] >= m[names[1]]) {
			return time.Since(start), nil
		}
		if time.Since(start) > ledgerDrainLimit {
			return time.Since(start), fmt.Errorf("ledger still %.0f bytes behind after %s", backlog, ledgerDrainLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scanLog counts the gateway's log lines and its warnings and errors.
func (gw *gatewayInfo) scanLog() {
	f, err := os.Open(gw.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		gw.logLines++
		if bytes.Contains(line, []byte(`"level":"WARN"`)) || bytes.Contains(line, []byte(`"level":"ERROR"`)) ||
			bytes.Contains(line, []byte("panic")) {
			gw.errLines++
			if len(gw.errSample) < 5 {
				gw.errSample = append(gw.errSample, truncate(string(line), 300))
			}
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func listen127() (net.Listener, error) { return net.Listen("tcp4", "127.0.0.1:0") }
