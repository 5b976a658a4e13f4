package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Run statuses.
const (
	RunRunning  = "running"
	RunReported = "reported"
	RunClosed   = "closed"
)

// ErrNoRun: no such reconciliation run (or none has run yet).
var ErrNoRun = errors.New("no such reconciliation run")

// ErrNoDrift: the run has no drift with that id.
var ErrNoDrift = errors.New("no such drift in this run")

// Run is one reconciliation run's report header.
type Run struct {
	ID             string     `json:"runId"`
	RequestedBy    string     `json:"requestedBy"`
	IDPrefix       string     `json:"idPrefix,omitempty"`
	AutoRepair     bool       `json:"autoRepair"`
	Status         string     `json:"status"`
	StartedAt      time.Time  `json:"startedAt"`
	ReportedAt     *time.Time `json:"reportedAt,omitempty"`
	ClosedAt       *time.Time `json:"closedAt,omitempty"`
	TenantsChecked int        `json:"tenantsChecked"`
	TenantsSkipped int        `json:"tenantsSkipped"`
	ApprovedBy     string     `json:"approvedBy,omitempty"`
	ApprovedAt     *time.Time `json:"approvedAt,omitempty"`
	Summary        Summary    `json:"summary"`
}

// Summary counts a run's drifts.
type Summary struct {
	Total int `json:"total"`
	// ByKind counts every drift found, whatever became of it; Open those still open.
	ByKind map[Kind]int `json:"byKind"`
	Open   map[Kind]int `json:"open"`
	// SafeOpen and DecisionsOpen count the open drifts a repair signal, or decisions, can fix.
	SafeOpen      int `json:"safeOpen"`
	DecisionsOpen int `json:"decisionsOpen"`
	// ByState counts drifts by what became of them.
	ByState map[State]int `json:"byState"`
}

// Reports keeps reconciliation reports in PostgreSQL (migration 00014). Platform-level data:
// no tenant context, no row-level security.
type Reports struct {
	pool *pgxpool.Pool
}

// NewReports returns the report store over pool.
func NewReports(pool *pgxpool.Pool) *Reports { return &Reports{pool: pool} }

// Begin records the start of a run. Idempotent: create-if-absent on the run id, so a retried
// call, or a run continued as new, keeps the first row.
func (r *Reports) Begin(ctx context.Context, run Run) error {
	_, err := r.pool.Exec(ctx, `
		INSERT INTO reconciliation_runs (run_id, requested_by, id_prefix, auto_repair, started_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id) DO NOTHING`,
		run.ID, run.RequestedBy, run.IDPrefix, run.AutoRepair, run.StartedAt)
	if err != nil {
		return fmt.Errorf("reconcile: begin %s: %w", run.ID, err)
	}
	return nil
}

// Record writes drifts into the run's report. Idempotent: an upsert on (run, drift id), which
// refreshes what was found while the drift is open and leaves a resolved one as it is.
func (r *Reports) Record(ctx context.Context, runID string, drifts []Drift) error {
	if len(drifts) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, d := range drifts {
		b.Queue(`
			INSERT INTO reconciliation_drifts (run_id, drift_id, tenant_id, store, kind, severity, expected, found, repair)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (run_id, drift_id) DO UPDATE
			SET found = excluded.found, expected = excluded.expected, severity = excluded.severity
			WHERE reconciliation_drifts.state = 'open'`,
			runID, d.ID, d.TenantID, string(d.Store), string(d.Kind), string(d.Severity), d.Expected, d.Found, string(d.Repair))
	}
	if err := r.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("reconcile: record drifts of %s: %w", runID, err)
	}
	return nil
}

