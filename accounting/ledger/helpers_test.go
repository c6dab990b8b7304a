package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aigw/aigw/accounting"
)

// record builds a plausible record; i varies the figures.
func record(id string, i int) Record {
	gbp, _ := accounting.ParseRate("GBP", "0.79")
	r := Record{
		RequestID:        id,
		Time:             time.Date(2026, 11, 22, 10, 15, 30, 123456789, time.UTC).Add(time.Duration(i) * time.Second),
		Org:              []string{"acme", "bride-co"}[i%2],
		KeyID:            "key-" + fmt.Sprint(i%3),
		User:             "user-42",
		Endpoint:         "chat_completions",
		ModelAlias:       []string{"gpt-4o", "claude"}[i%2],
		Provider:         []string{"openai", "anthropic"}[i%2],
		UpstreamModel:    []string{"gpt-4o-2024-08-06", "claude-sonnet-4-5"}[i%2],
		Stream:           i%3 == 0,
		PromptTokens:     1000 + i,
		CompletionTokens: 200 + i,
		CachedTokens:     i % 100,
		ReasoningTokens:  i % 7,
		TimeToFirstToken: 150*time.Millisecond + time.Duration(i)*time.Microsecond,
		TotalTime:        900 * time.Millisecond,
		CacheHit:         i%10 == 0,
		TokensSaved:      i % 5,
		Status:           200,
		UseCase:          "venue-search",
		VendorType:       "florist",
		WeddingDate:      "2027-06-12",
		WeddingRelated:   true,
	}
	r.TotalTokens = r.PromptTokens + r.CompletionTokens
	r.SetCost(accounting.MicroUSD(1000+i), i%11 != 0, gbp)
	if i%13 == 0 {
		r.Outcome, r.Status, r.ErrorType, r.ErrorMessage = OutcomeError, 502, "upstream", "upstream failed"
	}
	return r
}

// queryer runs a scalar query against a store, whatever its kind.
type queryer interface {
	Int(t testing.TB, query string, args ...any) int64
	Str(t testing.TB, query string, args ...any) string
}

type sqliteQ struct{ s *SQLite }

func (q sqliteQ) Int(t testing.TB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := q.s.DB().QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (q sqliteQ) Str(t testing.TB, query string, args ...any) string {
	t.Helper()
	var v string
	if err := q.s.DB().QueryRow(query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

type pgQ struct{ dsn string }

func (q pgQ) Str(t testing.TB, query string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, q.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	query = pgPlaceholders(query)
	if err := conn.QueryRow(ctx, query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func (q pgQ) Int(t testing.TB, query string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, q.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	query = pgPlaceholders(query)
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// pgPlaceholders rewrites ? placeholders to $1, $2, ...
func pgPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// newSQLite opens a migrated SQLite store in a temporary directory.
func newSQLite(t testing.TB) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "aigw.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, path
}

// newPostgres opens and migrates the store at dsn (a postgresDSN), closed
// when the test ends.
func newPostgres(t testing.TB, dsn string) *Postgres {
	t.Helper()
	ctx := context.Background()
	s, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// postgresDSN returns a DSN for a fresh schema on the test server, dropped
// at the end of the test. Without a server the test fails when CI is set
// and is skipped otherwise.
func postgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("AIGW_TEST_POSTGRES_DSN")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		t.Skipf("no PostgreSQL at %s: %v", RedactDSN(base), err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "aigw_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// flakyStore fails while down is set, optionally after letting the write
// through (as a store that commits and then loses the connection would).
type flakyStore struct {
	Store
	down        atomic.Bool
	failAfter   atomic.Bool // fail after a successful write
	writes      atomic.Int64
	failures    atomic.Int64
	mu          sync.Mutex
	batchSizes  []int
	closeCalled atomic.Bool
}

var errDown = errors.New("store is down (test)")

func (f *flakyStore) Write(ctx context.Context, recs []Record) error {
	f.writes.Add(1)
	f.mu.Lock()
	f.batchSizes = append(f.batchSizes, len(recs))
	f.mu.Unlock()
	if f.down.Load() {
		f.failures.Add(1)
		return errDown
	}
	if err := f.Store.Write(ctx, recs); err != nil {
		return err
	}
	if f.failAfter.Load() {
		f.failures.Add(1)
		return errDown
	}
	return nil
}

func (f *flakyStore) Close() error {
	f.closeCalled.Store(true)
	return f.Store.Close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fastOptions flush quickly so tests do not wait.
func fastOptions(dir string) Options {
	return Options{
		SpillDir:      dir,
		FlushInterval: 5 * time.Millisecond,
		RetryMin:      5 * time.Millisecond,
		RetryMax:      20 * time.Millisecond,
	}
}

func closeLedger(t testing.TB, l *Ledger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func spillFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != lockFileName {
			out = append(out, e.Name())
		}
	}
	return out
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
