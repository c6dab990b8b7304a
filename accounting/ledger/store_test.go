package ledger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testStoreContract checks what every Store promises: idempotent writes on
// request_id (across batches and within one), rollups that count each
// record once, exact round trips, pruning, and repeatable migrations.
func testStoreContract(t *testing.T, s Store, q queryer) {
	ctx := context.Background()
	recs := []Record{record("a", 0), record("b", 1), record("c", 2)}
	for i := range recs {
		if err := recs[i].normalize(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	d := record("d", 3)
	d.normalize(time.Now())
	// A replayed batch: the three again, a new one, and a duplicate within
	// the batch.
	if err := s.Write(ctx, append(append([]Record{}, recs...), d, d)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, nil); err != nil {
		t.Fatal(err)
	}
	all := append(recs, d)
	// SpentSince sums one org's records from a time on, each record once
	// whatever the replays: acme holds a (t+0s) and c (t+2s).
	sq := s.(SpendQuerier)
	for _, c := range []struct {
		org   string
		since time.Time
		want  int64
	}{
		{"acme", recs[0].Time, int64(recs[0].CostUSDMicros + recs[2].CostUSDMicros)},
		{"acme", recs[0].Time.Add(time.Microsecond), int64(recs[2].CostUSDMicros)},
		{"bride-co", recs[0].Time, int64(recs[1].CostUSDMicros + d.CostUSDMicros)},
		{"acme", d.Time.Add(time.Second), 0},
		{"nobody", time.Time{}, 0},
	} {
		got, err := sq.SpentSince(ctx, c.org, c.since)
		if err != nil || int64(got) != c.want {
			t.Errorf("SpentSince(%s, %s) = %d, %v; want %d", c.org, c.since, got, err, c.want)
		}
	}
	if n := q.Int(t, `SELECT count(*) FROM usage_records`); n != 4 {
		t.Fatalf("usage_records has %d rows, want 4", n)
	}
	var wantCost, wantPrompt, wantErrors, wantUnpriced int64
	for _, r := range all {
		wantCost += int64(r.CostUSDMicros)
		wantPrompt += int64(r.PromptTokens)
		if r.Outcome != OutcomeOK {
			wantErrors++
		}
		if !r.Priced {
			wantUnpriced++
		}
	}
	for _, tab := range rollupTables {
		if n := q.Int(t, `SELECT coalesce(sum(requests), 0) FROM `+tab.name); n != 4 {
			t.Errorf("%s counts %d requests, want 4", tab.name, n)
		}
		if n := q.Int(t, `SELECT coalesce(sum(cost_usd_micros), 0) FROM `+tab.name); n != wantCost {
			t.Errorf("%s cost %d, want %d", tab.name, n, wantCost)
		}
		if n := q.Int(t, `SELECT coalesce(sum(prompt_tokens), 0) FROM `+tab.name); n != wantPrompt {
			t.Errorf("%s prompt tokens %d, want %d", tab.name, n, wantPrompt)
		}
		if n := q.Int(t, `SELECT coalesce(sum(errors), 0) FROM `+tab.name); n != wantErrors {
			t.Errorf("%s errors %d, want %d", tab.name, n, wantErrors)
		}
		if n := q.Int(t, `SELECT coalesce(sum(unpriced_requests), 0) FROM `+tab.name); n != wantUnpriced {
			t.Errorf("%s unpriced %d, want %d", tab.name, n, wantUnpriced)
		}
		// Two orgs x two models in the same minute, hour and day.
		if n := q.Int(t, `SELECT count(*) FROM `+tab.name); n != 2 {
			t.Errorf("%s has %d rows, want 2 (one per org and model)", tab.name, n)
		}
	}

	// Round trip of one record.
	b := recs[1]
	checks := map[string]int64{
		"prompt_tokens": int64(b.PromptTokens), "completion_tokens": int64(b.CompletionTokens),
		"cached_tokens": int64(b.CachedTokens), "reasoning_tokens": int64(b.ReasoningTokens),
		"total_tokens": int64(b.TotalTokens), "cost_usd_micros": int64(b.CostUSDMicros),
		"cost_display_micros": b.CostDisplayMicros, "tokens_saved": int64(b.TokensSaved), "status": int64(b.Status),
	}
	for col, want := range checks {
		if got := q.Int(t, `SELECT `+col+` FROM usage_records WHERE request_id = ?`, "b"); got != want {
			t.Errorf("%s = %d, want %d", col, got, want)
		}
	}
	strs := map[string]string{
		"org": b.Org, "key_id": b.KeyID, "user_id": b.User, "model_alias": b.ModelAlias, "provider": b.Provider,
		"upstream_model": b.UpstreamModel, "display_currency": "GBP", "outcome": "ok", "use_case": b.UseCase,
		"vendor_type": b.VendorType, "wedding_date": b.WeddingDate, "endpoint": b.Endpoint,
	}
	for col, want := range strs {
		if got := q.Str(t, `SELECT `+col+` FROM usage_records WHERE request_id = ?`, "b"); got != want {
			t.Errorf("%s = %q, want %q", col, got, want)
		}
	}
	if got := q.Int(t, `SELECT count(*) FROM usage_records WHERE request_id = ? AND priced AND wedding_related AND NOT cache_hit AND time_to_first_token_ms = 150.001`, "b"); got != 1 {
		t.Error("booleans or durations did not round-trip")
	}

	// Pruning: everything before d's time goes, d stays; rollup buckets
	// before the cut-off go.
	p, ok := s.(Pruner)
	if !ok {
		t.Fatal("store does not prune")
	}
	n, err := p.Prune(ctx, Cutoffs{Records: d.Time, Minute: d.Time.Add(2 * time.Minute), Hour: d.Time})
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Int(t, `SELECT count(*) FROM usage_records`); got != 1 || n < 3 {
		t.Errorf("after prune: %d records (deleted %d rows), want 1", got, n)
	}
	if got := q.Int(t, `SELECT count(*) FROM usage_rollup_minute`); got != 0 {
		t.Errorf("minute rollups after prune: %d, want 0", got)
	}
	if got := q.Int(t, `SELECT count(*) FROM usage_rollup_hour`); got != 2 {
		t.Errorf("hour rollups after prune: %d, want 2 (the current hour stays)", got)
	}
	if got := q.Int(t, `SELECT count(*) FROM usage_rollup_day`); got != 2 {
		t.Errorf("day rollups pruned without a cut-off: %d", got)
	}

	// Migrations are recorded and repeatable, from several goroutines.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Migrate(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("second Migrate: %v", err)
		}
	}
	if got := q.Int(t, `SELECT count(*) FROM schema_migrations`); got != int64(len(sqliteMigrations)-1) {
		t.Errorf("schema_migrations has %d rows, want %d", got, len(sqliteMigrations)-1)
	}
}

