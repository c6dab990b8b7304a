package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Store is where records end up. The ledger is its only writer in a
// process and calls Write from one goroutine at a time.
//
// Write must be idempotent on RequestID: writing a record whose id the
// store already holds (a replay after a crash or an outage, or the same id
// twice in one batch) leaves the stored row and every rollup unchanged. It
// must be atomic: either every new record of the batch is stored (with its
// rollups) or none is, and then it returns an error and the ledger retries
// the batch later.
type Store interface {
	// Migrate brings the schema to the current version. It is safe to call
	// from several processes at once.
	Migrate(ctx context.Context) error
	Write(ctx context.Context, recs []Record) error
	Close() error
}

// Pruner is implemented by stores that delete old rows. The ledger calls it
// periodically with the configured Retention.
type Pruner interface {
	// Prune deletes records and rollup rows older than the cut-offs and
	// returns how many rows it deleted.
	Prune(ctx context.Context, c Cutoffs) (int64, error)
}

// Retention says how long rows are kept. Zero keeps them forever.
type Retention struct {
	Records time.Duration // usage_records
	Minute  time.Duration // usage_rollup_minute
	Hour    time.Duration // usage_rollup_hour
	Day     time.Duration // usage_rollup_day
}

// DefaultRetention keeps records 90 days, minute rollups 2 days, hour
// rollups 90 days and day rollups forever.
func DefaultRetention() Retention {
	return Retention{Records: 90 * 24 * time.Hour, Minute: 48 * time.Hour, Hour: 90 * 24 * time.Hour}
}

// Cutoffs are absolute times before which rows are deleted; a zero time
// keeps the table whole.
type Cutoffs struct {
	Records, Minute, Hour, Day time.Time
}

// cutoffs turns r into absolute times at now.
func (r Retention) cutoffs(now time.Time) Cutoffs {
	at := func(d time.Duration) time.Time {
		if d <= 0 {
			return time.Time{}
		}
		return now.Add(-d)
	}
	return Cutoffs{Records: at(r.Records), Minute: at(r.Minute), Hour: at(r.Hour), Day: at(r.Day)}
}

func (r Retention) isZero() bool { return r == Retention{} }

// DefaultDSN is the embedded default store.
const DefaultDSN = "sqlite:./data/aigw.db"

// OpenStore opens the store a DSN names (the bootstrap setting ledger.dsn,
// env AIGW_LEDGER_DSN):
//
//	sqlite:PATH                 SQLite file at PATH (created with its directory)
//	postgres://... postgresql://...   PostgreSQL (pgx connection string)
//
// "" means DefaultDSN. The store is not migrated; call Migrate (Open does).
func OpenStore(ctx context.Context, dsn string) (Store, error) {
	if dsn == "" {
		dsn = DefaultDSN
	}
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return nil, errors.New("ledger: sqlite DSN needs a path (sqlite:./data/aigw.db)")
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("ledger: %w", err)
			}
		}
		return OpenSQLite(path)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return OpenPostgres(ctx, dsn)
	}
	return nil, fmt.Errorf("ledger: DSN %q: want sqlite:PATH or a postgres:// URL", RedactDSN(dsn))
}

// RedactDSN hides a password in a DSN, for messages and logs.
func RedactDSN(dsn string) string {
	at := strings.LastIndexByte(dsn, '@')
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	userinfo := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:scheme+3] + user + ":xxxxx" + dsn[at:]
	}
	return dsn
}

// Table and column names. The record columns are Record's JSON names, with
// the two durations in milliseconds.
const (
	tableRecords   = "usage_records"
	tableMigration = "schema_migrations"
)

// recordColumns lists usage_records' columns in the order rowValues
// produces them.
var recordColumns = []string{
	"request_id", "time", "org", "key_id", "user_id", "endpoint",
	"model_alias", "provider", "upstream_model", "stream",
	"prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "total_tokens",
	"usage_estimated", "time_to_first_token_ms", "total_time_ms",
	"cost_usd_micros", "priced", "cost_display_micros", "display_currency",
	"cache_hit", "tokens_saved", "outcome", "status", "error_type", "error_message",
	"use_case", "vendor_type", "wedding_date", "wedding_related",
	"cost_saved_usd_micros", "client_request_id",
}

// rowValues returns r's column values; timeValue renders the time for the
// store (SQLite stores text, PostgreSQL timestamptz) and boolValue a
// boolean. b, if not nil, shares boxed values with the previous row it
// boxed.
func rowValues(b *rowBoxer, r *Record, timeValue func(time.Time) any, boolValue func(bool) any) []any {
	return appendRowValues(make([]any, 0, len(recordColumns)), b, r, timeValue, boolValue)
}

