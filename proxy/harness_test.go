package proxy_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aigw/aigw/configs"
	"github.com/aigw/aigw/policy/auth"
	"github.com/aigw/aigw/proxy"
)

// demoKey is the gateway key whose sha256 the test policies hold.
const demoKey = "sk-aigw-demo"

// gateway is a real aigw server on 127.0.0.1 ephemeral ports.
type gateway struct {
	URL    string // public base, ending in /v1
	Admin  string // admin base
	Srv    *proxy.Server
	Reg    *prometheus.Registry
	Logs   *syncBuffer
	policy string
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startGateway writes policy to a temp file and serves it; env feeds the
// policy's ${VAR} references. The server is shut down by t.Cleanup.
func startGateway(t testing.TB, policy string, env map[string]string, opts ...func(*proxy.Options)) *gateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	load := func() (*configs.Policy, error) {
		p, _, err := configs.Load(path, lookup)
		return p, err
	}
	g := &gateway{Reg: prometheus.NewRegistry(), Logs: &syncBuffer{}, policy: path}
	o := proxy.Options{Registry: g.Reg, Logger: slog.New(slog.NewJSONHandler(g.Logs, nil)), Version: "test", NoHealthChecks: true}
	for _, f := range opts {
		f(&o)
	}
	srv, err := proxy.New(load, o)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	g.Srv = srv
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.URL = "http://" + pub.Addr().String() + "/v1"
	g.Admin = "http://" + adm.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pub, adm) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return g
}

// counter sums the samples of a counter family whose labels include all
// of match.
func (g *gateway) counter(t testing.TB, name string, match map[string]string) float64 {
	t.Helper()
	families, err := g.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelsMatch(m, match) {
				switch {
				case m.Counter != nil:
					sum += m.Counter.GetValue()
				case m.Gauge != nil:
					sum += m.Gauge.GetValue()
				}
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, match map[string]string) bool {
	for k, v := range match {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// mockPolicy serves the three demo models from the built-in mock provider,
// with a small body limit so oversize bodies are cheap to test.
func mockPolicy(extra string) string {
	return strings.TrimSpace(`
server:
  max_body_bytes: 64KiB
providers:
  - id: mock
    type: mock
    mock:
      chunks: 4
models:
  - id: gpt-4o-mini
    targets: [{provider: mock}]
  - id: gpt-4o
    targets: [{provider: mock}]
  - id: text-embedding-3-small
    type: embedding
    targets: [{provider: mock}]
orgs:
  - id: demo
    models: ["*"]
keys:
  - id: demo
    org: demo
    sha256: c7b51ef2e45c5f05cefec08758a05482886576bee37a4eb2294eb7bcc3923d82
`) + "\n" + extra
}

// digest is the policy form of a key.
func digest(key string) string { return auth.Digest(key) }
