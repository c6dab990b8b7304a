package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/providertest/fakeanthropic"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
)

// translatedPolicy routes "passthrough" to an OpenAI upstream and
// "translated" to an Anthropic one.
func translatedPolicy() string {
	return `
providers:
  - id: openai
    type: openai
    base_url: ${OPENAI}
  - id: claude
    type: anthropic
    base_url: ${ANTHROPIC}
    api_key: sk-ant-test
models:
  - id: passthrough
    targets: [{provider: openai, model: gpt-4o-mini}]
  - id: translated
    targets: [{provider: claude, model: claude-haiku-4-5, max_tokens: 256}]
orgs: [{id: demo, models: ["*"]}]
keys: [{id: demo, org: demo, sha256: ` + digest(demoKey) + `}]
`
}

// TestTranslatedStreamIsNotBuffered: an Anthropic upstream sends its
// first text delta and then waits; the OpenAI client must receive that
// text as a chat.completion.chunk before the upstream sends anything else.
func TestTranslatedStreamIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		ev := func(name, data string) {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
			w.(http.Flusher).Flush()
		}
		ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}`)
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"first"}}`)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
			return
		}
		ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" second"}}`)
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}`)
		ev("message_stop", `{"type":"message_stop"}`)
	}))
	defer upstream.Close()
	g := startGateway(t, translatedPolicy(), map[string]string{"OPENAI": "http://127.0.0.1:1/v1", "ANTHROPIC": upstream.URL})

	req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions",
		strings.NewReader(`{"model":"translated","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+demoKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var seen []string
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, `"content":"first"`) {
				got <- "first"
			}
			seen = append(seen, line)
		}
		got <- strings.Join(seen, "\n")
	}()
	select {
	case s := <-got:
		if s != "first" {
			t.Fatalf("stream ended before its first text: %s", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first text delta did not reach the client before the upstream's next event: the translated stream is buffered")
	}
	close(release)
	if rest := <-got; !strings.Contains(rest, `" second"`) || !strings.HasSuffix(strings.TrimSpace(rest), "data: [DONE]") {
		t.Fatalf("rest of the stream: %s", rest)
	}
}

// BenchmarkTranslatedStream measures, in the same run, streams of 64
// upstream chunks (the fakes merge them into at most one per word of their
// reply) through the gateway from an OpenAI upstream (pass-through) and
// from an Anthropic one (translated to OpenAI chunks), alternating:
// time to the first content byte at the client and total time, and what
// translation adds (p50, µs; per event, ns).
//
//	go test -run '^$' -bench TranslatedStream -benchtime 1000x ./proxy/
func BenchmarkTranslatedStream(b *testing.B) {
	oa := fakeopenai.New(b, fakeopenai.WithStream(64, 0))
	an := fakeanthropic.New(b, fakeanthropic.WithChunks(64), fakeanthropic.WithAPIKey("sk-ant-test"))
	g := startGateway(b, translatedPolicy(), map[string]string{"OPENAI": oa.URL(), "ANTHROPIC": an.URL()})
	client := &http.Client{}
	var lastEvents int
	stream := func(model string) (ttfb, total time.Duration) {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/chat/completions",
			strings.NewReader(`{"model":"`+model+`","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+demoKey)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		events := 0
		for sc.Scan() {
			line := sc.Text()
			if ttfb == 0 && strings.Contains(line, `"content":"`) {
				ttfb = time.Since(start)
			}
			if strings.HasPrefix(line, "data: ") {
				events++
			}
		}
		lastEvents = events
		if resp.StatusCode != 200 || events < 8 || ttfb == 0 {
			b.Fatalf("%s: status %d, %d events", model, resp.StatusCode, events)
		}
		return ttfb, time.Since(start)
	}
	stream("passthrough")
	stream("translated")
	var pt, tt, ptTotal, ttTotal []time.Duration
	b.ResetTimer()
	for b.Loop() {
		a, at := stream("passthrough")
		c, ct := stream("translated")
		pt, ptTotal = append(pt, a), append(ptTotal, at)
		tt, ttTotal = append(tt, c), append(ttTotal, ct)
	}
	b.StopTimer()
	p50 := func(v []time.Duration) float64 {
		slices.Sort(v)
		return float64(v[len(v)/2].Nanoseconds())
	}
	b.ReportMetric(p50(pt)/1e3, "µs-ttfb-passthrough")
	b.ReportMetric(p50(tt)/1e3, "µs-ttfb-translated")
	b.ReportMetric((p50(tt)-p50(pt))/1e3, "µs-ttfb-added")
	b.ReportMetric((p50(ttTotal)-p50(ptTotal))/float64(lastEvents), "ns/event-added")
	b.ReportMetric(float64(lastEvents), "events/stream")
}
