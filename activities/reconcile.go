package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/reconcile"
)

// ErrTypeNotDecidable is the failure type of a decision naming a drift that no decision can
// repair (unknown, safe, manual, or already resolved). Permanent.
const ErrTypeNotDecidable = "NotDecidable"

// Actions of a decided repair (reconcile.Action), each run by the workflow as the lifecycle
// activity that does the same: offboarding's purge steps, provisioning's steps.
const (
	RepairDestroyKeys    = string(reconcile.ActionDestroyKeys)
	RepairPurgePostgres  = string(reconcile.ActionPurgePostgres)
	RepairDropMongo      = string(reconcile.ActionDropMongo)
	RepairPurgeRedis     = string(reconcile.ActionPurgeRedis)
	RepairEnsureKeys     = string(reconcile.ActionEnsureKeys)
	RepairProvisionMongo = string(reconcile.ActionProvisionMongo)
)

// checker builds the reconciliation checker over the activities' stores (cheap: no I/O).
func (a *Activities) checker() *reconcile.Checker {
	return &reconcile.Checker{Registry: a.Registry, Tenants: a.Tenants, Mongo: a.Mongo, Redis: a.Redis}
}

// reports returns the report store, or a permanent failure when the worker has none.
func (a *Activities) reports() (*reconcile.Reports, error) {
	if a.Reports == nil {
		err := errors.New("this worker has no reconciliation report store")
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	return a.Reports, nil
}

// ReconcileBeginInput starts a reconciliation report.
type ReconcileBeginInput struct {
	RunID       string
	RequestedBy string
	IDPrefix    string
	AutoRepair  bool
	StartedAt   time.Time
}

// ReconcileBeginResult says whether safe repairs run without approval: asked by the run, or
// configured on the worker (RECONCILE_AUTO_REPAIR).
type ReconcileBeginResult struct {
	AutoRepair bool
}

// BeginReconciliation records the start of a run in the report store. Idempotent:
// create-if-absent on the run id.
func (a *Activities) BeginReconciliation(ctx context.Context, in ReconcileBeginInput) (ReconcileBeginResult, error) {
	r, err := a.reports()
	if err != nil {
		return ReconcileBeginResult{}, err
	}
	auto := in.AutoRepair || a.ReconcileAutoRepair
	return ReconcileBeginResult{AutoRepair: auto}, r.Begin(ctx, reconcile.Run{
		ID: in.RunID, RequestedBy: in.RequestedBy, IDPrefix: in.IDPrefix, AutoRepair: auto, StartedAt: in.StartedAt,
	})
}

// ReconcilePageInput asks for one page of the registry to be checked.
type ReconcilePageInput struct {
	RunID    string
	IDPrefix string
	// After is the last tenant id of the previous page ("" for the first).
	After    string
	Limit    int
	Parallel int
}

// ReconcilePageResult counts what one page's checks found (the drifts are in the report).
type ReconcilePageResult struct {
	Checked int
	Skipped int
	Drifts  int
	Last    string
	More    bool
}

// AuditDetails puts the counts in the step's audit event.
func (r ReconcilePageResult) AuditDetails() map[string]string {
	return map[string]string{"checked": strconv.Itoa(r.Checked), "skipped": strconv.Itoa(r.Skipped), "drifts": strconv.Itoa(r.Drifts)}
}

// ReconcileTenantPage checks one page of tenants against the stores (reconcile.Checker: a few
// point lookups per store and tenant, Parallel tenants at a time) and writes what differs into
// the run's report, heartbeating after each tenant. Idempotent: it only reads the stores, and
// drifts are upserted under deterministic ids, so a retried page rewrites the same rows.
func (a *Activities) ReconcileTenantPage(ctx context.Context, in ReconcilePageInput) (ReconcilePageResult, error) {
	r, err := a.reports()
	if err != nil {
		return ReconcilePageResult{}, err
	}
	limit := in.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	res, err := a.checker().CheckPage(ctx, in.IDPrefix, in.After, limit, max(in.Parallel, 1), func(done int) {
		activity.RecordHeartbeat(ctx, done)
	})
	if err != nil {
		return ReconcilePageResult{}, err
	}
	if err := r.Record(ctx, in.RunID, res.Drifts); err != nil {
		return ReconcilePageResult{}, err
	}
	return ReconcilePageResult{Checked: res.Checked, Skipped: res.Skipped, Drifts: len(res.Drifts), Last: res.Last, More: res.More}, nil
}

// ReconcileOrphanInput asks for one orphan search of a run.
type ReconcileOrphanInput struct {
	RunID    string
	IDPrefix string
	// Count is the SCAN COUNT of the Redis walk (0: tenantredis.DefaultBatch).
	Count int64
}

// ReconcileOrphanResult counts the orphans found (the drifts are in the report).
type ReconcileOrphanResult struct {
	Orphans int
	// Steps counts the SCAN steps of the Redis walk.
	Steps int
}

// AuditDetails puts the counts in the step's audit event.
func (r ReconcileOrphanResult) AuditDetails() map[string]string {
	return map[string]string{"orphans": strconv.Itoa(r.Orphans), "steps": strconv.Itoa(r.Steps)}
}

// FindMongoOrphans lists the tenant_* databases once (one listDatabases with a name filter)
// and reports those whose tenant is unknown or offboarded. Idempotent: read-only, and drifts
// are upserts under deterministic ids.
func (a *Activities) FindMongoOrphans(ctx context.Context, in ReconcileOrphanInput) (ReconcileOrphanResult, error) {
	r, err := a.reports()
	if err != nil {
		return ReconcileOrphanResult{}, err
	}
	drifts, err := a.checker().MongoOrphans(ctx, in.IDPrefix)
	if err != nil {
		return ReconcileOrphanResult{}, err
	}
	return ReconcileOrphanResult{Orphans: len(drifts), Steps: 1}, r.Record(ctx, in.RunID, drifts)
}

// redisOrphanProgress is what FindRedisOrphans heartbeats, and resumes from.
type redisOrphanProgress struct {
	Cursor  uint64
	Orphans int
	Steps   int
}

// FindRedisOrphans walks the Redis keyspace once (SCAN MATCH "tenant:{<prefix>*" with a
// bounded COUNT) and reports the key prefixes of tenants unknown or offboarded, writing them
// into the report step by step and heartbeating the cursor. Idempotent and resumable: a retry
// continues from the last heartbeat's cursor, and drifts are upserts under deterministic ids.
// A cursor is only valid on the Redis process that issued it: after a restart or failover the
// resumed walk may miss keys, which the next run finds.
func (a *Activities) FindRedisOrphans(ctx context.Context, in ReconcileOrphanInput) (ReconcileOrphanResult, error) {
	r, err := a.reports()
	if err != nil {
		return ReconcileOrphanResult{}, err
	}
	var p redisOrphanProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			p = redisOrphanProgress{}
		}
	}
	c := a.checker()
	known := map[string]bool{}
	for {
		drifts, next, err := c.RedisOrphans(ctx, in.IDPrefix, p.Cursor, in.Count, known)
		if err != nil {
			return ReconcileOrphanResult{Orphans: p.Orphans, Steps: p.Steps}, err
		}
		if err := r.Record(ctx, in.RunID, drifts); err != nil {
			return ReconcileOrphanResult{Orphans: p.Orphans, Steps: p.Steps}, err
		}
		p.Cursor, p.Orphans, p.Steps = next, p.Orphans+len(drifts), p.Steps+1
		activity.RecordHeartbeat(ctx, p)
		if err := ctx.Err(); err != nil {
			return ReconcileOrphanResult{Orphans: p.Orphans, Steps: p.Steps}, err
		}
		if next == 0 {
			return ReconcileOrphanResult{Orphans: p.Orphans, Steps: p.Steps}, nil
		}
	}
}