// Finish marks the run's checks done (status reported) with its tenant counts, and returns
// its summary. Idempotent: the counts are the workflow's totals, written as they are.
func (r *Reports) Finish(ctx context.Context, runID string, at time.Time, checked, skipped int) (Summary, error) {
	tag, err := r.pool.Exec(ctx, `
		UPDATE reconciliation_runs SET status = CASE WHEN status = 'closed' THEN status ELSE 'reported' END,
			reported_at = coalesce(reported_at, $2), tenants_checked = $3, tenants_skipped = $4
		WHERE run_id = $1`, runID, at, checked, skipped)
	if err != nil {
		return Summary{}, fmt.Errorf("reconcile: finish %s: %w", runID, err)
	}
	if tag.RowsAffected() == 0 {
		return Summary{}, fmt.Errorf("%w: %s", ErrNoRun, runID)
	}
	return r.Summary(ctx, runID)
}

// Approve records who approved the run's safe repairs (the first approval is kept).
func (r *Reports) Approve(ctx context.Context, runID, by string, at time.Time) error {
	_, err := r.pool.Exec(ctx, `UPDATE reconciliation_runs SET approved_by = coalesce(approved_by, $2), approved_at = coalesce(approved_at, $3)
		WHERE run_id = $1`, runID, by, at)
	if err != nil {
		return fmt.Errorf("reconcile: approve %s: %w", runID, err)
	}
	return nil
}

// Close marks the run closed: it takes no more repairs or decisions. Idempotent.
func (r *Reports) Close(ctx context.Context, runID string, at time.Time) error {
	_, err := r.pool.Exec(ctx, `UPDATE reconciliation_runs SET status = 'closed', closed_at = coalesce(closed_at, $2) WHERE run_id = $1`, runID, at)
	if err != nil {
		return fmt.Errorf("reconcile: close %s: %w", runID, err)
	}
	return nil
}

// Resolve records what became of a drift (repaired, failed, gone, refused), by whom. Only an
// open or failed drift changes, so a retried call, or a second decision on a drift already
// repaired, changes nothing; it reports whether it changed the drift.
func (r *Reports) Resolve(ctx context.Context, runID, driftID string, o Outcome, by string, at time.Time) (bool, error) {
	tag, err := r.pool.Exec(ctx, `
		UPDATE reconciliation_drifts SET state = $3, note = $4, resolved_by = $5, resolved_at = $6
		WHERE run_id = $1 AND drift_id = $2 AND state IN ('open', 'failed')`,
		runID, driftID, string(o.State), truncate(o.Note, 500), by, at)
	if err != nil {
		return false, fmt.Errorf("reconcile: resolve %s/%s: %w", runID, driftID, err)
	}
	return tag.RowsAffected() == 1, nil
}

const runColumns = `run_id, requested_by, id_prefix, auto_repair, status, started_at, reported_at, closed_at,
	tenants_checked, tenants_skipped, coalesce(approved_by, ''), approved_at`

func scanRun(row pgx.Row) (Run, error) {
	var run Run
	err := row.Scan(&run.ID, &run.RequestedBy, &run.IDPrefix, &run.AutoRepair, &run.Status, &run.StartedAt, &run.ReportedAt,
		&run.ClosedAt, &run.TenantsChecked, &run.TenantsSkipped, &run.ApprovedBy, &run.ApprovedAt)
	return run, err
}

// Get returns a run's header and summary; ErrNoRun when there is none.
func (r *Reports) Get(ctx context.Context, runID string) (Run, error) {
	return r.getRun(ctx, `SELECT `+runColumns+` FROM reconciliation_runs WHERE run_id = $1`, runID)
}

// Latest returns the run started last; ErrNoRun before the first.
func (r *Reports) Latest(ctx context.Context) (Run, error) {
	return r.getRun(ctx, `SELECT `+runColumns+` FROM reconciliation_runs ORDER BY started_at DESC, run_id DESC LIMIT 1`)
}

// LatestReported returns the latest run whose checks are done (the metric's source).
func (r *Reports) LatestReported(ctx context.Context) (Run, error) {
	return r.getRun(ctx, `SELECT `+runColumns+` FROM reconciliation_runs WHERE status <> 'running' ORDER BY started_at DESC, run_id DESC LIMIT 1`)
}

