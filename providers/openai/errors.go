package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aigw/aigw/providers/llm"
)

// maxRetryAfter bounds an upstream's Retry-After hint, so that a hostile or
// broken value cannot overflow a time.Duration or park a client for days.
const maxRetryAfter = 24 * time.Hour

// wireError is OpenAI's error object: {"message","type","param","code"}.
// param and code are strings or null; some compatible servers send numbers.
type wireError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    json.RawMessage `json:"code"`
}

// wireErrorBody is an error answer. Besides OpenAI's {"error":{...}} it
// accepts what compatible servers send: {"error":"text"}, {"message":...}
// and FastAPI's {"detail":"text"}.
type wireErrorBody struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Detail  json.RawMessage `json:"detail"`
}

// scalar returns a JSON string's value or a number's text; "" otherwise.
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw)
	}
	return ""
}

// parseError extracts message, type, param and code from an error body.
// ok is false when the body is not JSON of a recognised shape.
func parseError(body []byte) (w wireError, ok bool) {
	var b wireErrorBody
	if json.Unmarshal(body, &b) != nil {
		return w, false
	}
	e := bytes.TrimSpace(b.Error)
	switch {
	case len(e) > 0 && e[0] == '{':
		if json.Unmarshal(e, &w) != nil {
			return w, false
		}
		return w, true
	case len(e) > 0 && e[0] == '"':
		w.Message = scalar(e)
		return w, true
	case b.Message != "":
		w.Message, w.Type = b.Message, b.Type
		return w, true
	case len(b.Detail) > 0:
		if w.Message = scalar(b.Detail); w.Message == "" {
			w.Message = string(b.Detail)
		}
		return w, true
	}
	return w, false
}

// classify implements Adapter.ClassifyError, documented there.
func classify(status int, header func(key string) string, body []byte) *llm.Error {
	w, ok := parseError(body)
	e := &llm.Error{Status: status, Msg: w.Message, Param: scalar(w.Param), Code: scalar(w.Code)}
	if status >= 200 && status < 300 {
		e.Status = 0
		e.Kind, e.Retryable = kindOfType(w.Type, e.Code)
	} else {
		e.Kind, e.Retryable = kindOfStatus(status, w.Type, e.Code, w.Message)
	}
	if !ok {
		e.Err = bodyError(body)
	}
	if e.Msg == "" {
		e.Msg = defaultMessage(e.Kind, status)
	}
	if header != nil {
		switch strings.ToLower(strings.TrimSpace(header("X-Should-Retry"))) {
		case "true":
			e.Retryable = true
		case "false":
			e.Retryable = false
		}
		e.RetryAfter = retryAfter(header)
	}
	return e
}

func isQuota(typ, code string) bool {
	return code == "insufficient_quota" || typ == "insufficient_quota"
}

func kindOfStatus(status int, typ, code, msg string) (llm.Kind, bool) {
	switch status {
	case 400:
		if code == "context_length_exceeded" ||
			code == "" && strings.Contains(strings.ToLower(msg), "maximum context length") {
			return llm.KindContextLength, false
		}
		return llm.KindInvalidRequest, false
	case 401:
		return llm.KindAuth, false
	case 403:
		return llm.KindPermission, false
	case 404:
		return llm.KindNotFound, false
	case 408:
		return llm.KindTimeout, true
	case 413:
		return llm.KindTooLarge, false
	case 429:
		if isQuota(typ, code) {
			return llm.KindQuotaExceeded, false
		}
		return llm.KindRateLimit, true
	case 500, 502:
		return llm.KindUpstream, true
	case 503:
		return llm.KindUnavailable, true
	case 504:
		return llm.KindTimeout, true
	case 529:
		return llm.KindOverloaded, true
	}
	switch {
	case status >= 500:
		return llm.KindUpstream, true
	case status >= 400:
		return llm.KindInvalidRequest, false
	}
	return llm.KindUpstream, true
}

// kindOfType classifies an error that came without a meaningful status (in a
// 2xx body or a stream) by OpenAI's error type and code.
func kindOfType(typ, code string) (llm.Kind, bool) {
	switch {
	case isQuota(typ, code):
		return llm.KindQuotaExceeded, false
	case code == "context_length_exceeded":
		return llm.KindContextLength, false
	case code == "rate_limit_exceeded" || typ == "rate_limit_error" || typ == "requests" || typ == "tokens":
		return llm.KindRateLimit, true
	case code == "invalid_api_key" || typ == "authentication_error":
		return llm.KindAuth, false
	case typ == "permission_error" || typ == "permission_denied":
		return llm.KindPermission, false
	case code == "model_not_found" || typ == "not_found_error":
		return llm.KindNotFound, false
	case typ == "invalid_request_error":
		return llm.KindInvalidRequest, false
	case typ == "overloaded_error":
		return llm.KindOverloaded, true
	case typ == "timeout" || code == "timeout":
		return llm.KindTimeout, true
	}
	// server_error, api_error and anything unknown.
	return llm.KindUpstream, true
}

func defaultMessage(k llm.Kind, status int) string {
	if status >= 300 {
		return "The upstream server answered with HTTP status " + strconv.Itoa(status) + "."
	}
	if k == llm.KindUpstream {
		return "The upstream server reported an error."
	}
	return "The upstream server reported an error (" + k.String() + ")."
}

// bodyError keeps the start of an unparseable body for logs.
type bodyError []byte

func (b bodyError) Error() string {
	const max = 256
	s := b
	if len(s) > max {
		s = s[:max]
		for len(s) > 0 && !utf8.Valid(s) {
			s = s[:len(s)-1]
		}
		return "upstream error body (truncated): " + strconv.Quote(string(s))
	}
	return "upstream error body: " + strconv.Quote(string(s))
}

func retryAfter(header func(string) string) time.Duration {
	if v := strings.TrimSpace(header("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return clampRetry(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(header("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 {
			return clampRetry(s * float64(time.Second))
		}
		return 0
	}
	// An HTTP date (RFC 9110 §5.6.7): IMF-fixdate, or the obsolete forms.
	for _, layout := range []string{time.RFC1123, time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, v); err == nil {
			if d := time.Until(t); d > 0 {
				return clampRetry(float64(d))
			}
			return 0
		}
	}
	return 0
}

func clampRetry(ns float64) time.Duration {
	if ns > float64(maxRetryAfter) {
		return maxRetryAfter
	}
	return time.Duration(ns)
}