// ReconcileFinishInput ends a run's checks.
type ReconcileFinishInput struct {
	RunID   string
	At      time.Time
	Checked int
	Skipped int
}

// ReconcileSummary counts a run's drifts (from the report store, so a drift found twice counts
// once).
type ReconcileSummary struct {
	Total         int
	SafeOpen      int
	DecisionsOpen int
	ByKind        map[string]int `json:",omitempty"`
}

// AuditDetails puts the counts in the step's audit event.
func (s ReconcileSummary) AuditDetails() map[string]string {
	d := map[string]string{"drifts": strconv.Itoa(s.Total), "safeOpen": strconv.Itoa(s.SafeOpen), "decisionsOpen": strconv.Itoa(s.DecisionsOpen)}
	for k, n := range s.ByKind {
		d["kind."+k] = strconv.Itoa(n)
	}
	return d
}

func summaryOf(s reconcile.Summary) ReconcileSummary {
	out := ReconcileSummary{Total: s.Total, SafeOpen: s.SafeOpen, DecisionsOpen: s.DecisionsOpen, ByKind: map[string]int{}}
	for k, n := range s.ByKind {
		out.ByKind[string(k)] = n
	}
	return out
}

// FinishReconciliation marks the run's checks done and returns its summary. Idempotent: the
// counts are written as given, the summary is read from the report.
func (a *Activities) FinishReconciliation(ctx context.Context, in ReconcileFinishInput) (ReconcileSummary, error) {
	r, err := a.reports()
	if err != nil {
		return ReconcileSummary{}, err
	}
	s, err := r.Finish(ctx, in.RunID, in.At, in.Checked, in.Skipped)
	if err != nil {
		return ReconcileSummary{}, err
	}
	activity.GetLogger(ctx).Info("reconciliation reported", "run_id", in.RunID, "checked", in.Checked, "drifts", s.Total)
	return summaryOf(s), nil
}

