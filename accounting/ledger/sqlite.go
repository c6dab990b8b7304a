package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// SQLite stores records in one file with the pure-Go driver (no cgo). The
// database runs in WAL mode with synchronous=FULL, so a committed batch
// survives a power cut, not only a process crash: the ledger deletes spill
// segments once the store has committed them. One connection writes; a
// batch is one transaction. Write's statements are prepared once and
// kept with the connection.
type SQLite struct {
	db *sql.DB

	mu    sync.Mutex   // guards stmts
	stmts *sqliteStmts // Write's prepared statements, on the connection they belong to
}

// sqliteStmts are Write's prepared statements on one driver connection:
// parsing the 35-column INSERT and the three upserts took longer than the
// rows of a small batch (at 200 streams/s, a fifth of the gateway's CPU).
// A statement is prepared on first use and stays valid across schema
// changes (SQLite re-prepares it).
type sqliteStmts struct {
	dc  any // the driver connection they were prepared on
	ins sqliteStmt
	ups [3]sqliteStmt // rollupTables' order
}

// close finalizes the statements; their connection must still be open.
func (st *sqliteStmts) close() {
	for _, x := range append([]sqliteStmt{st.ins}, st.ups[:]...) {
		if x != nil {
			x.Close()
		}
	}
}

// sqliteTime is the text form of times in SQLite: fixed width, UTC, so
// that text order is time order.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

// OpenSQLite opens (creating if needed) the SQLite database at path.
func OpenSQLite(path string) (*SQLite, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: sqlite %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// DB returns the underlying handle, for queries (reports, tests). Do not
// write through it.
func (s *SQLite) DB() *sql.DB { return s.db }

// Close finalizes Write's statements and closes the database.
func (s *SQLite) Close() error {
	s.mu.Lock()
	st := s.stmts
	s.stmts = nil
	s.mu.Unlock()
	if st != nil {
		if conn, err := s.db.Conn(context.Background()); err == nil {
			_ = conn.Raw(func(dc any) error {
				if dc == st.dc {
					st.close()
				}
				return nil
			})
			conn.Close()
		}
	}
	return s.db.Close()
}

// sqliteMigrations are the schema versions, applied in order.
var sqliteMigrations = []string{
	1: `
CREATE TABLE usage_records (
	request_id TEXT PRIMARY KEY,
	time TEXT NOT NULL,
	org TEXT NOT NULL,
	key_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	endpoint TEXT NOT NULL,
	model_alias TEXT NOT NULL,
	provider TEXT NOT NULL,
	upstream_model TEXT NOT NULL,
	stream INTEGER NOT NULL,
	prompt_tokens INTEGER NOT NULL,
	completion_tokens INTEGER NOT NULL,
	cached_tokens INTEGER NOT NULL,
	cache_write_tokens INTEGER NOT NULL,
	reasoning_tokens INTEGER NOT NULL,
	total_tokens INTEGER NOT NULL,
	usage_estimated INTEGER NOT NULL,
	time_to_first_token_ms REAL NOT NULL,
	total_time_ms REAL NOT NULL,
	cost_usd_micros INTEGER NOT NULL,
	priced INTEGER NOT NULL,
	cost_display_micros INTEGER NOT NULL,
	display_currency TEXT NOT NULL,
	cache_hit INTEGER NOT NULL,
	tokens_saved INTEGER NOT NULL,
	outcome TEXT NOT NULL,
	status INTEGER NOT NULL,
	error_type TEXT NOT NULL,
	error_message TEXT NOT NULL,
	use_case TEXT NOT NULL,
	vendor_type TEXT NOT NULL,
	wedding_date TEXT NOT NULL,
	wedding_related INTEGER NOT NULL
);
CREATE INDEX usage_records_time ON usage_records (time);
CREATE INDEX usage_records_org_time ON usage_records (org, time);
` + sqliteRollupDDL("usage_rollup_minute") + sqliteRollupDDL("usage_rollup_hour") + sqliteRollupDDL("usage_rollup_day"),
	// 2: what a cache hit would have cost upstream.
	2: `ALTER TABLE usage_records ADD COLUMN cost_saved_usd_micros INTEGER NOT NULL DEFAULT 0;`,
	// 3: the x-request-id the client sent (not indexed: looked up rarely,
	// and every index is paid on every insert).
	3: `ALTER TABLE usage_records ADD COLUMN client_request_id TEXT NOT NULL DEFAULT '';`,
	// 4: no index on time alone. Only pruning used it, and it was a
	// sixth of every insert's cost; Prune walks (org, time) instead.
	4: `DROP INDEX IF EXISTS usage_records_time;`,
}

func sqliteRollupDDL(table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n\tbucket TEXT NOT NULL,\n\torg TEXT NOT NULL,\n\tmodel_alias TEXT NOT NULL,\n", table)
	for _, c := range rollupColumns {
		fmt.Fprintf(&b, "\t%s INTEGER NOT NULL DEFAULT 0,\n", c)
	}
	b.WriteString("\tPRIMARY KEY (bucket, org, model_alias)\n);\n")
	return b.String()
}

// Migrate applies the pending schema versions, each in its own
// transaction, recording them in schema_migrations.
func (s *SQLite) Migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("ledger: sqlite migrate: %w", err)
	}
	for v := 1; v < len(sqliteMigrations); v++ {
		if err := s.migrateTo(ctx, v); err != nil {
			return fmt.Errorf("ledger: sqlite migration %d: %w", v, err)
		}
	}
	return nil
}

