package ledger

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aigw/aigw/accounting"
	"github.com/aigw/aigw/providers/llm"
)

// Outcome values. The proxy may use others; these are the ones rollups
// count as successes (OutcomeOK) or not (everything else).
const (
	OutcomeOK       = "ok"
	OutcomeError    = "error"
	OutcomeCanceled = "canceled"
)

// Record is one finished request: the row the ledger stores in
// usage_records. The JSON names are the column names.
//
// Token fields follow llm.Usage's (OpenAI's) conventions: PromptTokens
// includes CachedTokens and CacheWriteTokens; CompletionTokens includes
// ReasoningTokens.
type Record struct {
	// RequestID is the gateway's own id for the request, unique per
	// request; the store keeps one record per id, so appending the same
	// record again (a replay of the spill) is a no-op. It must never be an
	// id a client chose: two requests under one id would keep one record.
	RequestID string `json:"request_id"`
	// ClientRequestID is the x-request-id the client sent, if any (the
	// gateway echoes it on the answer), so that a client's id can be
	// looked up; several records may share it.
	ClientRequestID string `json:"client_request_id,omitempty"`
	// Time is when the gateway received the request (stored in UTC, to the
	// microsecond). Rollup buckets and retention use it.
	Time time.Time `json:"time"`

	Org   string `json:"org"`
	KeyID string `json:"key_id"`
	// User is the OpenAI "user" field the client sent (column user_id).
	User string `json:"user_id"`
	// Endpoint is the API route: "chat_completions", "embeddings", ...
	Endpoint string `json:"endpoint"`

	// ModelAlias is the configured model name the client asked for (for a
	// request refused before its model resolved, the name as sent);
	// Provider the policy provider id that served it; UpstreamModel the
	// provider's model name.
	ModelAlias    string `json:"model_alias"`
	Provider      string `json:"provider"`
	UpstreamModel string `json:"upstream_model"`
	Stream        bool   `json:"stream"`

	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	CachedTokens     int `json:"cached_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens"`
	ReasoningTokens  int `json:"reasoning_tokens"`
	TotalTokens      int `json:"total_tokens"`
	// UsageEstimated is true when the token figures are the gateway's
	// estimate because the upstream reported none.
	UsageEstimated bool `json:"usage_estimated"`

	// TimeToFirstToken is from arrival to the first content byte sent to
	// the client (0 when none was sent); TotalTime from arrival to Finish.
	TimeToFirstToken time.Duration `json:"time_to_first_token"`
	TotalTime        time.Duration `json:"total_time"`

	// CostUSDMicros is the cost in micro-dollars (column cost_usd_micros).
	CostUSDMicros accounting.MicroUSD `json:"cost_usd_micros"`
	// Priced is false when the model had no price: the cost is then 0 and
	// means "unknown", not "free".
	Priced bool `json:"priced"`
	// CostDisplayMicros is the cost in millionths of DisplayCurrency.
	CostDisplayMicros int64  `json:"cost_display_micros"`
	DisplayCurrency   string `json:"display_currency"`

	// CacheHit is true when the gateway's response cache answered; the
	// cost is then 0 and CostSavedUSDMicros what the upstream answer cost
	// (column cost_saved_usd_micros).
	CacheHit           bool                `json:"cache_hit"`
	CostSavedUSDMicros accounting.MicroUSD `json:"cost_saved_usd_micros"`
	// TokensSaved is the prompt tokens compression removed.
	TokensSaved int `json:"tokens_saved"`

	// Outcome is OutcomeOK, OutcomeError or OutcomeCanceled; Status the
	// HTTP status the client got; ErrorType the llm.Kind name and
	// ErrorMessage the client-safe message when it failed.
	Outcome      string `json:"outcome"`
	Status       int    `json:"status"`
	ErrorType    string `json:"error_type"`
	ErrorMessage string `json:"error_message"`

	// Request metadata from allow-listed headers.
	UseCase        string `json:"use_case"`
	VendorType     string `json:"vendor_type"`
	WeddingDate    string `json:"wedding_date"`
	WeddingRelated bool   `json:"wedding_related"`
}

// SetUsage copies u's token figures into r.
func (r *Record) SetUsage(u llm.Usage) {
	r.PromptTokens = u.PromptTokens
	r.CompletionTokens = u.CompletionTokens
	r.CachedTokens = u.CachedTokens
	r.CacheWriteTokens = u.CacheWriteTokens
	r.ReasoningTokens = u.ReasoningTokens
	r.TotalTokens = u.TotalTokens
	if r.TotalTokens == 0 {
		r.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	r.UsageEstimated = u.Estimated
}

// SetCost records a cost in USD and its conversion at rate. priced false
// records the cost as unknown.
func (r *Record) SetCost(cost accounting.MicroUSD, priced bool, rate accounting.Rate) {
	r.CostUSDMicros, r.Priced = cost, priced
	if !rate.Valid() {
		rate = accounting.USD
	}
	r.CostDisplayMicros = rate.Convert(cost)
	r.DisplayCurrency = rate.Currency
}

// SetError fills Outcome, ErrorType and ErrorMessage from the error a
// request ended with; nil means success.
func (r *Record) SetError(err *llm.Error) {
	if err == nil {
		r.Outcome, r.ErrorType, r.ErrorMessage = OutcomeOK, "", ""
		return
	}
	r.Outcome = OutcomeError
	if err.Kind == llm.KindCanceled {
		r.Outcome = OutcomeCanceled
	}
	r.ErrorType = err.Kind.String()
	r.ErrorMessage = err.Msg
}

// Limits on what a record may hold. Longer strings are cut (at a rune
// boundary) rather than refused, so a record is never lost for its size.
const (
	maxRequestID    = 256
	maxField        = 256
	maxErrorMessage = 2048
)

// errNoRequestID is returned by Append for a record without a request id.
var errNoRequestID = errors.New("ledger: record has no request id")

// normalize makes r storable in every store: UTC time to the microsecond,
// valid UTF-8 without NUL bytes (PostgreSQL refuses both), bounded string
// lengths, no negative counts, and defaults for Outcome and currency.
func (r *Record) normalize(now time.Time) error {
	r.RequestID = clean(r.RequestID, maxRequestID)
	if r.RequestID == "" {
		return errNoRequestID
	}
	if r.Time.IsZero() {
		r.Time = now
	}
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	for _, f := range []*string{&r.ClientRequestID, &r.Org, &r.KeyID, &r.User, &r.Endpoint, &r.ModelAlias, &r.Provider,
		&r.UpstreamModel, &r.DisplayCurrency, &r.Outcome, &r.ErrorType, &r.UseCase, &r.VendorType, &r.WeddingDate} {
		*f = clean(*f, maxField)
	}
	r.ErrorMessage = clean(r.ErrorMessage, maxErrorMessage)
	for _, n := range []*int{&r.PromptTokens, &r.CompletionTokens, &r.CachedTokens, &r.CacheWriteTokens,
		&r.ReasoningTokens, &r.TotalTokens, &r.TokensSaved, &r.Status} {
		if *n < 0 {
			*n = 0
		}
	}
	if r.TimeToFirstToken < 0 {
		r.TimeToFirstToken = 0
	}
	if r.TotalTime < 0 {
		r.TotalTime = 0
	}
	if r.Outcome == "" {
		r.Outcome = OutcomeOK
	}
	if r.DisplayCurrency == "" {
		r.DisplayCurrency = "USD"
		r.CostDisplayMicros = int64(r.CostUSDMicros)
	}
	return nil
}

// clean returns s as valid UTF-8 without NUL bytes, cut to at most max
// bytes at a rune boundary.
func clean(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