// RepairSafeInput asks for one page of a run's safe repairs.
type RepairSafeInput struct {
	RunID      string
	ApprovedBy string
	At         time.Time
	After      string
	Limit      int
}

// RepairSafeResult counts what a page of safe repairs did.
type RepairSafeResult struct {
	Repaired int
	Gone     int
	Refused  int
	Failed   int
	Last     string
	More     bool
}

// AuditDetails puts the counts in the step's audit event.
func (r RepairSafeResult) AuditDetails() map[string]string {
	return map[string]string{"repaired": strconv.Itoa(r.Repaired), "gone": strconv.Itoa(r.Gone), "refused": strconv.Itoa(r.Refused), "failed": strconv.Itoa(r.Failed)}
}

// RepairSafeDrifts runs the safe repairs of one page of a run's open safe drifts: each is
// checked again and repaired (reconcile.Checker.RepairSafe: create a missing index, write the
// context record from the registry), resolved in the report, and audited with one event (in
// the tenant's chain while it is open) naming the approver. Heartbeats after each drift.
//
// Idempotent: each repair re-checks first (a drift already repaired is found gone), only an
// open drift is resolved, and each drift's audit event has a deterministic id (workflow, run,
// activity, drift), so a retried page repeats nothing and writes no event twice.
func (a *Activities) RepairSafeDrifts(ctx context.Context, in RepairSafeInput) (RepairSafeResult, error) {
	r, err := a.reports()
	if err != nil {
		return RepairSafeResult{}, err
	}
	limit := in.Limit
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	if err := r.Approve(ctx, in.RunID, in.ApprovedBy, in.At); err != nil {
		return RepairSafeResult{}, err
	}
	drifts, more, err := r.OpenDrifts(ctx, in.RunID, reconcile.RepairSafe, in.After, limit)
	if err != nil {
		return RepairSafeResult{}, err
	}
	res := RepairSafeResult{More: more}
	c := a.checker()
	for i, d := range drifts {
		o, err := c.RepairSafe(ctx, d)
		if err != nil {
			// Not retried here: the drift stays failed in the report, the others go on.
			o = reconcile.Outcome{State: reconcile.StateFailed, Note: truncate(err.Error(), 300)}
		}
		if err := a.auditRepair(ctx, in.RunID, d, o, in.ApprovedBy, false); err != nil {
			return RepairSafeResult{}, err
		}
		if _, err := r.Resolve(ctx, in.RunID, d.ID, o, in.ApprovedBy, in.At); err != nil {
			return RepairSafeResult{}, err
		}
		switch o.State {
		case reconcile.StateRepaired:
			res.Repaired++
		case reconcile.StateGone:
			res.Gone++
		case reconcile.StateRefused:
			res.Refused++
		default:
			res.Failed++
		}
		res.Last = d.ID
		activity.RecordHeartbeat(ctx, i+1)
	}
	return res, nil
}

// auditRepair writes the audit event of one repair (or of its re-check finding nothing to
// do). Its id is deterministic per activity and drift, so a retry finds it written.
func (a *Activities) auditRepair(ctx context.Context, runID string, d reconcile.Drift, o reconcile.Outcome, by string, decided bool) error {
	info := activity.GetInfo(ctx)
	outcome := audit.OutcomeSuccess
	if o.State == reconcile.StateFailed {
		outcome = audit.OutcomeFailure
	}
	approval := "approved"
	if decided {
		approval = "decided"
	}
	e := audit.Event{
		ID:       audit.WorkflowEventID(info.WorkflowExecution.ID, info.WorkflowExecution.RunID, "activity/"+info.ActivityID+"/repair/"+d.ID),
		TenantID: d.TenantID,
		Actor:    audit.Actor{Type: audit.ActorOperator, ID: nonEmpty(by, "operator")},
		Action:   "reconciliation.repair", Resource: "tenant/" + d.TenantID, Outcome: outcome, Reason: o.Note,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		Details: map[string]string{"reconciliationRun": runID, "drift": d.ID, "kind": string(d.Kind), "store": string(d.Store),
			"repair": string(d.Repair), "state": string(o.State), approval + "By": nonEmpty(by, "operator")},
		At: time.Now().UTC(),
	}
	var err error
	if d.Kind == reconcile.OrphanRows || d.Kind == reconcile.OrphanDatabase || d.Kind == reconcile.OrphanKeys {
		_, err = a.Audit.Platform(ctx, e) // the tenant is gone or unknown: its chain is no more
	} else {
		_, err = a.Audit.Record(ctx, e)
	}
	if err != nil {
		return fmt.Errorf("audit repair of %s: %w", d.ID, err)
	}
	return nil
}