func (s *SQLite) migrateTo(ctx context.Context, v int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, sqliteMigrations[v]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		v, time.Now().UTC().Format(sqliteTime)); err != nil {
		return err
	}
	return tx.Commit()
}

func sqliteTimeValue(t time.Time) any { return t.UTC().Format(sqliteTime) }

func sqliteBool(b bool) any {
	if b {
		return int64(1)
	}
	return int64(0)
}

// Buckets in SQLite are text: minute and hour as RFC 3339 UTC times, day as
// a date.
func sqliteBuckets(t time.Time) [3]string {
	t = t.UTC()
	return [3]string{
		t.Truncate(time.Minute).Format("2006-01-02T15:04:05Z"),
		t.Truncate(time.Hour).Format("2006-01-02T15:04:05Z"),
		t.Format("2006-01-02"),
	}
}

type rollupKey struct{ bucket, org, model string }

// sqliteRollups sums one batch's rollup increments per table and key.
type sqliteRollups struct {
	by [3]map[rollupKey]*rollup // minute, hour, day: rollupTables' order
	// The buckets of the last minute seen: a batch's records mostly share
	// one, so the three bucket names are formatted once per minute, not
	// once per record.
	minute  time.Time
	buckets [3]string
}

func newSQLiteRollups() *sqliteRollups {
	s := &sqliteRollups{}
	for i := range s.by {
		s.by[i] = make(map[rollupKey]*rollup)
	}
	return s
}

// add counts r, a record the batch inserted.
func (s *sqliteRollups) add(r *Record) {
	if m := r.Time.UTC().Truncate(time.Minute); !m.Equal(s.minute) || s.buckets[0] == "" {
		s.minute, s.buckets = m, sqliteBuckets(m)
	}
	inc := rollupOf(r)
	for j, b := range s.buckets {
		k := rollupKey{b, r.Org, r.ModelAlias}
		if sum := s.by[j][k]; sum != nil {
			sum.add(inc)
		} else {
			v := inc
			s.by[j][k] = &v
		}
	}
}

// sqliteInsert stores one record unless its id is already stored. One row
// per statement: a multi-row INSERT measured slower, since SQLite then
// keeps a statement journal for it.
var sqliteInsert = `INSERT INTO usage_records (` + strings.Join(recordColumns, ", ") + `) VALUES (` +
	strings.TrimSuffix(strings.Repeat("?, ", len(recordColumns)), ", ") + `) ON CONFLICT (request_id) DO NOTHING`

// sqliteUpserts are the rollup upserts, in rollupTables' order.
var sqliteUpserts = func() (q [3]string) {
	for i, t := range rollupTables {
		q[i] = sqliteRollupUpsert(t.name)
	}
	return q
}()

