package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// A client that stops reading a stream must not hold the gateway's writer
// (and the upstream request) forever: the per-write deadline ends the
// stream, the upstream request is canceled, and the exchange is recorded.
func TestStalledStreamClientIsCut(t *testing.T) {
	// 16 MiB of answer in 10 KiB chunks: far more than the loopback
	// socket buffers hold, so the gateway's writes block.
	fake := fakeopenai.New(t, fakeopenai.WithReply(strings.Repeat("x", 16<<20)), fakeopenai.WithChunks(1600))
	g := startGateway(t, openAIPolicy(""), map[string]string{
		"OPENAI_BASE_URL": fake.URL(),
		"OPENAI_API_KEY":  "sk-upstream-secret",
	}, func(o *proxy.Options) { o.WriteTimeout = 300 * time.Millisecond })

	addr := strings.TrimSuffix(strings.TrimPrefix(g.URL, "http://"), "/v1")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"long"}]}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, demoKey, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Stop reading. Within a few write timeouts the gateway gives up.
	start := time.Now()
	waitFor(t, func() bool { return fake.Canceled() == 1 })
	waitFor(t, func() bool {
		return g.counter(t, "aigw_errors_total", map[string]string{"kind": "canceled"}) == 1
	})
	t.Logf("upstream canceled %v after the client stopped reading", time.Since(start).Round(time.Millisecond))
}
