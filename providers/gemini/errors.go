package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aigw/aigw/providers/llm"
)

// maxRetryAfter caps an upstream retry hint; a longer one is treated as this.
const maxRetryAfter = 24 * time.Hour

// maxMsg caps the upstream message copied into Error.Msg.
const maxMsg = 1024

// ClassifyError turns a non-2xx Gemini answer into an *llm.Error.
//
// Google answers {"error":{"code","message","status","details"}} (a
// google.rpc.Status), sometimes wrapped in a one-element array. The
// canonical status decides the kind; the HTTP status is the fallback for
// bodies that are not JSON (a proxy's HTML page) or carry no status:
//
//	INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE (400)
//	                           KindInvalidRequest; KindContextLength when the
//	                           message says the input has too many tokens;
//	                           KindAuth when ErrorInfo.reason is
//	                           API_KEY_INVALID (Gemini answers a bad key with 400)
//	UNAUTHENTICATED (401)      KindAuth
//	PERMISSION_DENIED (403)    KindPermission
//	NOT_FOUND (404)            KindNotFound
//	RESOURCE_EXHAUSTED (429)   KindRateLimit, retryable; RetryAfter from the
//	                           RetryInfo detail's retryDelay (e.g. "17s"), else
//	                           from a Retry-After header
//	INTERNAL, UNKNOWN, DATA_LOSS, ABORTED, CANCELLED
//	                           KindUpstream, retryable
//	UNAVAILABLE (503)          KindUnavailable, retryable (KindOverloaded when
//	                           the message says the model is overloaded)
//	DEADLINE_EXCEEDED (504)    KindTimeout, retryable
//
// Msg is Google's message (Google's error messages do not echo the key);
// details, which may quote request data, are never copied into Msg.
// header may be nil.
func (a *Adapter) ClassifyError(status int, header func(key string) string, body []byte) error {
	st, raw := parseStatus(body)
	e := statusError(status, st, raw)
	if e.Kind == llm.KindRateLimit && e.RetryAfter == 0 && header != nil {
		e.RetryAfter = parseRetryAfterHeader(header("Retry-After"))
	}
	return e
}

// parseStatus extracts the google.rpc.Status from an error body. It returns
// nil and a short printable excerpt of the body when there is none.
func parseStatus(body []byte) (*statusBody, string) {
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var arr []errorEnvelope
		if json.Unmarshal(b, &arr) == nil && len(arr) > 0 && arr[0].Error != nil {
			return arr[0].Error, ""
		}
	} else if len(b) > 0 && b[0] == '{' {
		var env errorEnvelope
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			return env.Error, ""
		}
	}
	return nil, excerpt(b, 256)
}

// statusError builds the error for an HTTP status and an optional Google
// status. raw is an excerpt of a body that held no status, kept as the
// (never shown) cause.
func statusError(httpStatus int, st *statusBody, raw string) *llm.Error {
	name, msg := "", ""
	if st != nil {
		name, msg = strings.ToUpper(st.Status), st.Message
		if httpStatus == 0 {
			// An error object inside a 200 stream: report Google's code.
			httpStatus = st.Code
		}
	}
	e := &llm.Error{Provider: ProviderType, Status: httpStatus}

	switch name {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		e.Kind = llm.KindInvalidRequest
	case "UNAUTHENTICATED":
		e.Kind = llm.KindAuth
	case "PERMISSION_DENIED":
		e.Kind = llm.KindPermission
	case "NOT_FOUND":
		e.Kind = llm.KindNotFound
	case "RESOURCE_EXHAUSTED":
		e.Kind = llm.KindRateLimit
	case "INTERNAL", "UNKNOWN", "DATA_LOSS", "ABORTED", "CANCELLED":
		e.Kind = llm.KindUpstream
	case "UNAVAILABLE":
		e.Kind = llm.KindUnavailable
	case "DEADLINE_EXCEEDED":
		e.Kind = llm.KindTimeout
	case "UNIMPLEMENTED":
		e.Kind = llm.KindInvalidRequest
	default:
		e.Kind = kindForHTTP(httpStatus)
	}

	lower := strings.ToLower(msg)
	switch e.Kind {
	case llm.KindInvalidRequest:
		switch {
		case st != nil && hasReason(st, "API_KEY_INVALID"):
			e.Kind = llm.KindAuth
			e.Code = "invalid_api_key"
		case tooManyTokens(lower):
			e.Kind = llm.KindContextLength
			e.Code = "context_length_exceeded"
		}
	case llm.KindRateLimit:
		e.Code = "rate_limit_exceeded"
		if st != nil {
			e.RetryAfter = retryDelay(st)
		}
	case llm.KindUnavailable:
		if strings.Contains(lower, "overloaded") {
			e.Kind = llm.KindOverloaded
		}
	}
	switch e.Kind {
	case llm.KindRateLimit, llm.KindUpstream, llm.KindUnavailable, llm.KindOverloaded, llm.KindTimeout:
		e.Retryable = true
	}

	if e.Msg = strings.TrimSpace(excerpt([]byte(msg), maxMsg)); e.Msg == "" {
		e.Msg = "gemini: upstream error"
		if httpStatus != 0 {
			e.Msg += " (HTTP " + strconv.Itoa(httpStatus) + ")"
		}
	}
	switch {
	case st != nil:
		cause := "gemini status " + st.Status
		if rs := reasons(st); rs != "" {
			cause += " (" + rs + ")"
		}
		e.Err = errors.New(cause)
	case raw != "":
		e.Err = errors.New("gemini error body: " + raw)
	}
	return e
}

