package proxy_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/providertest/fakeopenai"
)

func TestClientRequestIDEchoed(t *testing.T) {
	g := startGateway(t, mockPolicy(""), nil)
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+demoKey)
	req.Header.Set("X-Request-Id", "client-abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("x-request-id"); got != "client-abc-123" {
		t.Fatalf("x-request-id = %q, want the client's", got)
	}
	if !strings.Contains(g.Logs.String(), `"client_request_id":"client-abc-123"`) {
		t.Fatal("the log line does not carry the client's request id")
	}
	if strings.Contains(g.Logs.String(), `"request_id":"client-abc-123"`) {
		t.Fatal("the log line's request_id is the client's, not the gateway's")
	}
	if strings.Contains(g.Logs.String(), demoKey) || strings.Contains(g.Logs.String(), `"hi"`) {
		t.Fatal("the log contains the key or the prompt")
	}
}

func TestAdminEndpoints(t *testing.T) {
	g := startGateway(t, mockPolicy(""), nil)
	postJSON(t, g.URL+"/chat/completions", demoKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`} {
		resp, err := http.Get(g.Admin + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	resp, err := http.Get(g.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"aigw_requests_total", "aigw_request_duration_seconds", "aigw_upstream_ttfb_seconds",
		"aigw_tokens_total", "aigw_requests_in_flight", "aigw_active_streams", "aigw_build_info", "aigw_panics_total"} {
		if !strings.Contains(string(b), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// The public listener does not serve admin paths.
	if r := postJSON(t, g.URL+"/../metrics", demoKey, ``); r.status != 404 {
		t.Errorf("public /metrics: %d", r.status)
	}
}

func TestReloadSwapsSnapshotAndKeepsOldOnError(t *testing.T) {
	g := startGateway(t, mockPolicy(""), nil)
	gen := g.Srv.Runtime().Generation
	// A good change: a new model appears.
	good := mockPolicy("") + "  - id: extra\n    org: demo\n    sha256: " + digest("sk-extra") + "\n"
	if err := os.WriteFile(g.policy, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(g.Admin+"/admin/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || g.Srv.Runtime().Generation == gen {
		t.Fatalf("reload: status %d, generation %d -> %d", resp.StatusCode, gen, g.Srv.Runtime().Generation)
	}
	if r := postJSON(t, g.URL+"/chat/completions", "sk-extra", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`); r.status != 200 {
		t.Fatalf("new key after reload: %d %s", r.status, r.body)
	}
	// A bad change is refused; the running config stays.
	gen = g.Srv.Runtime().Generation
	if err := os.WriteFile(g.policy, []byte("providers: [oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Post(g.Admin+"/admin/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 422 || !strings.Contains(string(b), "policy.yaml:") {
		t.Fatalf("bad reload: %d %s", resp.StatusCode, b)
	}
	if g.Srv.Runtime().Generation != gen {
		t.Fatal("a bad file replaced the running configuration")
	}
	if r := postJSON(t, g.URL+"/chat/completions", "sk-extra", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`); r.status != 200 {
		t.Fatalf("after a bad reload: %d", r.status)
	}
}

// TestShutdownLetsStreamsFinish starts a slow stream, asks the gateway to
// shut down, and checks the stream still completes while new connections
// are refused.
func TestShutdownLetsStreamsFinish(t *testing.T) {
	fake := fakeopenai.New(t, fakeopenai.WithStream(20, 25*time.Millisecond))
	g := startGateway(t, openAIPolicy(""), map[string]string{"OPENAI_BASE_URL": fake.URL(), "OPENAI_API_KEY": "k"})
	c := sdk(g, demoKey)
	st := c.Chat.Completions.NewStreaming(context.Background(), userMsg("slow"))
	if !st.Next() {
		t.Fatalf("no first chunk: %v", st.Err())
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- g.Srv.Shutdown(ctx)
	}()
	n := 1
	finish := false
	for st.Next() {
		n++
		for _, ch := range st.Current().Choices {
			finish = finish || ch.FinishReason != ""
		}
	}
	if err := st.Err(); err != nil || !finish {
		t.Fatalf("stream cut by shutdown after %d chunks: %v", n, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(g.URL + "/models"); err == nil {
		t.Fatal("the gateway still accepts connections after shutdown")
	}
}

// TestStreamFailsOverBeforeFirstContent: a stream that dies after its
// role-only frame has said nothing yet, so the gateway moves to the next
// target and the client sees one clean stream.
func TestStreamFailsOverBeforeFirstContent(t *testing.T) {
	primary := fakeopenai.New(t)
	secondary := fakeopenai.New(t, fakeopenai.WithReply("from the secondary"))
	primary.SetFault(fakeopenai.Fault{AbortAfter: 1})
	policy := `
providers:
  - id: primary
    type: openai
    base_url: ${PRIMARY}
  - id: secondary
    type: openai
    base_url: ${SECONDARY}
models:
  - id: gpt-4o-mini
    targets: [{provider: primary}, {provider: secondary}]
orgs:
  - id: demo
    models: ["*"]
keys:
  - id: demo
    org: demo
    sha256: ` + digest(demoKey) + "\n"
	g := startGateway(t, policy, map[string]string{"PRIMARY": primary.URL(), "SECONDARY": secondary.URL()})
	chunks, text := streamChunks(t, sdk(g, demoKey), userMsg("hi"))
	checkStreamShape(t, chunks)
	if text != "from the secondary" {
		t.Fatalf("text %q", text)
	}
	if len(primary.Requests()) != 1 || len(secondary.Requests()) != 1 {
		t.Fatalf("primary saw %d, secondary %d requests", len(primary.Requests()), len(secondary.Requests()))
	}
	// After content, a broken stream is never replayed: it ends with an
	// error event.
	secondary.SetFault(fakeopenai.Fault{AbortAfter: 3})
	primary.SetFault(fakeopenai.Fault{Status: 503})
	c := sdk(g, demoKey)
	st := c.Chat.Completions.NewStreaming(context.Background(), userMsg("hi"))
	for st.Next() {
	}
	if st.Err() == nil {
		t.Fatal("a stream broken after content ended without an error")
	}
	if n := len(secondary.Requests()); n != 2 {
		t.Fatalf("secondary saw %d requests; a committed stream must not be retried", n)
	}
}

func TestOversizeHeaders(t *testing.T) {
	g := startGateway(t, mockPolicy(""), nil)
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+demoKey)
	req.Header.Set("X-Big", strings.Repeat("a", 70<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 431 || !isOpenAIError(b) {
		t.Fatalf("oversize headers: %d %s", resp.StatusCode, b)
	}
}
