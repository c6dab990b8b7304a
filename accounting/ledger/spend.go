package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aigw/aigw/accounting"
)

// SpendQuerier is implemented by stores that can sum what an org spent.
type SpendQuerier interface {
	// SpentSince returns the sum of cost_usd_micros of org's records with
	// a time at or after since.
	SpentSince(ctx context.Context, org string, since time.Time) (accounting.MicroUSD, error)
}

// errNoSpendQuery is returned by Ledger.SpentSince when its store cannot
// sum spend.
var errNoSpendQuery = errors.New("ledger: the store cannot sum spend")

// SpentSince returns what org spent since the given time, as the store
// holds it. Budgets use it to resume a period's spend after a restart.
// Records still waiting in the spill for the store (a store outage, the
// last flush interval) are not included, so after an outage the sum errs
// low by what the spill holds; Stats().Pending says how many those are.
func (l *Ledger) SpentSince(ctx context.Context, org string, since time.Time) (accounting.MicroUSD, error) {
	q, ok := l.store.(SpendQuerier)
	if !ok {
		return 0, errNoSpendQuery
	}
	return q.SpentSince(ctx, org, since)
}

// SpentSince implements SpendQuerier (the usage_records_org_time index
// serves it).
func (s *SQLite) SpentSince(ctx context.Context, org string, since time.Time) (accounting.MicroUSD, error) {
	var sum int64
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(cost_usd_micros), 0) FROM usage_records WHERE org = ? AND time >= ?`,
		org, sqliteTimeValue(since)).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("ledger: sqlite spend: %w", err)
	}
	return accounting.MicroUSD(sum), nil
}

// SpentSince implements SpendQuerier.
func (p *Postgres) SpentSince(ctx context.Context, org string, since time.Time) (accounting.MicroUSD, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	conn, err := p.connLocked(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: postgres spend: %w", err)
	}
	var sum int64
	if err := conn.QueryRow(ctx, `SELECT COALESCE(SUM(cost_usd_micros), 0)::bigint FROM usage_records WHERE org = $1 AND time >= $2`,
		org, pgTimeValue(since)).Scan(&sum); err != nil {
		p.dropLocked()
		return 0, fmt.Errorf("ledger: postgres spend: %w", err)
	}
	return accounting.MicroUSD(sum), nil
}