// kindForHTTP classifies by HTTP status alone.
func kindForHTTP(status int) llm.Kind {
	switch {
	case status == http.StatusBadRequest:
		return llm.KindInvalidRequest
	case status == http.StatusUnauthorized:
		return llm.KindAuth
	case status == http.StatusForbidden:
		return llm.KindPermission
	case status == http.StatusNotFound:
		return llm.KindNotFound
	case status == http.StatusRequestEntityTooLarge:
		return llm.KindTooLarge
	case status == http.StatusTooManyRequests:
		return llm.KindRateLimit
	case status == http.StatusRequestTimeout, status == http.StatusGatewayTimeout:
		return llm.KindTimeout
	case status == http.StatusServiceUnavailable:
		return llm.KindUnavailable
	case status >= 500:
		return llm.KindUpstream
	case status >= 400:
		return llm.KindInvalidRequest
	default:
		// A 2xx/3xx handed to ClassifyError is not an answer we understand.
		return llm.KindUpstream
	}
}

// tooManyTokens recognises Gemini's context-overflow message, "The input
// token count (N) exceeds the maximum number of tokens allowed (M).".
func tooManyTokens(lower string) bool {
	return strings.Contains(lower, "exceeds the maximum number of tokens") ||
		(strings.Contains(lower, "token count") && strings.Contains(lower, "exceeds")) ||
		strings.Contains(lower, "context window") || strings.Contains(lower, "context length")
}

func hasReason(st *statusBody, reason string) bool {
	for i := range st.Details {
		if st.Details[i].Reason == reason {
			return true
		}
	}
	return false
}

func reasons(st *statusBody) string {
	var rs []string
	for i := range st.Details {
		if r := st.Details[i].Reason; r != "" && len(rs) < 4 {
			rs = append(rs, excerpt([]byte(r), 64))
		}
	}
	return strings.Join(rs, ",")
}

// retryDelay reads google.rpc.RetryInfo.retryDelay, a protobuf Duration in
// its JSON form ("17s", "45.837906927s").
func retryDelay(st *statusBody) time.Duration {
	for i := range st.Details {
		d := &st.Details[i]
		if d.RetryDelay == "" || !strings.HasSuffix(d.Type, "google.rpc.RetryInfo") {
			continue
		}
		v, err := time.ParseDuration(strings.TrimSpace(d.RetryDelay))
		if err != nil || v <= 0 {
			continue
		}
		return min(v, maxRetryAfter)
	}
	return 0
}

// parseRetryAfterHeader reads a Retry-After header: delay-seconds or an
// HTTP date (relative to now). It returns 0 when absent or unreadable.
func parseRetryAfterHeader(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(min(n, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// excerpt returns at most n bytes of b as valid UTF-8, with control
// characters replaced by spaces.
func excerpt(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (r < 0x20 && r != '\n') || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
}
