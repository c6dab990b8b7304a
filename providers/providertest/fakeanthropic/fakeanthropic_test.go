package fakeanthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"go.uber.org/goleak"

	"github.com/aigw/aigw/providers/providertest/internal/scenario"
)

// TestMain checks that the fake leaves no goroutine behind. The HTTP
// client's own keep-alive loops may still be winding down when the check
// runs (they end when they read the closed server's EOF): they belong to
// the test's client, not to the fake.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}

// client is the official Anthropic SDK pointed at s: if it understands the
// fake, the fake speaks Anthropic's format.
func client(s *Server, key string) sdk.Client {
	return sdk.NewClient(option.WithBaseURL(s.URL()), option.WithAPIKey(key), option.WithMaxRetries(0),
		option.WithRequestTimeout(10*time.Second))
}

var weatherTool = sdk.ToolUnionParam{OfTool: &sdk.ToolParam{
	Name:        "get_weather",
	InputSchema: sdk.ToolInputSchemaParam{Properties: map[string]any{"location": map[string]any{"type": "string"}}},
}}

func params(msgs ...sdk.MessageParam) sdk.MessageNewParams {
	return sdk.MessageNewParams{Model: "claude-haiku-4-5", MaxTokens: 100, Messages: msgs}
}

func TestMessageAndRecording(t *testing.T) {
	s := New(t, WithReply("pong"), WithAPIKey("sk-ant-test"))
	c := client(s, "sk-ant-test")
	msg, err := c.Messages.New(context.Background(), params(sdk.NewUserMessage(sdk.NewTextBlock("ping"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "pong" || msg.StopReason != sdk.StopReasonEndTurn ||
		msg.Model != "claude-haiku-4-5" || !strings.HasPrefix(msg.ID, "msg_") {
		t.Fatalf("message %+v", msg)
	}
	if msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens != int64(scenario.Tokens("pong")) {
		t.Errorf("usage %+v", msg.Usage)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/messages" || reqs[0].Header.Get("x-api-key") != "sk-ant-test" ||
		reqs[0].Header.Get("anthropic-version") == "" || !bytes.Contains(reqs[0].Body, []byte(`"ping"`)) {
		t.Fatalf("recorded %+v", reqs)
	}
	reqs[0].Body[0] = 'X'
	if s.Requests()[0].Body[0] != '{' {
		t.Fatal("Requests shares memory")
	}
}

func TestStreamToolRoundTrip(t *testing.T) {
	s := New(t, WithChunks(3))
	c := client(s, "k")
	p := params(sdk.NewUserMessage(sdk.NewTextBlock("What's the weather in Paris?")))
	p.Tools = []sdk.ToolUnionParam{weatherTool}
	st := c.Messages.NewStreaming(context.Background(), p)
	var msg sdk.Message
	var names []string
	for st.Next() {
		ev := st.Current()
		names = append(names, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	// (The SDK does not surface ping events; TestRawStream sees them.)
	want := "message_start content_block_start content_block_delta content_block_delta content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	if len(msg.Content) != 2 || msg.Content[0].Text != scenario.Preamble || msg.Content[1].Type != "tool_use" ||
		msg.Content[1].Name != "get_weather" || msg.StopReason != sdk.StopReasonToolUse {
		t.Fatalf("message %+v", msg)
	}
	var args, want2 map[string]any
	_ = json.Unmarshal(msg.Content[1].Input, &args)
	_ = json.Unmarshal([]byte(scenario.WeatherArguments), &want2)
	if len(args) != len(want2) || args["location"] != want2["location"] {
		t.Errorf("arguments %s", msg.Content[1].Input)
	}
	if msg.Usage.OutputTokens == 0 || msg.Usage.InputTokens == 0 {
		t.Errorf("usage %+v", msg.Usage)
	}

	// The result goes back with the same id; the answer quotes it.
	id := msg.Content[1].ID
	p.Messages = append(p.Messages, msg.ToParam(), sdk.NewUserMessage(sdk.NewToolResultBlock(id, "21C and sunny", false)))
	final, err := c.Messages.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if final.Content[0].Text != scenario.ToolResultPrefix+"21C and sunny" {
		t.Fatalf("final %+v", final.Content)
	}

	// A tool_result answering an id the previous turn did not use is
	// refused, as Anthropic does.
	p.Messages[2] = sdk.NewUserMessage(sdk.NewToolResultBlock("toolu_other", "x", false))
	_, err = c.Messages.New(context.Background(), p)
	if apiStatus(err) != 400 || !strings.Contains(err.Error(), "tool_use_id") {
		t.Fatalf("mismatched tool_use_id: %v", err)
	}
}

func TestImagesAndValidation(t *testing.T) {
	s := New(t)
	c := client(s, "k")
	msg, err := c.Messages.New(context.Background(), params(sdk.NewUserMessage(
		sdk.NewTextBlock("What is this?"), sdk.NewImageBlockBase64("image/png", "iVBORw0KGgo="))))
	if err != nil || msg.Content[0].Text != "I see 1 image." {
		t.Fatalf("%v %+v", err, msg)
	}
	_, err = c.Messages.New(context.Background(), params(sdk.NewUserMessage(sdk.NewImageBlockBase64("image/tiff", "AAAA"))))
	if apiStatus(err) != 400 {
		t.Fatalf("tiff image: %v", err)
	}
	p := params(sdk.NewUserMessage(sdk.NewTextBlock("x")))
	p.Model = "claude-imaginary"
	_, err = c.Messages.New(context.Background(), p)
	if apiStatus(err) != 404 {
		t.Fatalf("unknown model: %v", err)
	}

	// Raw HTTP: headers and required fields.
	for _, tc := range []struct {
		name, body string
		header     map[string]string
		status     int
		typ        string
	}{
		{"no key", `{}`, map[string]string{"anthropic-version": "2023-06-01"}, 401, "authentication_error"},
		{"no version", `{}`, map[string]string{"x-api-key": "k"}, 400, "invalid_request_error"},
		{"no max_tokens", `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"x"}]}`,
			map[string]string{"x-api-key": "k", "anthropic-version": "2023-06-01"}, 400, "invalid_request_error"},
		{"tool_use unanswered", `{"model":"claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"},` +
			`{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},{"role":"user","content":"y"}]}`,
			map[string]string{"x-api-key": "k", "anthropic-version": "2023-06-01"}, 400, "invalid_request_error"},
	} {
		status, body := post(t, s.URL()+"/v1/messages", tc.body, tc.header)
		var e struct {
			Type  string
			Error struct{ Type, Message string }
		}
		if status != tc.status || json.Unmarshal(body, &e) != nil || e.Type != "error" || e.Error.Type != tc.typ || e.Error.Message == "" {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
}

// TestRawStream checks the SSE framing the SDK hides: event names on every
// frame, the ping, and the message_start usage.
func TestRawStream(t *testing.T) {
	s := New(t, WithReply("ab"), WithChunks(2))
	status, body := post(t, s.URL()+"/v1/messages",
		`{"model":"claude-haiku-4-5","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}`,
		map[string]string{"x-api-key": "k", "anthropic-version": "2023-06-01"})
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var names []string
	for _, frame := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		lines := strings.Split(frame, "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: {") {
			t.Fatalf("frame %q", frame)
		}
		name := strings.TrimPrefix(lines[0], "event: ")
		var head struct{ Type string }
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &head); err != nil || head.Type != name {
			t.Errorf("frame %q: data type %q", frame, head.Type)
		}
		names = append(names, name)
	}
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}

func TestFaults(t *testing.T) {
	s := New(t)
	c := client(s, "k")
	s.SetFault(Fault{Status: 529, RetryAfter: "3", Count: 1})
	_, err := c.Messages.New(context.Background(), params(sdk.NewUserMessage(sdk.NewTextBlock("x"))))
	var e *sdk.Error
	if !errors.As(err, &e) || e.StatusCode != 529 || e.Type() != "overloaded_error" || e.Response.Header.Get("retry-after") != "3" {
		t.Fatalf("529: %v", err)
	}
	// Count 1: the next request is served.
	if _, err := c.Messages.New(context.Background(), params(sdk.NewUserMessage(sdk.NewTextBlock("x")))); err != nil {
		t.Fatal(err)
	}

	// A mid-stream error event after two text deltas.
	s.SetFault(Fault{ErrorAfter: 2})
	st := c.Messages.NewStreaming(context.Background(), params(sdk.NewUserMessage(sdk.NewTextBlock("x"))))
	var text strings.Builder
	for st.Next() {
		if ev := st.Current(); ev.Type == "content_block_delta" {
			text.WriteString(ev.Delta.Text)
		}
	}
	if st.Err() == nil || !strings.Contains(st.Err().Error(), "Overloaded") {
		t.Fatalf("stream error = %v", st.Err())
	}
	if want := strings.Join(scenario.Split(DefaultReply, 4)[:2], ""); text.String() != want {
		t.Errorf("text before the error %q, want %q", text.String(), want)
	}
}

func TestClientGoneCounted(t *testing.T) {
	s := New(t, WithChunks(50), WithChunkInterval(5*time.Millisecond), WithReply(strings.Repeat("word ", 40)))
	ctx, cancel := context.WithCancel(context.Background())
	c := client(s, "k")
	st := c.Messages.NewStreaming(ctx, params(sdk.NewUserMessage(sdk.NewTextBlock("x"))))
	for i := 0; i < 3 && st.Next(); i++ {
	}
	cancel()
	st.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Canceled() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("abandoned stream not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func apiStatus(err error) int {
	var e *sdk.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

func post(t *testing.T, url, body string, header map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
