package proxy

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/aigw/aigw/providers/llm"
)

// openAIErrorType maps a kind to OpenAI's error.type.
func openAIErrorType(k llm.Kind) string {
	switch k {
	case llm.KindInvalidRequest, llm.KindContextLength, llm.KindNotFound, llm.KindTooLarge, llm.KindAuth, llm.KindPermission:
		return "invalid_request_error"
	case llm.KindRateLimit:
		return "rate_limit_error"
	case llm.KindQuotaExceeded:
		return "insufficient_quota"
	case llm.KindCanceled:
		return "request_canceled"
	default:
		return "server_error"
	}
}

// defaultCode fills error.code when the error carries none, so clients can
// branch on a stable string.
func defaultCode(k llm.Kind) string {
	switch k {
	case llm.KindContextLength:
		return "context_length_exceeded"
	case llm.KindNotFound:
		return "not_found"
	case llm.KindTooLarge:
		return "request_too_large"
	case llm.KindPermission:
		return "permission_denied"
	case llm.KindRateLimit:
		return "rate_limit_exceeded"
	case llm.KindQuotaExceeded:
		return "insufficient_quota"
	case llm.KindUpstream:
		return "upstream_error"
	case llm.KindOverloaded:
		return "upstream_overloaded"
	case llm.KindUnavailable:
		return "upstream_unavailable"
	case llm.KindTimeout:
		return "upstream_timeout"
	case llm.KindInternal:
		return "internal_error"
	}
	return ""
}

type openAIErrorBody struct {
	Error openAIError `json:"error"`
}

type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// appendOpenAIError appends {"error":{...}} for e.
func appendOpenAIError(dst []byte, e *llm.Error) []byte {
	body := openAIErrorBody{Error: openAIError{Message: e.Msg, Type: openAIErrorType(e.Kind)}}
	if body.Error.Message == "" {
		body.Error.Message = "The gateway could not complete the request."
	}
	if e.Param != "" {
		body.Error.Param = &e.Param
	}
	code := e.Code
	if code == "" {
		code = defaultCode(e.Kind)
	}
	if code != "" {
		body.Error.Code = &code
	}
	b, err := json.Marshal(body)
	if err != nil { // cannot happen: strings only
		return append(dst, `{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}`...)
	}
	return append(dst, b...)
}

// statusOf is the HTTP status the client gets for e.
func statusOf(e *llm.Error) int { return e.Kind.Status() }

// writeError answers ctx with e in OpenAI's shape, with Retry-After and
// x-should-retry where they apply. It must be called before any body byte
// went out.
func writeError(ctx *fasthttp.RequestCtx, e *llm.Error) {
	st := statusOf(e)
	ctx.Response.ResetBody()
	ctx.SetStatusCode(st)
	ctx.SetContentType("application/json")
	setRetryHeaders(&ctx.Response.Header, e)
	ctx.SetBody(appendOpenAIError(nil, e))
}

// setRetryHeaders tells SDKs whether and when to retry. OpenAI SDKs retry
// 408, 409, 429 and 5xx unless x-should-retry says false.
func setRetryHeaders(h *fasthttp.ResponseHeader, e *llm.Error) {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	if !retryableForClient(e) {
		h.Set("x-should-retry", "false")
	}
}

// retryableForClient says whether the same request may succeed later.
func retryableForClient(e *llm.Error) bool {
	switch e.Kind {
	case llm.KindRateLimit, llm.KindUpstream, llm.KindOverloaded, llm.KindUnavailable, llm.KindTimeout, llm.KindInternal:
		return true
	}
	return false
}
