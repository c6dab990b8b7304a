package anthropic

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aigw/aigw/providers/llm"
)

// ClassifyError turns a non-2xx Messages API answer into an *llm.Error.
//
// Anthropic's error body is {"type":"error","error":{"type","message"}};
// the error type decides the kind, and the status is the fallback when the
// body is not such an object (a proxy's HTML page, an empty body):
//
//	invalid_request_error  400  KindInvalidRequest (KindContextLength when
//	                            the message says the prompt is too long)
//	authentication_error   401  KindAuth
//	billing_error          402  KindQuotaExceeded, retryable elsewhere
//	permission_error       403  KindPermission
//	not_found_error        404  KindNotFound
//	request_too_large      413  KindTooLarge
//	rate_limit_error       429  KindRateLimit, retryable
//	api_error              500  KindUpstream, retryable
//	timeout_error          504  KindTimeout, retryable
//	overloaded_error       529  KindOverloaded, retryable
//
// Msg is Anthropic's message; RetryAfter comes from the Retry-After header
// (seconds or an HTTP date). header may be nil.
func (a Adapter) ClassifyError(status int, header func(key string) string, body []byte) error {
	var w wireError
	var eb *wireErrorBody
	if err := json.Unmarshal(body, &w); err == nil && w.Error != nil && (w.Error.Type != "" || w.Error.Message != "") {
		eb = w.Error
	}
	e := classify(status, eb)
	if eb == nil && len(body) > 0 {
		e.Err = errors.New("body: " + snippet(body, 256))
	}
	if header != nil {
		v := header("Retry-After")
		if v == "" {
			v = header("retry-after")
		}
		e.RetryAfter = parseRetryAfter(v, a.now())
	}
	return e
}

// classify builds the error for an HTTP status (0 for a stream error event)
// and an optional Anthropic error object.
func classify(status int, eb *wireErrorBody) *llm.Error {
	e := &llm.Error{Provider: ProviderName, Status: status}
	typ := ""
	if eb != nil {
		typ = eb.Type
		e.Msg = eb.Message
	}
	switch typ {
	case "invalid_request_error":
		e.Kind = llm.KindInvalidRequest
	case "authentication_error":
		e.Kind = llm.KindAuth
	case "billing_error":
		e.Kind, e.Retryable = llm.KindQuotaExceeded, true
	case "permission_error":
		e.Kind = llm.KindPermission
	case "not_found_error":
		e.Kind = llm.KindNotFound
	case "request_too_large":
		e.Kind = llm.KindTooLarge
	case "rate_limit_error":
		e.Kind, e.Retryable = llm.KindRateLimit, true
	case "api_error":
		e.Kind, e.Retryable = llm.KindUpstream, true
	case "timeout_error":
		e.Kind, e.Retryable = llm.KindTimeout, true
	case "overloaded_error":
		e.Kind, e.Retryable = llm.KindOverloaded, true
	default:
		e.Kind, e.Retryable = kindForStatus(status)
	}
	if e.Kind == llm.KindInvalidRequest && isContextLength(e.Msg) {
		e.Kind = llm.KindContextLength
		e.Code = "context_length_exceeded"
	}
	if e.Msg == "" {
		if status > 0 {
			e.Msg = "anthropic returned status " + strconv.Itoa(status)
		} else {
			e.Msg = "anthropic reported an error"
		}
	}
	return e
}

// kindForStatus classifies an answer whose body named no error type.
func kindForStatus(status int) (llm.Kind, bool) {
	switch {
	case status == 400:
		return llm.KindInvalidRequest, false
	case status == 401:
		return llm.KindAuth, false
	case status == 402:
		return llm.KindQuotaExceeded, true
	case status == 403:
		return llm.KindPermission, false
	case status == 404:
		return llm.KindNotFound, false
	case status == 408 || status == 504:
		return llm.KindTimeout, true
	case status == 409:
		return llm.KindUpstream, true
	case status == 413:
		return llm.KindTooLarge, false
	case status == 429:
		return llm.KindRateLimit, true
	case status == 529 || status == 503:
		return llm.KindOverloaded, true
	case status >= 500:
		return llm.KindUpstream, true
	case status >= 400:
		return llm.KindInvalidRequest, false
	default:
		// Not an HTTP error status at all (0 for a stream error event
		// without a type, or a 1xx-3xx the transport should not pass):
		// treat as an upstream failure.
		return llm.KindUpstream, true
	}
}

// isContextLength recognises Anthropic's "prompt is too long: N tokens > M
// maximum" and "input length and `max_tokens` exceed context limit"
// messages.
func isContextLength(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "prompt is too long") ||
		strings.Contains(m, "exceed context limit") ||
		strings.Contains(m, "context window")
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// It returns 0 for an absent, malformed or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs > 86400 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		if d := t.Sub(now); d > 0 && d <= 24*time.Hour {
			return d.Round(time.Second)
		}
	}
	return 0
}

// snippet returns up to n bytes of b as valid UTF-8, for error causes.
func snippet(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	s := strings.ToValidUTF8(string(b), string(utf8.RuneError))
	return strings.TrimSpace(s)
}

// errorType is Anthropic's error type for a kind.
func errorType(k llm.Kind) string {
	switch k {
	case llm.KindInvalidRequest, llm.KindContextLength:
		return "invalid_request_error"
	case llm.KindAuth:
		return "authentication_error"
	case llm.KindPermission:
		return "permission_error"
	case llm.KindNotFound:
		return "not_found_error"
	case llm.KindTooLarge:
		return "request_too_large"
	case llm.KindRateLimit, llm.KindQuotaExceeded:
		return "rate_limit_error"
	case llm.KindOverloaded, llm.KindUnavailable:
		return "overloaded_error"
	case llm.KindTimeout:
		return "timeout_error"
	default:
		return "api_error"
	}
}

// ErrorStatus is the HTTP status an Anthropic-native client expects for an
// error of kind k: Kind.Status, except 529 for KindOverloaded as Anthropic
// answers it.
func ErrorStatus(k llm.Kind) int {
	if k == llm.KindOverloaded {
		return 529
	}
	return k.Status()
}

// EncodeError appends the Anthropic error body for e to dst:
// {"type":"error","error":{"type":...,"message":...}}, the type chosen by
// e.Kind (invalid_request_error, authentication_error, permission_error,
// not_found_error, request_too_large, rate_limit_error, overloaded_error,
// timeout_error, api_error). The message is e.Msg, or the kind's name when
// e.Msg is empty; e.Err is never written. A nil e is written as an
// api_error.
func EncodeError(dst []byte, e *llm.Error) []byte {
	body := errorBody(e)
	out, err := appendJSON(dst, wireError{Type: "error", Error: &body})
	if err != nil { // unreachable: the value holds strings only
		return append(dst, `{"type":"error","error":{"type":"api_error","message":"internal error"}}`...)
	}
	return out
}

func errorBody(e *llm.Error) wireErrorBody {
	if e == nil {
		return wireErrorBody{Type: "api_error", Message: "internal error"}
	}
	msg := e.Msg
	if msg == "" {
		msg = strings.ReplaceAll(e.Kind.String(), "_", " ")
	}
	return wireErrorBody{Type: errorType(e.Kind), Message: msg}
}