// TestSQLiteUpgradesSchema: a database at version 1 (before
// cost_saved_usd_micros and client_request_id) is migrated in place, its
// rows kept with the new columns at their defaults, and takes new records.
func TestSQLiteUpgradesSchema(t *testing.T) {
	if len(sqliteMigrations) != len(postgresMigrations) {
		t.Fatalf("SQLite has %d migrations, PostgreSQL %d", len(sqliteMigrations)-1, len(postgresMigrations)-1)
	}
	s, _ := newSQLite(t)
	defer s.Close()
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `DROP TABLE schema_migrations; DROP TABLE usage_records; DROP TABLE usage_rollup_minute; DROP TABLE usage_rollup_hour; DROP TABLE usage_rollup_day;
		CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if err := s.migrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	const added = 2 // the columns migrations after 1 added, at the end of recordColumns
	old := strings.Join(recordColumns[:len(recordColumns)-added], ", ")
	if _, err := s.db.ExecContext(ctx, `INSERT INTO usage_records (`+old+`) SELECT `+
		strings.TrimSuffix(strings.Repeat("'1', ", len(recordColumns)-added), ", ")); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q := sqliteQ{s}
	if got := q.Int(t, `SELECT cost_saved_usd_micros FROM usage_records WHERE request_id = '1'`); got != 0 {
		t.Errorf("old row's cost_saved_usd_micros = %d", got)
	}
	if got := q.Str(t, `SELECT client_request_id FROM usage_records WHERE request_id = '1'`); got != "" {
		t.Errorf("old row's client_request_id = %q", got)
	}
	r := record("new", 1)
	r.CacheHit, r.CostSavedUSDMicros, r.ClientRequestID = true, 4321, "client-7"
	r.normalize(time.Now())
	if err := s.Write(ctx, []Record{r}); err != nil {
		t.Fatal(err)
	}
	if got := q.Int(t, `SELECT cost_saved_usd_micros FROM usage_records WHERE request_id = 'new'`); got != 4321 {
		t.Errorf("cost_saved_usd_micros = %d, want 4321", got)
	}
	if got := q.Str(t, `SELECT client_request_id FROM usage_records WHERE request_id = 'new'`); got != "client-7" {
		t.Errorf("client_request_id = %q, want client-7", got)
	}
}

func TestSQLiteStoreContract(t *testing.T) {
	s, _ := newSQLite(t)
	defer s.Close()
	q := sqliteQ{s}
	testStoreContract(t, s, q)
	if got := q.Str(t, `SELECT time FROM usage_records`); got != "2026-11-22T10:15:33.123456Z" {
		t.Errorf("time stored as %q", got)
	}
	if got := q.Str(t, `PRAGMA journal_mode`); got != "wal" {
		t.Errorf("journal_mode %q, want wal", got)
	}
}

func TestPostgresStoreContract(t *testing.T) {
	dsn := postgresDSN(t)
	s := newPostgres(t, dsn)
	testStoreContract(t, s, pgQ{dsn})
	q := pgQ{dsn}
	want := time.Date(2026, 11, 22, 10, 15, 33, 123456000, time.UTC).UnixMicro()
	if got := q.Int(t, `SELECT (extract(epoch FROM time) * 1000000)::bigint FROM usage_records`); got != want {
		t.Errorf("time stored as %d, want %d", got, want)
	}
	if got := q.Str(t, `SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM usage_rollup_hour ORDER BY bucket LIMIT 1`); got != "2026-11-22 10:00" {
		t.Errorf("hour bucket %q", got)
	}
}

// TestPostgresReconnects: a store whose connection died reconnects on the
// next write.
func TestPostgresReconnects(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := context.Background()
	s := newPostgres(t, dsn)
	r := record("r1", 1)
	r.normalize(time.Now())
	if err := s.Write(ctx, []Record{r}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.conn.Close(ctx) // the server went away
	s.mu.Unlock()
	r2 := record("r2", 2)
	r2.normalize(time.Now())
	if err := s.Write(ctx, []Record{r2}); err != nil {
		t.Fatalf("write after the connection died: %v", err)
	}
	if n := (pgQ{dsn: dsn}).Int(t, `SELECT count(*) FROM usage_records`); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
	s.Close()
	if err := s.Write(ctx, []Record{r2}); err == nil {
		t.Error("write after Close succeeded")
	}
}

func TestOpenStoreDSN(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenStore(ctx, "sqlite:"+dir+"/sub/dir/x.db")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*SQLite); !ok {
		t.Errorf("sqlite DSN opened %T", s)
	}
	s.Close()
	for _, bad := range []string{"mysql://u:secret@h/db", "sqlite:", "file.db"} {
		_, err := OpenStore(ctx, bad)
		if err == nil {
			t.Errorf("OpenStore(%q) succeeded", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	if got := RedactDSN("postgres://u:pw@h:5432/db"); got != "postgres://u:xxxxx@h:5432/db" {
		t.Errorf("redactDSN = %q", got)
	}
}

// expiringCtx reports an expired deadline from its after-th Err call on,
// so a test can end a write's context part way through its rows without
// racing a timer. Its Done channel is nil, as Background's.
type expiringCtx struct {
	context.Context
	calls, after int
}

func (c *expiringCtx) Err() error {
	if c.calls++; c.calls > c.after {
		return context.DeadlineExceeded
	}
	return nil
}

// The SQLite store checks the write's context between rows (its rows run
// under one that cannot be cancelled): a context that ends part way stops
// the write, nothing of the batch is stored, and the batch can be written
// again whole.
func TestSQLiteWriteStopsWhenContextEndsBetweenRows(t *testing.T) {
	s, _ := newSQLite(t)
	defer s.Close()
	q := sqliteQ{s}
	recs := make([]Record, 50)
	for i := range recs {
		recs[i] = record(fmt.Sprintf("req-%03d", i), i)
	}
	ctx := &expiringCtx{Context: context.Background(), after: 20}
	err := s.Write(ctx, recs)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write with a context that ends after 20 checks: %v, want DeadlineExceeded", err)
	}
	if ctx.calls > 25 {
		t.Errorf("the write went on for %d context checks after the context ended", ctx.calls-20)
	}
	if n := q.Int(t, `SELECT count(*) FROM usage_records`); n != 0 {
		t.Fatalf("%d rows stored from a write that failed, want 0", n)
	}
	if n := q.Int(t, `SELECT count(*) FROM usage_rollup_minute`); n != 0 {
		t.Fatalf("%d rollup rows from a write that failed, want 0", n)
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if n := q.Int(t, `SELECT count(*) FROM usage_records`); n != 50 {
		t.Fatalf("%d rows after the retry, want 50", n)
	}
}

// TestEveryRecordFieldHasAColumn: each field of Record is stored, in the
// column its JSON name says (durations in milliseconds, under _ms), so a
// field added to Record without a column and a migration fails here.
func TestEveryRecordFieldHasAColumn(t *testing.T) {
	cols := map[string]bool{}
	for _, c := range recordColumns {
		cols[c] = true
	}
	typ := reflect.TypeFor[Record]()
	if typ.NumField() != len(recordColumns) {
		t.Errorf("Record has %d fields, usage_records %d columns", typ.NumField(), len(recordColumns))
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type == reflect.TypeFor[time.Duration]() {
			name += "_ms"
		}
		if !cols[name] {
			t.Errorf("field %s has no column %q", f.Name, name)
		}
	}
	s, _ := newSQLite(t)
	defer s.Close()
	r := fullRecord(t)
	if err := s.Write(context.Background(), []Record{r}); err != nil {
		t.Fatal(err)
	}
	if got := (sqliteQ{s}).Str(t, `SELECT client_request_id FROM usage_records`); got != r.ClientRequestID {
		t.Errorf("client_request_id stored as %q, want %q", got, r.ClientRequestID)
	}
}

// TestSQLiteStatementsFollowTheConnection: Write keeps its prepared
// statements between batches, and when database/sql replaces the
// connection (here: its lifetime ran out) it prepares them again on the new
// one instead of using the old connection's; every row and rollup is
// stored, and Close finalizes what is left.
func TestSQLiteStatementsFollowTheConnection(t *testing.T) {
	s, _ := newSQLite(t)
	ctx := context.Background()
	if err := s.Write(ctx, []Record{record("s1", 0), record("s2", 1)}); err != nil {
		t.Fatal(err)
	}
	first := s.stmts
	if first == nil || first.ins == nil || first.ups[0] == nil {
		t.Fatalf("statements not kept after a write: %+v", first)
	}
	if err := s.Write(ctx, []Record{record("s3", 2)}); err != nil {
		t.Fatal(err)
	}
	if s.stmts != first {
		t.Fatal("a second write on the same connection prepared its statements again")
	}
	s.db.SetConnMaxLifetime(time.Nanosecond)
	time.Sleep(time.Millisecond)
	if err := s.Write(ctx, []Record{record("s4", 3), record("s5", 4)}); err != nil {
		t.Fatal(err)
	}
	if s.stmts == first || s.stmts.dc == first.dc {
		t.Fatal("the write on a new connection used the old connection's statements")
	}
	s.db.SetConnMaxLifetime(0)
	q := sqliteQ{s}
	if n := q.Int(t, `SELECT count(*) FROM usage_records`); n != 5 {
		t.Errorf("%d rows, want 5", n)
	}
	if n := q.Int(t, `SELECT sum(requests) FROM usage_rollup_day`); n != 5 {
		t.Errorf("day rollups count %d requests, want 5", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresUpgradesSchema: a database at version 2 (before
// client_request_id) is migrated in place, its rows kept with the new
// column empty, and takes new records with it.
func TestPostgresUpgradesSchema(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 2; v++ {
		if _, err := conn.Exec(ctx, postgresMigrations[v]); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			t.Fatal(err)
		}
	}
	old := recordColumns[:len(recordColumns)-1] // without client_request_id
	if old[len(old)-1] != "cost_saved_usd_micros" {
		t.Fatalf("recordColumns no longer ends with version 2's and 3's columns: %v", recordColumns[len(recordColumns)-2:])
	}
	r := record("old", 1)
	r.normalize(time.Now())
	vals := rowValues(nil, &r, pgTimeValue, pgBool)[:len(old)]
	ph := make([]string, len(old))
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO usage_records (`+strings.Join(old, ", ")+`) VALUES (`+strings.Join(ph, ", ")+`)`, vals...); err != nil {
		t.Fatal(err)
	}
	s := newPostgres(t, dsn)
	q := pgQ{dsn}
	if got := q.Str(t, `SELECT client_request_id FROM usage_records WHERE request_id = 'old'`); got != "" {
		t.Errorf("old row's client_request_id = %q", got)
	}
	n := record("new", 2)
	n.ClientRequestID = "client-9"
	n.normalize(time.Now())
	if err := s.Write(ctx, []Record{n}); err != nil {
		t.Fatal(err)
	}
	if got := q.Str(t, `SELECT client_request_id FROM usage_records WHERE request_id = 'new'`); got != "client-9" {
		t.Errorf("client_request_id = %q, want client-9", got)
	}
	if got := q.Int(t, `SELECT max(version) FROM schema_migrations`); got != int64(len(postgresMigrations)-1) {
		t.Errorf("schema at version %d", got)
	}
}

