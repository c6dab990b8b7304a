package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/providertest/fakeanthropic"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// failoverPolicy routes gpt-4o-mini to ${PRIMARY} then ${SECONDARY}
// (OpenAI-compatible), claude-haiku-4-5 to ${ANTHROPIC} then
// ${SECONDARY}, and always-failing to ${PRIMARY} only; breaker is the
// indented body of server.breaker.
func failoverPolicy(breaker string) string {
	return `
server:
  breaker:
` + breaker + `
providers:
  - id: primary
    type: openai
    base_url: ${PRIMARY}
    timeouts: {connect: 300ms, first_byte: 300ms}
  - id: secondary
    type: openai
    base_url: ${SECONDARY}
  - id: claude
    type: anthropic
    base_url: ${ANTHROPIC}
    api_key: sk-ant-test
models:
  - id: gpt-4o-mini
    targets: [{provider: primary}, {provider: secondary}]
  - id: claude-haiku-4-5
    targets: [{provider: claude}, {provider: secondary, model: gpt-4o-mini}]
  - id: always-failing
    targets: [{provider: primary}]
orgs:
  - id: demo
    models: ["*"]
keys:
  - id: demo
    org: demo
    sha256: ` + digest(demoKey) + "\n"
}

type failoverRig struct {
	primary, secondary *fakeopenai.Server
	claude             *fakeanthropic.Server
	g                  *gateway
}

func startFailover(t *testing.T, primaryURL string, breaker string) *failoverRig {
	t.Helper()
	r := &failoverRig{
		primary:   fakeopenai.New(t, fakeopenai.WithReply("from the primary")),
		secondary: fakeopenai.New(t, fakeopenai.WithReply("from the secondary")),
		claude:    fakeanthropic.New(t, fakeanthropic.WithReply("from claude"), fakeanthropic.WithAPIKey("sk-ant-test")),
	}
	if primaryURL == "" {
		primaryURL = r.primary.URL()
	}
	if breaker == "" {
		breaker = "    consecutive_failures: 1000"
	}
	r.g = startGateway(t, failoverPolicy(breaker), map[string]string{
		"PRIMARY": primaryURL, "SECONDARY": r.secondary.URL(), "ANTHROPIC": r.claude.URL()})
	return r
}

func chatText(t *testing.T, g *gateway, model string) (string, error) {
	t.Helper()
	p := userMsg("hi")
	p.Model = model
	c := sdk(g, demoKey)
	resp, err := c.Chat.Completions.New(context.Background(), p)
	if err != nil {
		return "", err
	}
	return resp.Choices[0].Message.Content, nil
}

// closedPort returns a 127.0.0.1 URL nobody listens on.
func closedPort(t testing.TB) string { return "http://" + closedAddr(t) + "/v1" }

// TestFailoverFaults injects each fault into the primary and asserts what
// the client sees: the secondary's answer for every fault that happens
// before the commit point, the primary's own answer when it is merely slow.
func TestFailoverFaults(t *testing.T) {
	cases := []struct {
		name  string
		fault fakeopenai.Fault
		want  string
	}{
		{"503", fakeopenai.Fault{Status: 503}, "from the secondary"},
		{"500", fakeopenai.Fault{Status: 500}, "from the secondary"},
		{"429 without Retry-After", fakeopenai.Fault{Status: 429}, "from the secondary"},
		{"429 with a long Retry-After", fakeopenai.Fault{Status: 429, RetryAfter: "30"}, "from the secondary"},
		{"hang before headers", fakeopenai.Fault{Hang: true}, "from the secondary"},
		{"slow first byte within the deadline", fakeopenai.Fault{FirstByteDelay: 50 * time.Millisecond}, "from the primary"},
	}
	r := startFailover(t, "", "")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.primary.SetFault(c.fault)
			defer r.primary.ClearFault()
			start := time.Now()
			text, err := chatText(t, r.g, "gpt-4o-mini")
			if err != nil {
				t.Fatalf("the client saw an error: %v", err)
			}
			if text != c.want {
				t.Fatalf("answer %q, want %q", text, c.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("failover took %v, want under 2s", d)
			}
		})
	}
	if n := r.g.counter(t, "aigw_failovers_total", map[string]string{"from": "primary/gpt-4o-mini", "to": "secondary/gpt-4o-mini"}); n < 5 {
		t.Fatalf("aigw_failovers_total = %v, want at least 5", n)
	}
}