// appendRowValues appends r's column values to dst, as rowValues returns
// them.
func appendRowValues(dst []any, b *rowBoxer, r *Record, timeValue func(time.Time) any, boolValue func(bool) any) []any {
	start := len(dst)
	dst = shared(b, dst, start, r.RequestID)
	dst = append(dst, timeValue(r.Time))
	for _, s := range [...]string{r.Org, r.KeyID, r.User, r.Endpoint, r.ModelAlias, r.Provider, r.UpstreamModel} {
		dst = shared(b, dst, start, s)
	}
	dst = append(dst, boolValue(r.Stream))
	for _, v := range [...]int{r.PromptTokens, r.CompletionTokens, r.CachedTokens, r.CacheWriteTokens, r.ReasoningTokens, r.TotalTokens} {
		dst = shared(b, dst, start, int64(v))
	}
	dst = append(dst, boolValue(r.UsageEstimated), millis(r.TimeToFirstToken), millis(r.TotalTime))
	dst = shared(b, dst, start, int64(r.CostUSDMicros))
	dst = append(dst, boolValue(r.Priced))
	dst = shared(b, dst, start, r.CostDisplayMicros)
	dst = shared(b, dst, start, r.DisplayCurrency)
	dst = append(dst, boolValue(r.CacheHit))
	dst = shared(b, dst, start, int64(r.TokensSaved))
	dst = shared(b, dst, start, r.Outcome)
	dst = shared(b, dst, start, int64(r.Status))
	for _, s := range [...]string{r.ErrorType, r.ErrorMessage, r.UseCase, r.VendorType, r.WeddingDate} {
		dst = shared(b, dst, start, s)
	}
	dst = append(dst, boolValue(r.WeddingRelated))
	dst = shared(b, dst, start, int64(r.CostSavedUSDMicros))
	dst = shared(b, dst, start, r.ClientRequestID)
	b.keep(dst[start:])
	return dst
}

// rowBoxer boxes column values for a driver, sharing each column's boxed
// value with the previous row when the value is the same: a batch's rows
// mostly repeat the org, key, model, provider, outcome and many counts,
// and boxing a string or an int64 over 255 allocates (it was a fifth of
// the gateway's allocations under load). Boxed values are immutable, so
// rows may share them. A nil *rowBoxer boxes every value. Not safe for
// concurrent use.
type rowBoxer struct{ prev []any }

// shared appends v to the row that starts at dst[start], as the previous
// row's boxed value of that column when it is the same.
func shared[T string | int64](b *rowBoxer, dst []any, start int, v T) []any {
	if b != nil {
		if i := len(dst) - start; i < len(b.prev) {
			if p, ok := b.prev[i].(T); ok && p == v {
				return append(dst, b.prev[i])
			}
		}
	}
	return append(dst, v)
}

// keep remembers row as the previous row.
func (b *rowBoxer) keep(row []any) {
	if b != nil {
		b.prev = append(b.prev[:0], row...)
	}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rollupColumns are the sums every rollup table keeps per (bucket, org,
// model_alias).
var rollupColumns = []string{
	"requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens",
	"cost_usd_micros", "cache_hits", "tokens_saved", "estimated_requests", "unpriced_requests",
}

// rollupTables names the three rollup tables and their bucket widths.
var rollupTables = []struct {
	name  string
	width string // PostgreSQL date_trunc unit
}{
	{"usage_rollup_minute", "minute"},
	{"usage_rollup_hour", "hour"},
	{"usage_rollup_day", "day"},
}

// rollup is one row's increments.
type rollup [11]int64

func rollupOf(r *Record) rollup {
	var v rollup
	v[0] = 1
	if r.Outcome != OutcomeOK {
		v[1] = 1
	}
	v[2], v[3], v[4], v[5] = int64(r.PromptTokens), int64(r.CompletionTokens), int64(r.CachedTokens), int64(r.TotalTokens)
	v[6] = int64(r.CostUSDMicros)
	if r.CacheHit {
		v[7] = 1
	}
	v[8] = int64(r.TokensSaved)
	if r.UsageEstimated {
		v[9] = 1
	}
	if !r.Priced {
		v[10] = 1
	}
	return v
}

func (a *rollup) add(b rollup) {
	for i := range a {
		a[i] += b[i]
	}
}

// pruneRecordsByOrg deletes old records one organisation at a time, so
// that every DELETE walks the (org, time) index: usage_records has no
// index on time alone, which every insert would pay for and only pruning
// would use. next returns the first organisation after the given one (or,
// with first set, the first of all) and false when there is none; del
// deletes one organisation's old records.
func pruneRecordsByOrg(next func(after string, first bool) (string, bool, error), del func(org string) error) error {
	org, first := "", true
	for {
		o, ok, err := next(org, first)
		if err != nil || !ok {
			return err
		}
		if err := del(o); err != nil {
			return err
		}
		org, first = o, false
	}
}

// orgAfter is the query for pruneRecordsByOrg's next, with the store's
// placeholder p: one seek in the (org, time) index.
func orgAfter(first bool, p string) string {
	op := ">"
	if first {
		op = ">=" // the empty organisation (requests refused before auth) is one too
	}
	return `SELECT org FROM usage_records WHERE org ` + op + ` ` + p + ` ORDER BY org LIMIT 1`
}

// nextOrg runs scan (a row's Scan) into an organisation name for
// pruneRecordsByOrg's next; no row means no further organisation.
func nextOrg(scan func(dest ...any) error) (string, bool, error) {
	var org string
	switch err := scan(&org); {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return org, true, nil
}