// TestRowBoxerKeepsValues: rows boxed with a rowBoxer, which shares values
// with the previous row, hold exactly what boxing each row alone gives,
// whether a row repeats its predecessor's values or not, and a row that
// repeats them costs fewer allocations.
func TestRowBoxerKeepsValues(t *testing.T) {
	full := fullRecord(t)
	recs := []Record{record("r1", 1), record("r2", 2), record("r3", 3), record("r4", 3), full, full, record("r5", 2)}
	recs[3].Org, recs[3].ErrorType = "other-org", "upstream_error" // a change in one column only
	var box rowBoxer
	for _, tv := range []struct {
		name string
		time func(time.Time) any
		bool func(bool) any
	}{{"sqlite", sqliteTimeValue, sqliteBool}, {"postgres", pgTimeValue, pgBool}} {
		for i := range recs {
			got := rowValues(&box, &recs[i], tv.time, tv.bool)
			want := rowValues(nil, &recs[i], tv.time, tv.bool)
			if len(got) != len(recordColumns) {
				t.Fatalf("%s row %d: %d values for %d columns", tv.name, i, len(got), len(recordColumns))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s row %d:\n got %#v\nwant %#v", tv.name, i, got, want)
			}
		}
	}

	next := record("n1", 1)
	vals := make([]any, 0, len(recordColumns))
	alone := testing.AllocsPerRun(100, func() { vals = appendRowValues(vals[:0], nil, &next, sqliteTimeValue, sqliteBool) })
	box = rowBoxer{}
	shared := testing.AllocsPerRun(100, func() { vals = appendRowValues(vals[:0], &box, &next, sqliteTimeValue, sqliteBool) })
	t.Logf("allocations per row: %.0f boxed alone, %.0f shared", alone, shared)
	if shared > alone-8 {
		t.Errorf("a repeated row costs %.0f allocations with the boxer, %.0f without: want at least 8 fewer", shared, alone)
	}
}
