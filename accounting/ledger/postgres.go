package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres stores records in PostgreSQL through pgx, for gateways with
// several replicas sharing one ledger. A batch is one transaction: the
// records are COPYed into a session temporary table, then inserted with ON
// CONFLICT (request_id) DO NOTHING, and the rows actually inserted (the
// INSERT's RETURNING) feed the three rollup upserts in the same statement.
// Migrations take an advisory lock, so replicas starting together migrate
// once.
//
// It holds one connection (the ledger writes from one goroutine) and
// reconnects after any error.
type Postgres struct {
	dsn string

	mu     sync.Mutex
	conn   *pgx.Conn
	temp   bool // the session's temporary table exists
	closed bool
}

// OpenPostgres connects to the database dsn names.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	p := &Postgres{dsn: dsn}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.connLocked(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Postgres) connLocked(ctx context.Context) (*pgx.Conn, error) {
	if p.closed {
		return nil, errStoreClosed
	}
	if p.conn != nil && !p.conn.IsClosed() {
		return p.conn, nil
	}
	cfg, err := pgx.ParseConfig(p.dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres DSN %s: %w", RedactDSN(p.dsn), err)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "aigw-ledger"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres connect: %w", err)
	}
	p.conn, p.temp = conn, false
	return conn, nil
}

// drop closes the connection after an error, so the next call reconnects
// to a clean session.
func (p *Postgres) dropLocked() {
	if p.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p.conn.Close(ctx)
		cancel()
		p.conn = nil
	}
}

// Close closes the connection.
func (p *Postgres) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked()
	p.closed = true
	return nil
}

// migrationLock is the advisory lock key migrations hold ("aigwledg").
const migrationLock = 0x6169677766646c67

var postgresMigrations = []string{
	1: `
CREATE TABLE usage_records (
	request_id text PRIMARY KEY,
	time timestamptz NOT NULL,
	org text NOT NULL,
	key_id text NOT NULL,
	user_id text NOT NULL,
	endpoint text NOT NULL,
	model_alias text NOT NULL,
	provider text NOT NULL,
	upstream_model text NOT NULL,
	stream boolean NOT NULL,
	prompt_tokens bigint NOT NULL,
	completion_tokens bigint NOT NULL,
	cached_tokens bigint NOT NULL,
	cache_write_tokens bigint NOT NULL,
	reasoning_tokens bigint NOT NULL,
	total_tokens bigint NOT NULL,
	usage_estimated boolean NOT NULL,
	time_to_first_token_ms double precision NOT NULL,
	total_time_ms double precision NOT NULL,
	cost_usd_micros bigint NOT NULL,
	priced boolean NOT NULL,
	cost_display_micros bigint NOT NULL,
	display_currency text NOT NULL,
	cache_hit boolean NOT NULL,
	tokens_saved bigint NOT NULL,
	outcome text NOT NULL,
	status integer NOT NULL,
	error_type text NOT NULL,
	error_message text NOT NULL,
	use_case text NOT NULL,
	vendor_type text NOT NULL,
	wedding_date text NOT NULL,
	wedding_related boolean NOT NULL
);
CREATE INDEX usage_records_time ON usage_records (time);
CREATE INDEX usage_records_org_time ON usage_records (org, time);
` + postgresRollupDDL("usage_rollup_minute") + postgresRollupDDL("usage_rollup_hour") + postgresRollupDDL("usage_rollup_day"),
	// 2: what a cache hit would have cost upstream.
	2: `ALTER TABLE usage_records ADD COLUMN cost_saved_usd_micros bigint NOT NULL DEFAULT 0;`,
	// 3: the x-request-id the client sent (not indexed: looked up rarely,
	// and every index is paid on every insert).
	3: `ALTER TABLE usage_records ADD COLUMN client_request_id text NOT NULL DEFAULT '';`,
	// 4: no index on time alone (as in SQLite): only pruning used it, and
	// Prune walks (org, time) instead.
	4: `DROP INDEX IF EXISTS usage_records_time;`,
}

func postgresRollupDDL(table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n\tbucket timestamptz NOT NULL,\n\torg text NOT NULL,\n\tmodel_alias text NOT NULL,\n", table)
	for _, c := range rollupColumns {
		fmt.Fprintf(&b, "\t%s bigint NOT NULL DEFAULT 0,\n", c)
	}
	b.WriteString("\tPRIMARY KEY (bucket, org, model_alias)\n);\n")
	return b.String()
}

// Migrate applies the pending schema versions under an advisory lock.
func (p *Postgres) Migrate(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.migrateLocked(ctx)
	if err != nil {
		p.dropLocked()
		return fmt.Errorf("ledger: postgres migrate: %w", err)
	}
	return nil
}