// DecisionInput is a platform admin's decision to repair one drift of a run.
type DecisionInput struct {
	RunID   string
	DriftID string
	By      string
	At      time.Time
}

// DecisionPlan says how to carry out a decision: the tenant and the actions (Repair*
// constants) to run, in order; or, with no action, what the re-check found (State, Note:
// gone or refused), already recorded.
type DecisionPlan struct {
	TenantID string
	Actions  []string `json:",omitempty"`
	State    string   `json:",omitempty"`
	Note     string   `json:",omitempty"`
}

// PlanDecision checks a decided drift again (reconcile.Checker.Plan: the orphan's tenant is
// still unknown or offboarded, the open tenant still open, the drift still there) and returns
// the actions that repair it. When there is nothing to do it resolves the drift (gone or
// refused) and audits that. A drift no decision can repair is a permanent NotDecidable
// failure. Idempotent: the re-check only reads, and resolving an already resolved drift
// changes nothing (its audit event has a deterministic id).
func (a *Activities) PlanDecision(ctx context.Context, in DecisionInput) (DecisionPlan, error) {
	r, err := a.reports()
	if err != nil {
		return DecisionPlan{}, err
	}
	d, err := r.Drift(ctx, in.RunID, in.DriftID)
	if errors.Is(err, reconcile.ErrNoDrift) {
		return DecisionPlan{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotDecidable, err)
	}
	if err != nil {
		return DecisionPlan{}, err
	}
	actions, o, err := a.checker().Plan(ctx, d)
	if errors.Is(err, reconcile.ErrNotDecidable) {
		return DecisionPlan{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotDecidable, err)
	}
	if err != nil {
		return DecisionPlan{}, err
	}
	plan := DecisionPlan{TenantID: d.TenantID}
	if len(actions) == 0 {
		plan.State, plan.Note = string(o.State), o.Note
		if err := a.auditRepair(ctx, in.RunID, d, o, in.By, true); err != nil {
			return DecisionPlan{}, err
		}
		if _, err := r.Resolve(ctx, in.RunID, d.ID, o, in.By, in.At); err != nil {
			return DecisionPlan{}, err
		}
		return plan, nil
	}
	for _, act := range actions {
		plan.Actions = append(plan.Actions, string(act))
	}
	return plan, nil
}

// CompleteDecisionInput reports how a decided repair's actions went.
type CompleteDecisionInput struct {
	RunID   string
	DriftID string
	By      string
	At      time.Time
	Actions []string
	// Error is the first action's failure ("" when every action succeeded).
	Error string
}

// CompleteDecisionResult is the drift's state after the decision.
type CompleteDecisionResult struct {
	State string
}

// CompleteDecision resolves a decided drift in the report (repaired, or failed with the
// action's error, after which another decision may retry it) and audits the repair, naming the
// admin who decided it. Idempotent: only an open or failed drift is resolved, and the audit
// event's id is deterministic.
func (a *Activities) CompleteDecision(ctx context.Context, in CompleteDecisionInput) (CompleteDecisionResult, error) {
	r, err := a.reports()
	if err != nil {
		return CompleteDecisionResult{}, err
	}
	d, err := r.Drift(ctx, in.RunID, in.DriftID)
	if err != nil {
		return CompleteDecisionResult{}, err
	}
	o := reconcile.Outcome{State: reconcile.StateRepaired, Note: "ran " + strings.Join(in.Actions, ", ")}
	if in.Error != "" {
		o = reconcile.Outcome{State: reconcile.StateFailed, Note: truncate(in.Error, 300)}
	}
	if err := a.auditRepair(ctx, in.RunID, d, o, in.By, true); err != nil {
		return CompleteDecisionResult{}, err
	}
	if _, err := r.Resolve(ctx, in.RunID, d.ID, o, in.By, in.At); err != nil {
		return CompleteDecisionResult{}, err
	}
	return CompleteDecisionResult{State: string(o.State)}, nil
}

// ReconcileCloseInput closes a run.
type ReconcileCloseInput struct {
	RunID string
	At    time.Time
}

// CloseReconciliation marks the run closed in the report. Idempotent: closing a closed run
// changes nothing.
func (a *Activities) CloseReconciliation(ctx context.Context, in ReconcileCloseInput) error {
	r, err := a.reports()
	if err != nil {
		return err
	}
	return r.Close(ctx, in.RunID, in.At)
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
