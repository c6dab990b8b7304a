package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aigw/aigw/providers/llm"
)

func TestClassifyErrorFixtures(t *testing.T) {
	cases := []struct {
		file      string
		status    int
		kind      llm.Kind
		retryable bool
		code      string
		param     string
		msgPrefix string
	}{
		{"401_invalid_api_key", 401, llm.KindAuth, false, "invalid_api_key", "", "Incorrect API key provided"},
		{"429_rate_limit", 429, llm.KindRateLimit, true, "rate_limit_exceeded", "", "Rate limit reached"},
		{"429_insufficient_quota", 429, llm.KindQuotaExceeded, false, "insufficient_quota", "", "You exceeded your current quota"},
		{"400_context_length", 400, llm.KindContextLength, false, "context_length_exceeded", "messages", "This model's maximum context length"},
		{"400_context_length_vllm", 400, llm.KindContextLength, false, "", "", "This model's maximum context length"},
		{"404_model_not_found", 404, llm.KindNotFound, false, "model_not_found", "", "The model `gpt-5-turbo`"},
		{"400_invalid_value", 400, llm.KindInvalidRequest, false, "invalid_value", "messages[0].role", "Invalid value: 'robot'"},
		{"500_server_error", 500, llm.KindUpstream, true, "", "", "The server had an error"},
		{"500_server_error", 502, llm.KindUpstream, true, "", "", "The server had an error"},
		{"503_overloaded", 503, llm.KindUnavailable, true, "", "", "That model is currently overloaded"},
		{"500_server_error", 504, llm.KindTimeout, true, "", "", "The server had an error"},
		{"529_overloaded", 529, llm.KindOverloaded, true, "", "", "Overloaded"},
		{"500_server_error", 599, llm.KindUpstream, true, "", "", "The server"},
		{"403_unsupported_region", 403, llm.KindPermission, false, "unsupported_country_region_territory", "", "Country, region"},
		{"502_html", 502, llm.KindUpstream, true, "", "", "The upstream server answered with HTTP status 502."},
		{"502_html", 413, llm.KindTooLarge, false, "", "", "The upstream server answered with HTTP status 413."},
		{"503_empty", 503, llm.KindUnavailable, true, "", "", "The upstream server answered with HTTP status 503."},
		{"404_detail_string", 404, llm.KindNotFound, false, "", "", "Not Found"},
		{"404_ollama_error_string", 404, llm.KindNotFound, false, "", "", "model 'llama9' not found"},
		{"400_invalid_value", 422, llm.KindInvalidRequest, false, "invalid_value", "messages[0].role", "Invalid value"},
		{"500_server_error", 408, llm.KindTimeout, true, "", "", "The server"},
	}
	for _, c := range cases {
		body := errorBody(t, c.file)
		err := Adapter{}.ClassifyError(c.status, func(string) string { return "" }, body)
		var e *llm.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v is not *llm.Error", c.file, err)
		}
		if e.Kind != c.kind || e.Retryable != c.retryable || e.Code != c.code || e.Param != c.param ||
			e.Status != c.status || e.Provider != "" || !strings.HasPrefix(e.Msg, c.msgPrefix) {
			t.Errorf("%s/%d: got kind=%v retryable=%v code=%q param=%q status=%d msg=%q", c.file, c.status,
				e.Kind, e.Retryable, e.Code, e.Param, e.Status, e.Msg)
		}
		if strings.Contains(e.Msg, "<html>") {
			t.Errorf("%s: HTML shown to the client", c.file)
		}
	}
	// The unparseable body is kept for logs.
	e := classify(502, nil, errorBody(t, "502_html"))
	if e.Err == nil || !strings.Contains(e.Err.Error(), "502 Bad Gateway") {
		t.Fatalf("Err = %v", e.Err)
	}
	e = classify(500, nil, []byte(strings.Repeat("é", 1000)))
	if s := e.Err.Error(); len(s) > 400 || !strings.Contains(s, "truncated") {
		t.Fatalf("Err = %q", s)
	}
}