func (r *Reports) getRun(ctx context.Context, sql string, args ...any) (Run, error) {
	run, err := scanRun(r.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, ErrNoRun
	}
	if err != nil {
		return Run{}, fmt.Errorf("reconcile: read run: %w", err)
	}
	if run.Summary, err = r.Summary(ctx, run.ID); err != nil {
		return Run{}, err
	}
	return run, nil
}

// Summary counts a run's drifts by kind and state: one aggregate over the run's rows.
func (r *Reports) Summary(ctx context.Context, runID string) (Summary, error) {
	rows, err := r.pool.Query(ctx, `SELECT kind, repair, state, count(*) FROM reconciliation_drifts WHERE run_id = $1 GROUP BY 1, 2, 3`, runID)
	if err != nil {
		return Summary{}, fmt.Errorf("reconcile: summary of %s: %w", runID, err)
	}
	s := Summary{ByKind: map[Kind]int{}, Open: map[Kind]int{}, ByState: map[State]int{}}
	var kind, repair, state string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&kind, &repair, &state, &n}, func() error {
		s.Total += n
		s.ByKind[Kind(kind)] += n
		s.ByState[State(state)] += n
		if State(state) == StateOpen {
			s.Open[Kind(kind)] += n
			switch Repair(repair) {
			case RepairSafe:
				s.SafeOpen += n
			case RepairDecision:
				s.DecisionsOpen += n
			}
		}
		return nil
	})
	if err != nil {
		return Summary{}, fmt.Errorf("reconcile: summary of %s: %w", runID, err)
	}
	return s, nil
}

const driftColumns = `drift_id, tenant_id, store, kind, severity, expected, found, repair, state,
	coalesce(resolved_by, ''), coalesce(resolved_at, 'epoch'::timestamptz), note, found_at`

func scanDrift(row pgx.CollectableRow) (Drift, error) {
	var d Drift
	err := row.Scan(&d.ID, &d.TenantID, &d.Store, &d.Kind, &d.Severity, &d.Expected, &d.Found, &d.Repair, &d.State,
		&d.ResolvedBy, &d.ResolvedAt, &d.Note, &d.FoundAt)
	if d.ResolvedAt.Equal(time.Unix(0, 0)) {
		d.ResolvedAt = time.Time{}
	}
	return d, err
}

// Drifts returns up to limit drifts of the run ordered by id after after, and whether more follow.
func (r *Reports) Drifts(ctx context.Context, runID, after string, limit int) ([]Drift, bool, error) {
	return r.drifts(ctx, `SELECT `+driftColumns+` FROM reconciliation_drifts WHERE run_id = $1 AND drift_id > $2 ORDER BY drift_id LIMIT $3`,
		limit, runID, after, limit+1)
}

// OpenDrifts returns up to limit open drifts of the run of one repair class after after.
func (r *Reports) OpenDrifts(ctx context.Context, runID string, repair Repair, after string, limit int) ([]Drift, bool, error) {
	return r.drifts(ctx, `SELECT `+driftColumns+` FROM reconciliation_drifts
		WHERE run_id = $1 AND repair = $2 AND state = 'open' AND drift_id > $3 ORDER BY drift_id LIMIT $4`,
		limit, runID, string(repair), after, limit+1)
}

func (r *Reports) drifts(ctx context.Context, sql string, limit int, args ...any) ([]Drift, bool, error) {
	rows, err := r.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("reconcile: read drifts: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDrift)
	if err != nil {
		return nil, false, fmt.Errorf("reconcile: read drifts: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// Drift returns one drift of a run; ErrNoDrift when the run has none with that id.
func (r *Reports) Drift(ctx context.Context, runID, driftID string) (Drift, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+driftColumns+` FROM reconciliation_drifts WHERE run_id = $1 AND drift_id = $2`, runID, driftID)
	if err != nil {
		return Drift{}, fmt.Errorf("reconcile: read drift: %w", err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDrift)
	if errors.Is(err, pgx.ErrNoRows) {
		return Drift{}, fmt.Errorf("%w: %s", ErrNoDrift, driftID)
	}
	if err != nil {
		return Drift{}, fmt.Errorf("reconcile: read drift: %w", err)
	}
	return d, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