func TestFailoverShortRetryAfterRetriesSameTarget(t *testing.T) {
	r := startFailover(t, "", "")
	r.primary.SetFault(fakeopenai.Fault{Status: 429, RetryAfter: "1", Count: 1})
	text, err := chatText(t, r.g, "gpt-4o-mini")
	if err != nil || text != "from the primary" {
		t.Fatalf("got %q, %v; want the primary's answer after its Retry-After", text, err)
	}
	if n := len(r.secondary.Requests()); n != 0 {
		t.Fatalf("secondary saw %d requests", n)
	}
}

func TestFailoverConnectionRefused(t *testing.T) {
	r := startFailover(t, closedPort(t), "")
	text, err := chatText(t, r.g, "gpt-4o-mini")
	if err != nil || text != "from the secondary" {
		t.Fatalf("got %q, %v", text, err)
	}
	// With nowhere else to go, the client gets a clean gateway error.
	_, err = chatText(t, r.g, "always-failing")
	if s := apiStatus(err); s != 502 && s != 503 {
		t.Fatalf("always-failing: status %d (%v), want 502 or 503", s, err)
	}
}

func TestFailoverAnthropic529(t *testing.T) {
	r := startFailover(t, "", "")
	r.claude.SetFault(fakeanthropic.Fault{Status: 529})
	text, err := chatText(t, r.g, "claude-haiku-4-5")
	if err != nil || text != "from the secondary" {
		t.Fatalf("got %q, %v", text, err)
	}
	r.claude.ClearFault()
	if text, err := chatText(t, r.g, "claude-haiku-4-5"); err != nil || text != "from claude" {
		t.Fatalf("after recovery got %q, %v", text, err)
	}
}

func TestFailoverNeverOnClientErrors(t *testing.T) {
	r := startFailover(t, "", "")
	for _, status := range []int{400, 404} {
		r.primary.SetFault(fakeopenai.Fault{Status: status, Count: 1})
		_, err := chatText(t, r.g, "gpt-4o-mini")
		if s := apiStatus(err); s != status {
			t.Fatalf("status %d, want the upstream's %d passed through", s, status)
		}
	}
	r.primary.SetFault(fakeopenai.Fault{Status: 400, Code: "context_length_exceeded", Count: 1})
	if _, err := chatText(t, r.g, "gpt-4o-mini"); apiStatus(err) != 400 {
		t.Fatalf("context length: %v", err)
	}
	if n := len(r.secondary.Requests()); n != 0 {
		t.Fatalf("client errors reached the secondary %d times", n)
	}
}

// resetAfterHeaders is an upstream that answers 200 with its headers and
// part of a body, then resets the connection.
func resetAfterHeaders(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 64<<10)
				_, _ = c.Read(buf)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"id\":")
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				c.Close()
			}()
		}
	}()
	return "http://" + l.Addr().String() + "/v1"
}

func TestFailoverResetAfterHeaders(t *testing.T) {
	r := startFailover(t, resetAfterHeaders(t), "")
	text, err := chatText(t, r.g, "gpt-4o-mini")
	if err != nil || text != "from the secondary" {
		t.Fatalf("got %q, %v", text, err)
	}
}

func TestFailoverStreamResetMidStreamIsNotReplayed(t *testing.T) {
	r := startFailover(t, "", "")
	r.primary.SetFault(fakeopenai.Fault{AbortAfter: 4})
	c := sdk(r.g, demoKey)
	st := c.Chat.Completions.NewStreaming(context.Background(), userMsg("hi"))
	for st.Next() {
	}
	if st.Err() == nil {
		t.Fatal("a stream reset after its first content ended without an error")
	}
	if n := len(r.secondary.Requests()); n != 0 {
		t.Fatalf("a committed stream was replayed on the secondary (%d requests)", n)
	}
}

// togglingProxy forwards TCP to a backend while up; while down it refuses
// new connections (accept and reset) and cuts the open ones: an upstream
// that died.
type togglingProxy struct {
	l       net.Listener
	backend string
	down    atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

func newTogglingProxy(t *testing.T, backendURL string) *togglingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(strings.TrimSuffix(backendURL, "/v1"), "http://")
	p := &togglingProxy{l: l, backend: host, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { l.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *togglingProxy) URL() string { return "http://" + p.l.Addr().String() + "/v1" }

func (p *togglingProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[b] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(b, c); b.Close() }()
		go func() { _, _ = io.Copy(c, b); c.Close() }()
	}
}

