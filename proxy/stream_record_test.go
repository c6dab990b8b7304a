package proxy_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/accounting/ledger"
	"github.com/aigw/aigw/providers/providertest/fakeanthropic"
	"github.com/aigw/aigw/providers/providertest/fakegemini"
	"github.com/aigw/aigw/providers/providertest/fakeopenai"
	"github.com/aigw/aigw/proxy"
)

// gatedLedger holds every Append until the test releases it, and says
// which request is being appended.
type gatedLedger struct {
	appending chan string
	release   chan struct{}
}

func (l *gatedLedger) Append(_ context.Context, recs ...ledger.Record) error {
	for _, r := range recs {
		l.appending <- r.RequestID
	}
	<-l.release
	return nil
}

// TestStreamEndWaitsForRecord: the end of a stream ([DONE] for OpenAI
// clients, message_stop for Anthropic ones) reaches the client only after
// the request's usage record was appended (the ledger's Append returns
// once the record is fsynced), so a crash cannot lose the record of a
// stream whose client saw it end. The content before the end is not held.
func TestStreamEndWaitsForRecord(t *testing.T) {
	oa := fakeopenai.New(t, fakeopenai.WithChunks(4), fakeopenai.WithAPIKey(openAIUpstreamKey))
	an := fakeanthropic.New(t, fakeanthropic.WithAPIKey(anthropicUpstreamKey))
	ge := fakegemini.New(t, fakegemini.WithAPIKey(geminiUpstreamKey))
	led := &gatedLedger{appending: make(chan string, 4), release: make(chan struct{})}
	example, err := os.ReadFile("../configs/examples/multi-provider.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, string(example), map[string]string{
		"OPENAI_BASE_URL": oa.URL(), "OPENAI_API_KEY": openAIUpstreamKey,
		"ANTHROPIC_BASE_URL": an.URL(), "ANTHROPIC_API_KEY": anthropicUpstreamKey,
		"GEMINI_BASE_URL": ge.URL(), "GEMINI_API_KEY": geminiUpstreamKey,
	}, func(o *proxy.Options) { o.Ledger, o.Prices = led, shippedTable(t) })

	const question = `"messages":[{"role":"user","content":"Which vows?"}]`
	cases := []struct {
		name, path, body, end string
	}{
		{"openai pass-through", "/chat/completions", `{"model":"gpt-4o-mini","stream":true,` + question + `}`, "data: [DONE]"},
		{"openai with usage", "/chat/completions", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},` + question + `}`, "data: [DONE]"},
		{"anthropic translated", "/chat/completions", `{"model":"claude-haiku-4-5","stream":true,` + question + `}`, "data: [DONE]"},
		{"gemini translated", "/chat/completions", `{"model":"gemini-2.0-flash","stream":true,` + question + `}`, "data: [DONE]"},
		{"anthropic native", "/messages", `{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,` + question + `}`, "event: message_stop"},
		{"native from openai", "/messages", `{"model":"gpt-4o-mini","max_tokens":64,"stream":true,` + question + `}`, "event: message_stop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := newRequest(http.MethodPost, g.URL+c.path, demoKey, c.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			lines := make(chan string, 256)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if l := sc.Text(); l != "" {
						lines <- l
					}
				}
			}()
			select {
			case id := <-led.appending:
				if id != resp.Header.Get("x-request-id") {
					t.Fatalf("appending %s, answering %s", id, resp.Header.Get("x-request-id"))
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no record appended")
			}
			// While the record is being appended the client has the
			// content but not the end.
			var before []string
			for wait := time.After(200 * time.Millisecond); ; {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("stream closed before the record was appended: %q", before)
					}
					before = append(before, l)
					continue
				case <-wait:
				}
				break
			}
			content := 0
			for _, l := range before {
				if l == c.end {
					t.Fatalf("client saw %q before the record was appended", c.end)
				}
				if strings.HasPrefix(l, "data: ") {
					content++
				}
			}
			if content == 0 {
				t.Fatalf("no content reached the client while the record was appended: %q", before)
			}
			led.release <- struct{}{}
			var after []string
			for l := range lines {
				after = append(after, l)
			}
			if !slices.Contains(after, c.end) {
				t.Fatalf("after the record: %q, want %q among them", after, c.end)
			}
		})
	}
}