func sqliteRollupUpsert(table string) string {
	set := make([]string, len(rollupColumns))
	for i, c := range rollupColumns {
		set[i] = c + " = " + c + " + excluded." + c
	}
	return `INSERT INTO ` + table + ` (bucket, org, model_alias, ` + strings.Join(rollupColumns, ", ") + `) VALUES (?, ?, ?, ` +
		strings.TrimSuffix(strings.Repeat("?, ", len(rollupColumns)), ", ") + `) ON CONFLICT (bucket, org, model_alias) DO UPDATE SET ` +
		strings.Join(set, ", ")
}

// Write stores the batch in one transaction: each record with INSERT ... ON
// CONFLICT DO NOTHING, then the rollups of the records actually inserted.
//
// It talks to the driver's connection directly (sql.Conn.Raw), with one
// argument slice reused for every row: through database/sql each Exec
// converts and checks its 34 arguments into a fresh slice, which cost a
// tenth of the write's CPU and most of its allocations.
func (s *SQLite) Write(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("ledger: sqlite: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stmts == nil || s.stmts.dc != dc {
			// database/sql hands out another connection only after closing
			// the old one, so the old statements are dropped, not closed.
			s.stmts = &sqliteStmts{dc: dc}
		}
		return sqliteWrite(ctx, dc, s.stmts, recs)
	})
}

// sqliteDriverConn is what Write needs of the driver's connection; the
// modernc.org/sqlite connection has it.
type sqliteDriverConn interface {
	driver.ConnBeginTx
	driver.ConnPrepareContext
}