// errorBody returns the body of testdata/errors/NAME.json, a providertest
// error fixture: {"status","header","body"}, body verbatim when a string.
func errorBody(t *testing.T, name string) []byte {
	t.Helper()
	var fx struct{ Body json.RawMessage }
	if err := json.Unmarshal(readFile(t, "errors/"+name+".json"), &fx); err != nil {
		t.Fatal(err)
	}
	var s string
	if json.Unmarshal(fx.Body, &s) == nil {
		return []byte(s)
	}
	return fx.Body
}

func hdr(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestClassifyRetryHeaders(t *testing.T) {
	body := errorBody(t, "429_rate_limit")
	cases := []struct {
		h    func(string) string
		want time.Duration
	}{
		{hdr(), 0},
		{hdr("Retry-After", "7"), 7 * time.Second},
		{hdr("Retry-After", "1.5"), 1500 * time.Millisecond},
		{hdr("Retry-After", "-3"), 0},
		{hdr("Retry-After", "soon"), 0},
		{hdr("Retry-After", "20", "Retry-After-Ms", "250"), 250 * time.Millisecond},
		{hdr("Retry-After", "20", "Retry-After-Ms", "x"), 20 * time.Second},
		{hdr("Retry-After", "99999999999999"), maxRetryAfter},
		{hdr("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"), 0},
	}
	for i, c := range cases {
		e := classify(429, c.h, body)
		if e.RetryAfter != c.want {
			t.Errorf("case %d: RetryAfter = %v, want %v", i, e.RetryAfter, c.want)
		}
	}
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	if d := classify(503, hdr("Retry-After", future), nil).RetryAfter; d < 80*time.Second || d > 91*time.Second {
		t.Errorf("HTTP date %s: %v", future, d)
	}
	if e := classify(429, hdr("X-Should-Retry", "false"), body); e.Retryable {
		t.Error("x-should-retry: false ignored")
	}
	if e := classify(400, hdr("X-Should-Retry", "true"), nil); !e.Retryable || e.Kind != llm.KindInvalidRequest {
		t.Error("x-should-retry: true ignored")
	}
	if e := classify(429, nil, body); e.Kind != llm.KindRateLimit {
		t.Error("nil header func")
	}
}

func TestClassifyByType(t *testing.T) {
	cases := map[string]llm.Kind{
		`{"error":{"message":"m","type":"server_error"}}`:                                           llm.KindUpstream,
		`{"error":{"message":"m","type":"invalid_request_error"}}`:                                  llm.KindInvalidRequest,
		`{"error":{"message":"m","type":"invalid_request_error","code":"context_length_exceeded"}}`: llm.KindContextLength,
		`{"error":{"message":"m","type":"tokens","code":"rate_limit_exceeded"}}`:                    llm.KindRateLimit,
		`{"error":{"message":"m","type":"insufficient_quota"}}`:                                     llm.KindQuotaExceeded,
		`{"error":{"message":"m","type":"invalid_request_error","code":"invalid_api_key"}}`:         llm.KindAuth,
		`{"error":{"message":"m","code":"model_not_found"}}`:                                        llm.KindNotFound,
		`{"error":{"message":"m","type":"overloaded_error"}}`:                                       llm.KindOverloaded,
		`{"error":{"message":"m","type":"whatever","code":42}}`:                                     llm.KindUpstream,
	}
	for body, want := range cases {
		e := classify(200, nil, []byte(body))
		if e.Kind != want || e.Status != 0 {
			t.Errorf("%s: kind %v status %d, want %v", body, e.Kind, e.Status, want)
		}
	}
	if e := classify(200, nil, []byte(`{"error":{"message":"m","code":42}}`)); e.Code != "42" {
		t.Errorf("numeric code: %q", e.Code)
	}
}
