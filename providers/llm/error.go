package llm

import (
	"errors"
	"strconv"
	"time"
)

// Kind classifies an error by what the client should be told and whether
// another upstream could succeed where this one failed.
type Kind int

// Error kinds. The proxy maps each one to an HTTP status and an OpenAI error
// type; see Kind.Status.
const (
	KindInternal       Kind = iota // a bug or an unexpected state: 500
	KindInvalidRequest             // malformed or unsupported request: 400
	KindAuth                       // missing or unknown credentials: 401
	KindPermission                 // authenticated but not allowed: 403
	KindNotFound                   // unknown model, path or resource: 404
	KindTooLarge                   // request body over the limit: 413
	KindContextLength              // prompt longer than the model accepts: 400
	KindRateLimit                  // a rate limit refused: 429
	KindQuotaExceeded              // a quota or budget is exhausted: 429
	KindUpstream                   // the upstream failed (5xx, bad answer): 502
	KindOverloaded                 // the upstream is overloaded (Anthropic 529): 503
	KindUnavailable                // no upstream could be reached: 503
	KindTimeout                    // an upstream deadline passed: 504
	KindCanceled                   // the client went away: 499
)

var kindNames = [...]string{
	KindInternal:       "internal",
	KindInvalidRequest: "invalid_request",
	KindAuth:           "auth",
	KindPermission:     "permission",
	KindNotFound:       "not_found",
	KindTooLarge:       "too_large",
	KindContextLength:  "context_length",
	KindRateLimit:      "rate_limit",
	KindQuotaExceeded:  "quota_exceeded",
	KindUpstream:       "upstream",
	KindOverloaded:     "overloaded",
	KindUnavailable:    "unavailable",
	KindTimeout:        "timeout",
	KindCanceled:       "canceled",
}

// String returns a stable lower-case name, used as a metric label.
func (k Kind) String() string {
	if int(k) >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind_" + strconv.Itoa(int(k))
}

// Status is the HTTP status the gateway answers with for this kind.
func (k Kind) Status() int {
	switch k {
	case KindInvalidRequest, KindContextLength:
		return 400
	case KindAuth:
		return 401
	case KindPermission:
		return 403
	case KindNotFound:
		return 404
	case KindTooLarge:
		return 413
	case KindRateLimit, KindQuotaExceeded:
		return 429
	case KindCanceled:
		return 499
	case KindUpstream:
		return 502
	case KindOverloaded, KindUnavailable:
		return 503
	case KindTimeout:
		return 504
	default:
		return 500
	}
}

// Error is the one error type of aigw. Use errors.As to find it in a chain.
type Error struct {
	Kind     Kind
	Provider string // provider id that produced it, "" for the gateway itself
	Status   int    // upstream HTTP status, 0 when none was received
	// RetryAfter is the upstream's (or a limiter's) hint, 0 when none.
	RetryAfter time.Duration
	// Retryable says another attempt (on this or another target) may succeed.
	Retryable bool
	// Msg is safe to show to the client.
	Msg string
	// Code and Param fill OpenAI's error.code and error.param.
	Code  string
	Param string
	// Err is the underlying cause, never shown to the client.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Kind.String()
	if e.Provider != "" {
		s = e.Provider + ": " + s
	}
	if e.Status != 0 {
		s += " (" + strconv.Itoa(e.Status) + ")"
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds a gateway error of kind k with a client-safe message.
func Errorf(k Kind, msg string) *Error { return &Error{Kind: k, Msg: msg} }

// AsError returns the *Error in err's chain, or wraps err as KindInternal.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindInternal, Msg: "internal error", Err: err}
}