// sqliteWrite is Write on the driver's connection dc, which it may use only
// until it returns, with st, the statements prepared on dc (it prepares the
// missing ones).
func sqliteWrite(ctx context.Context, dc any, st *sqliteStmts, recs []Record) error {
	c, ok := dc.(sqliteDriverConn)
	if !ok {
		return fmt.Errorf("ledger: sqlite driver connection %T lacks BeginTx or PrepareContext", dc)
	}
	tx, err := c.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return fmt.Errorf("ledger: sqlite: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tx.Rollback()
		}
	}()
	sums := newSQLiteRollups()
	if st.ins == nil {
		if st.ins, err = sqlitePrepare(ctx, c, sqliteInsert); err != nil {
			return err
		}
	}
	ins := st.ins
	// Rows run under a context that cannot be cancelled: through
	// modernc.org/sqlite every Exec with a cancellable one starts a
	// goroutine that waits for the context or the statement's end, one per
	// row. Inside the write transaction a row waits for no lock (BEGIN
	// IMMEDIATE took it), so ctx is checked between rows instead, and
	// BEGIN and COMMIT, which can wait, keep ctx.
	rowCtx := context.WithoutCancel(ctx)
	y := rowYield{on: len(recs) < paceBelow}
	vals := make([]any, 0, len(recordColumns))
	var box rowBoxer
	args := make([]driver.NamedValue, len(recordColumns))
	for i := range recs {
		r := &recs[i]
		if err := y.next(ctx); err != nil {
			return fmt.Errorf("ledger: sqlite: %w", err)
		}
		res, err := ins.ExecContext(rowCtx, namedValues(args, appendRowValues(vals[:0], &box, r, sqliteTimeValue, sqliteBool)))
		if err != nil {
			return fmt.Errorf("ledger: sqlite insert %s: %w", r.RequestID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue // already stored
		}
		sums.add(r)
	}
	uargs := make([]driver.NamedValue, 3+len(rollupColumns))
	for j := range rollupTables {
		if len(sums.by[j]) == 0 {
			continue
		}
		if st.ups[j] == nil {
			if st.ups[j], err = sqlitePrepare(ctx, c, sqliteUpserts[j]); err != nil {
				return err
			}
		}
		up := st.ups[j]
		for k, v := range sums.by[j] {
			if err := y.next(ctx); err != nil {
				return fmt.Errorf("ledger: sqlite: %w", err)
			}
			vals = append(vals[:0], k.bucket, k.org, k.model)
			for _, x := range v {
				vals = append(vals, x)
			}
			if _, err := up.ExecContext(rowCtx, namedValues(uargs, vals)); err != nil {
				return fmt.Errorf("ledger: sqlite rollup: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		// A COMMIT that failed (SQLITE_BUSY, say) can leave the transaction
		// open; the deferred rollback ends it before the connection is reused.
		return fmt.Errorf("ledger: sqlite commit: %w", err)
	}
	done = true
	return nil
}

// yieldRows is how many rows the flusher writes between offers of the CPU
// (about 10 µs each, measured): a batch of a few hundred rows is
// milliseconds of CPU, and on a core shared with the request threads the
// kernel lets it run to the end of its time slice (1-3 ms) before a woken
// request thread gets the core, which was the gateway's p99 at a fixed
// rate.
const yieldRows = 8

// paceBelow is the batch size from which a write no longer yields: a full
// batch (at Options.FlushBatch's default) means the flusher is behind (the
// gateway is saturated), and then it takes its full share of the core so
// that the backlog does not grow (yielding, a 10 s closed-loop run left it
// 2.3 s behind).
const paceBelow = defaultFlushBatch

// rowYield paces a store write: before every row it checks the write's
// context and, if on, every yieldRows rows it lets waiting threads run.
type rowYield struct {
	on bool
	n  int
}

func (y *rowYield) next(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if y.n++; y.on && y.n%yieldRows == 0 {
		yieldThread()
	}
	return nil
}

// sqliteStmt is what sqliteWrite needs of a prepared statement.
type sqliteStmt interface {
	driver.StmtExecContext
	Close() error
}

func sqlitePrepare(ctx context.Context, c driver.ConnPrepareContext, query string) (sqliteStmt, error) {
	st, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite: %w", err)
	}
	x, ok := st.(sqliteStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("ledger: sqlite driver statement %T lacks ExecContext", st)
	}
	return x, nil
}

// namedValues fills args (len(vals) long) with vals as positional
// parameters and returns it. Every value is already a driver.Value (string,
// int64, float64).
func namedValues(args []driver.NamedValue, vals []any) []driver.NamedValue {
	for i, v := range vals {
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return args[:len(vals)]
}

// pruneChunk bounds one DELETE so the write lock is never held long.
const pruneChunk = 5000

// Prune deletes rows older than the cut-offs, in chunks, records one
// organisation at a time (see pruneRecordsByOrg).
func (s *SQLite) Prune(ctx context.Context, c Cutoffs) (int64, error) {
	var total int64
	del := func(query string, args ...any) error {
		args = append(args, pruneChunk)
		for {
			res, err := s.db.ExecContext(ctx, query, args...)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
			if n < pruneChunk {
				return nil
			}
		}
	}
	if !c.Records.IsZero() {
		cut := c.Records.UTC().Format(sqliteTime)
		next := func(after string, first bool) (string, bool, error) {
			return nextOrg(s.db.QueryRowContext(ctx, orgAfter(first, "?"), after).Scan)
		}
		err := pruneRecordsByOrg(next, func(org string) error {
			return del(`DELETE FROM usage_records WHERE rowid IN (SELECT rowid FROM usage_records WHERE org = ? AND time < ? LIMIT ?)`, org, cut)
		})
		if err != nil {
			return total, fmt.Errorf("ledger: sqlite prune: %w", err)
		}
	}
	for i, cut := range []time.Time{c.Minute, c.Hour, c.Day} {
		if cut.IsZero() {
			continue
		}
		// A bucket is deleted once it ends before the cut-off.
		bucket := sqliteBuckets(cut)[i]
		q := `DELETE FROM ` + rollupTables[i].name + ` WHERE rowid IN (SELECT rowid FROM ` + rollupTables[i].name + ` WHERE bucket < ? LIMIT ?)`
		if err := del(q, bucket); err != nil {
			return total, fmt.Errorf("ledger: sqlite prune: %w", err)
		}
	}
	return total, nil
}

// errStoreClosed is returned by stores used after Close.
var errStoreClosed = errors.New("ledger: store closed")