func (p *Postgres) migrateLocked(ctx context.Context) error {
	conn, err := p.connLocked(ctx)
	if err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	for v := current + 1; v < len(postgresMigrations); v++ {
		if _, err := tx.Exec(ctx, postgresMigrations[v]); err != nil {
			return fmt.Errorf("version %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func pgTimeValue(t time.Time) any { return t.UTC() }
func pgBool(b bool) any           { return b }

// postgresWrite is the statement that moves a COPYed batch into place:
// insert what is new, and add exactly those rows to the rollups.
var postgresWrite = func() string {
	cols := strings.Join(recordColumns, ", ")
	var b strings.Builder
	fmt.Fprintf(&b, "WITH ins AS (\n\tINSERT INTO usage_records (%s)\n\tSELECT %s FROM usage_records_in ORDER BY request_id\n\tON CONFLICT (request_id) DO NOTHING\n\tRETURNING time, org, model_alias, outcome, prompt_tokens, completion_tokens, cached_tokens, total_tokens, cost_usd_micros, cache_hit, tokens_saved, usage_estimated, priced\n)", cols, cols)
	sums := `count(*), count(*) FILTER (WHERE outcome <> 'ok'), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(total_tokens), sum(cost_usd_micros), count(*) FILTER (WHERE cache_hit), sum(tokens_saved), count(*) FILTER (WHERE usage_estimated), count(*) FILTER (WHERE NOT priced)`
	set := make([]string, len(rollupColumns))
	for i, c := range rollupColumns {
		set[i] = c + " = r." + c + " + EXCLUDED." + c
	}
	upsert := func(table, width string) string {
		return fmt.Sprintf("INSERT INTO %s AS r (bucket, org, model_alias, %s)\n\tSELECT date_trunc('%s', time, 'UTC'), org, model_alias, %s FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3\n\tON CONFLICT (bucket, org, model_alias) DO UPDATE SET %s",
			table, strings.Join(rollupColumns, ", "), width, sums, strings.Join(set, ", "))
	}
	for i, t := range rollupTables {
		if i < len(rollupTables)-1 {
			fmt.Fprintf(&b, ", r%d AS (\n\t%s\n\tRETURNING 1\n)", i, upsert(t.name, t.width))
			continue
		}
		fmt.Fprintf(&b, "\n%s", upsert(t.name, t.width))
	}
	return b.String()
}()

// Write stores the batch in one transaction (see Postgres).
func (p *Postgres) Write(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writeLocked(ctx, recs); err != nil {
		p.dropLocked()
		return fmt.Errorf("ledger: postgres write: %w", err)
	}
	return nil
}

func (p *Postgres) writeLocked(ctx context.Context, recs []Record) error {
	conn, err := p.connLocked(ctx)
	if err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if !p.temp {
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE IF NOT EXISTS usage_records_in (LIKE usage_records) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
	}
	rows := make([][]any, len(recs))
	var box rowBoxer
	for i := range recs {
		rows[i] = rowValues(&box, &recs[i], pgTimeValue, pgBool)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"usage_records_in"}, recordColumns, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, postgresWrite); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	p.temp = true
	return nil
}

// Prune deletes rows older than the cut-offs, in chunks.
func (p *Postgres) Prune(ctx context.Context, c Cutoffs) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, err := p.pruneLocked(ctx, c)
	if err != nil {
		p.dropLocked()
		return n, fmt.Errorf("ledger: postgres prune: %w", err)
	}
	return n, nil
}

func (p *Postgres) pruneLocked(ctx context.Context, c Cutoffs) (int64, error) {
	conn, err := p.connLocked(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	del := func(query string, args ...any) error {
		args = append(args, pruneChunk)
		for {
			tag, err := conn.Exec(ctx, query, args...)
			if err != nil {
				return err
			}
			total += tag.RowsAffected()
			if tag.RowsAffected() < pruneChunk {
				return nil
			}
		}
	}
	if !c.Records.IsZero() {
		next := func(after string, first bool) (string, bool, error) {
			return nextOrg(conn.QueryRow(ctx, orgAfter(first, "$1"), after).Scan)
		}
		err := pruneRecordsByOrg(next, func(org string) error {
			return del(`DELETE FROM usage_records WHERE request_id IN (SELECT request_id FROM usage_records WHERE org = $1 AND time < $2 LIMIT $3)`, org, c.Records)
		})
		if err != nil {
			return total, err
		}
	}
	for i, cut := range []time.Time{c.Minute, c.Hour, c.Day} {
		if cut.IsZero() {
			continue
		}
		t := rollupTables[i]
		q := fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid IN (SELECT ctid FROM %[1]s WHERE bucket < date_trunc('%[2]s', $1::timestamptz, 'UTC') LIMIT $2)`, t.name, t.width)
		if err := del(q, cut); err != nil {
			return total, err
		}
	}
	return total, nil
}