func (p *togglingProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

func (p *togglingProxy) setDown(down bool) {
	p.down.Store(down)
	if down {
		p.cut()
	}
}

// TestFailoverUnderLoad kills the primary under a steady load of
// concurrent non-stream requests: none fails, traffic moves to the
// secondary; once the primary is back, its breaker closes and traffic
// returns to it.
func TestFailoverUnderLoad(t *testing.T) {
	primary := fakeopenai.New(t, fakeopenai.WithReply("from the primary"))
	tp := newTogglingProxy(t, primary.URL())
	r := startFailover(t, tp.URL(), "    consecutive_failures: 3\n    cooldown: 200ms")

	var failed, total atomic.Int64
	var fromPrimary atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := sdk(r.g, demoKey)
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Chat.Completions.New(context.Background(), userMsg("hi"))
				total.Add(1)
				if err != nil {
					failed.Add(1)
					t.Errorf("request failed during failover: %v", err)
					continue
				}
				if resp.Choices[0].Message.Content == "from the primary" {
					fromPrimary.Add(1)
				}
			}
		})
	}
	waitFor(t, func() bool { return fromPrimary.Load() > 50 })
	tp.setDown(true)
	secondaryBefore := len(r.secondary.Requests())
	waitFor(t, func() bool { return len(r.secondary.Requests()) > secondaryBefore+100 })
	if n := r.g.counter(t, "aigw_failovers_total", map[string]string{"from": "primary/gpt-4o-mini"}); n == 0 {
		t.Error("no failover counted")
	}
	tp.setDown(false)
	back := fromPrimary.Load()
	waitFor(t, func() bool { return fromPrimary.Load() > back+50 })
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), total.Load())
	}
}

// TestHealthCheckOpensBreaker runs the active health checks: a primary
// that refuses connections is marked down by its probe, so the first
// request goes straight to the secondary; the admin API reports it.
func TestHealthCheckOpensBreaker(t *testing.T) {
	secondary := fakeopenai.New(t, fakeopenai.WithReply("from the secondary"))
	policy := strings.Replace(failoverPolicy("    consecutive_failures: 1\n    cooldown: 1m"),
		"timeouts: {connect: 300ms, first_byte: 300ms}", "timeouts: {connect: 300ms, first_byte: 300ms}\n    health_check: {interval: 1h}", 1)
	policy = strings.Replace(policy, "    base_url: ${SECONDARY}\n", "    base_url: ${SECONDARY}\n    health_check: {disabled: true}\n", 1)
	policy = strings.Replace(policy, "    api_key: sk-ant-test\n", "    api_key: sk-ant-test\n    health_check: {disabled: true}\n", 1)
	g := startGateway(t, policy, map[string]string{"PRIMARY": closedPort(t), "SECONDARY": secondary.URL(), "ANTHROPIC": closedPort(t)},
		func(o *proxy.Options) { o.NoHealthChecks = false })
	waitFor(t, func() bool {
		return g.counter(t, "aigw_upstream_breaker_state", map[string]string{"target": "primary/gpt-4o-mini"}) == 1
	})
	if up := g.counter(t, "aigw_upstream_up", map[string]string{"target": "primary/gpt-4o-mini"}); up != 0 {
		t.Fatalf("aigw_upstream_up = %v for a dead primary", up)
	}
	text, err := chatText(t, g, "gpt-4o-mini")
	if err != nil || text != "from the secondary" {
		t.Fatalf("got %q, %v", text, err)
	}
	if n := g.counter(t, "aigw_upstream_requests_total", map[string]string{"provider": "primary"}); n != 0 {
		t.Fatalf("the open primary was tried %v times", n)
	}
	res := getJSON(t, g.Admin+"/api/ai/providers/health")
	if !strings.Contains(res, `"id":"primary/gpt-4o-mini"`) || !strings.Contains(res, `"state":"open"`) || !strings.Contains(res, `"success":true`) {
		t.Fatalf("health API: %s", res)
	}
}

func getJSON(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
