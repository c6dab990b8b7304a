package main

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// streamChunks is the number of content chunks in every streamed answer.
const streamChunks = 64

// fakeUpstream is the fast, fake OpenAI server every scenario ends at. All
// answers are precomputed so that it costs as little as possible: it must
// never be the bottleneck of what is measured.
type fakeUpstream struct {
	completion []byte   // non-stream chat.completion JSON
	events     [][]byte // streamChunks content events, then the finish event
	usage      []byte   // usage event (choices: []), sent when asked for
	done       []byte   // data: [DONE]
	models     []byte
	notFound   []byte
}

func newFakeUpstream() *fakeUpstream {
	u := &fakeUpstream{
		completion: []byte(`{"id":"chatcmpl-bench0001","object":"chat.completion","created":1700000000,` +
			`"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",` +
			`"content":"Hello! How can I assist you today?","refusal":null},"logprobs":null,` +
			`"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18,` +
			`"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},` +
			`"service_tier":"default","system_fingerprint":"fp_bench"}`),
		done:     []byte("data: [DONE]\n\n"),
		models:   []byte(`{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1700000000,"owned_by":"bench"}]}`),
		notFound: []byte(`{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":"not_found"}}`),
	}
	const head = `data: {"id":"chatcmpl-bench0001","object":"chat.completion.chunk","created":1700000000,` +
		`"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_bench","choices":[`
	words := strings.Fields("Hello there , this is a benchmark stream from the fake upstream and every chunk carries one token")
	for i := 0; i < streamChunks; i++ {
		delta := fmt.Sprintf(`{"content":%q}`, " "+words[i%len(words)])
		if i == 0 {
			delta = `{"role":"assistant","content":"Hello","refusal":null}`
		}
		u.events = append(u.events, []byte(head+
			`{"index":0,"delta":`+delta+`,"logprobs":null,"finish_reason":null}]}`+"\n\n"))
	}
	u.events = append(u.events, []byte(head+`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`+"\n\n"))
	u.usage = []byte(head + `],"usage":{"prompt_tokens":9,"completion_tokens":64,"total_tokens":73,` +
		`"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}` + "\n\n")
	return u
}

func (u *fakeUpstream) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case ctx.IsPost() && string(path) == "/v1/chat/completions":
		body := ctx.PostBody()
		if !jsonTrue(body, keyStream) {
			ctx.SetContentType("application/json")
			ctx.SetBody(u.completion)
			return
		}
		withUsage := jsonTrue(body, keyIncludeUsage)
		ctx.SetContentType("text/event-stream")
		ctx.Response.Header.Set("Cache-Control", "no-cache")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			for _, ev := range u.events {
				_, _ = w.Write(ev)
				if w.Flush() != nil {
					return
				}
			}
			if withUsage {
				_, _ = w.Write(u.usage)
				if w.Flush() != nil {
					return
				}
			}
			_, _ = w.Write(u.done)
			_ = w.Flush()
		})
	case ctx.IsGet() && string(path) == "/v1/models":
		ctx.SetContentType("application/json")
		ctx.SetBody(u.models)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("application/json")
		ctx.SetBody(u.notFound)
	}
}

var (
	keyStream       = []byte(`"stream"`)
	keyIncludeUsage = []byte(`"include_usage"`)
)

// jsonTrue reports whether body contains quotedKey: true anywhere. It is a
// cheap scan, not a parser: good enough for the requests of this harness
// and of the gateway under test.
func jsonTrue(body, quotedKey []byte) bool {
	for {
		i := bytes.Index(body, quotedKey)
		if i < 0 {
			return false
		}
		rest := bytes.TrimLeft(body[i+len(quotedKey):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			if bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte("true")) {
				return true
			}
		}
		body = body[i+1:]
	}
}
