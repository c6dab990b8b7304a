package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aigw/aigw/providers/anthropic"
	"github.com/aigw/aigw/providers/llm"
	"github.com/aigw/aigw/providers/openai"
	"github.com/aigw/aigw/providers/sse"
)

// nopBody is an upstream body read from memory.
type nopBody struct{ *bytes.Reader }

func (nopBody) Close() error { return nil }

func openAIStream(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", i)
	}
	b.WriteString("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n")
	b.WriteString("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":64,\"total_tokens\":69}}\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

func anthropicStream(n int) []byte {
	var b bytes.Buffer
	ev := func(name, data string) { b.Write(sse.AppendEvent(nil, []byte(name), []byte(data))) }
	ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"usage":{"input_tokens":5,"output_tokens":1}}}`)
	ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	for i := 0; i < n; i++ {
		ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"tok%d "}}`, i))
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":64}}`)
	ev("message_stop", `{"type":"message_stop"}`)
	return b.Bytes()
}

// benchPump relays a recorded 64-chunk stream through the real pump into
// a discarding client, and reports allocations per upstream event.
func benchPump(b *testing.B, t *Target, body []byte, events int) {
	s := &Server{opts: Options{Now: time.Now}, metrics: NewMetrics(prometheus.NewRegistry(), "bench")}
	req := &llm.Request{Model: "m", Stream: true}
	w := bufio.NewWriterSize(io.Discard, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := &exchange{s: s, start: time.Now(), id: "req_1"}
		in := &llm.Inbound{Status: 200, Body: nopBody{bytes.NewReader(body)}}
		j := s.newStreamJob(x, t, req, in)
		if e := j.prime(); e != nil {
			b.Fatal(e)
		}
		cw := &clientWriter{w: w}
		end, e := j.relay(cw)
		if e != nil {
			b.Fatal(e)
		}
		if err := cw.write(end); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	allocs := testing.AllocsPerRun(20, func() {
		x := &exchange{s: s, start: time.Now(), id: "req_1"}
		in := &llm.Inbound{Status: 200, Body: nopBody{bytes.NewReader(body)}}
		j := s.newStreamJob(x, t, req, in)
		_ = j.prime()
		cw := &clientWriter{w: w}
		end, _ := j.relay(cw)
		_ = cw.write(end)
	})
	b.ReportMetric(allocs/float64(events), "allocs/event")
}

// BenchmarkPumpPassThrough: OpenAI upstream to OpenAI client, the
// pass-through path.
func BenchmarkPumpPassThrough(b *testing.B) {
	t := &Target{Target: llm.Target{Provider: "openai", Type: "openai", Model: "m"},
		adapter: adapt[*openai.StreamDecoder](openai.Adapter{}), openAIWire: true}
	benchPump(b, t, openAIStream(64), 68)
}

// BenchmarkPumpTranslated: Anthropic upstream to OpenAI client.
func BenchmarkPumpTranslated(b *testing.B) {
	t := &Target{Target: llm.Target{Provider: "anthropic", Type: "anthropic", Model: "claude"},
		adapter: adapt[*anthropic.StreamDecoder](anthropic.Adapter{})}
	benchPump(b, t, anthropicStream(64), 69)
}
