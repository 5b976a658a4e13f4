package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
)

// ReconcileWorkflow is the type name of ReconcileTenants.
const ReconcileWorkflow = "ReconcileTenants"

// Signals of a reconciliation run, for the API, the CLI and `temporal workflow signal`.
const (
	// RepairSignal approves the run's safe repairs (input: the approver's name).
	RepairSignal = "repair"
	// DecideSignal is a platform admin's decision to repair one drift that deletes data or puts
	// an empty container back (input: DecisionSignal).
	DecideSignal = "decide"
	// CloseSignal ends the run's wait for approval and decisions (input: the operator's name).
	CloseSignal = "close"
)

// Defaults of a reconciliation run.
const (
	// DefaultReconcilePage is how many tenants one activity checks.
	DefaultReconcilePage = 100
	// DefaultReconcileParallel is how many tenants of a page are checked at once: the checks
	// wait on the stores' round trips, which overlap; on a 2-core machine running the stores
	// too, more than a few only adds contention (docs/reconciliation.md).
	DefaultReconcileParallel = 4
	// DefaultReconcileTenantsPerRun bounds one run's history: past it, the run continues as new.
	DefaultReconcileTenantsPerRun = 2000
	// DefaultDecisionWindow is how long a run waits for approval and decisions after its report:
	// under a day, so the next daily run is not skipped for overlapping this one.
	DefaultDecisionWindow = 20 * time.Hour
	// reconcileHistoryLimit: a run waiting for decisions continues as new past this many events.
	reconcileHistoryLimit = 10000
)

// Phases of a reconciliation run (ReconcileProgress.Phase).
const (
	PhaseChecking = "checking"
	PhaseAwaiting = "awaiting-decisions"
	PhaseClosed   = "closed"
)

// DecisionSignal names the drift a platform admin decided to repair, and who decided. Runs
// that verify decisions (operatorDecisionsChange) read only Decision, the id of the recorded
// decision, whose subject is the drift: DriftID and By are those of older runs.
type DecisionSignal struct {
	DriftID  string
	By       string
	Decision string `json:",omitempty"`
}

// ReconcileInput starts (or continues) a reconciliation run. The zero value is what the daily
// schedule starts: every tenant, defaults, safe repairs on approval (or automatically when the
// worker is configured so).
type ReconcileInput struct {
	// RunID names the report; "" : the workflow id (stable across continue-as-new).
	RunID       string
	RequestedBy string
	// IDPrefix limits the run to tenants whose id starts with it (and to orphans whose id
	// does); "" : every tenant.
	IDPrefix string
	// AutoRepair runs the safe repairs without waiting for approval.
	AutoRepair bool
	// PageSize, Parallel, TenantsPerRun, RedisScanCount and DecisionWindow override the
	// defaults (0 keeps them).
	PageSize       int
	Parallel       int
	TenantsPerRun  int
	RedisScanCount int64
	DecisionWindow time.Duration
	StepAttempts   int32
	StepTimeout    time.Duration

	// Carried across continue-as-new.
	State ReconcileState
}

// ReconcileState is where a run stands, carried across continue-as-new.
type ReconcileState struct {
	Begun      bool
	AutoRepair bool
	StartedAt  time.Time
	// After is the last tenant id checked.
	After    string
	Checked  int
	Skipped  int
	Reported bool
	Deadline time.Time
	Summary  activities.ReconcileSummary
	Repaired int
	Decided  int
}

// ReconcileResult is what a run found and did.
type ReconcileResult struct {
	RunID    string
	Checked  int
	Skipped  int
	Summary  activities.ReconcileSummary
	Repaired int
	Decided  int
	ClosedBy string
}

// ReconcileProgress is the answer to ProgressQuery.
type ReconcileProgress struct {
	RunID    string
	Phase    string
	Checked  int
	Skipped  int
	Summary  activities.ReconcileSummary
	Repaired int
	Decided  int
	Deadline time.Time `json:",omitzero"`
	Signals  []string  `json:",omitempty"`
	// LastRefusal is the latest signal the run refused (see Progress.LastRefusal), and
	// Refusals how many this run (since its last continue-as-new) refused.
	LastRefusal string `json:",omitempty"`
	Refusals    int    `json:",omitempty"`
}

// ReconcileTenants compares the registry with the stores for every tenant, finds orphaned data,
// writes a report, and repairs: safe repairs (missing index, missing or stale context record)
// once approved with RepairSignal (at once with AutoRepair), and each deletion or re-creation
// of a container only on a platform admin's DecideSignal naming the drift, through the same
// activities as offboarding's purge and provisioning. Every repair is audited.
//
// Tenants are checked a page per activity (heartbeating), and the run continues as new every
// TenantsPerRun tenants, and while it waits for decisions past reconcileHistoryLimit events,
// so its history stays bounded whatever the number of tenants. The orphan search runs once,
// after the last page. A run with nothing to repair closes at once; otherwise it waits for
// signals until DecisionWindow has passed, CloseSignal arrives, or nothing is left to do.
// Deterministic: times come from workflow time, drifts live in the report store, not in the
// history.
func ReconcileTenants(ctx workflow.Context, in ReconcileInput) (ReconcileResult, error) {
	if in.RunID == "" {
		in.RunID = workflow.GetInfo(ctx).WorkflowExecution.ID
	}
	if in.State.StartedAt.IsZero() {
		in.State.StartedAt = workflow.Now(ctx)
	}
	w := &reconciler{ctx: ctx, in: in, st: in.State, phase: PhaseChecking}
	if w.st.Reported {
		w.phase = PhaseAwaiting
	}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (ReconcileProgress, error) { return w.progressNow(), nil }); err != nil {
		return ReconcileResult{}, err
	}
	res, err := w.run()
	if err != nil && !isContinueAsNew(err) {
		// The report says the run is over; the next run starts afresh.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		_ = workflow.ExecuteActivity(stepOptions(dctx, in.StepAttempts, in.StepTimeout), a.CloseReconciliation,
			activities.ReconcileCloseInput{RunID: in.RunID, At: workflow.Now(ctx)}).Get(dctx, nil)
	}
	return res, err
}

func isContinueAsNew(err error) bool {
	var can *workflow.ContinueAsNewError
	return errors.As(err, &can)
}

type reconciler struct {
	ctx   workflow.Context
	in    ReconcileInput
	st    ReconcileState
	phase string
	// verified: signals carry recorded decisions (operatorDecisionsChange); decisions numbers
	// their claims and refusals, lastRefusal is the latest.
	verified    bool
	decisions   claims
	lastRefusal string
}

func (w *reconciler) progressNow() ReconcileProgress {
	p := ReconcileProgress{RunID: w.in.RunID, Phase: w.phase, Checked: w.st.Checked, Skipped: w.st.Skipped,
		Summary: w.st.Summary, Repaired: w.st.Repaired, Decided: w.st.Decided,
		LastRefusal: w.lastRefusal, Refusals: w.decisions.refused}
	if w.phase == PhaseAwaiting {
		p.Deadline = w.st.Deadline
		p.Signals = []string{DecideSignal, CloseSignal}
		if w.st.Summary.SafeOpen > 0 {
			p.Signals = []string{RepairSignal, DecideSignal, CloseSignal}
		}
	}
	return p
}

func (w *reconciler) result(closedBy string) ReconcileResult {
	return ReconcileResult{RunID: w.in.RunID, Checked: w.st.Checked, Skipped: w.st.Skipped, Summary: w.st.Summary,
		Repaired: w.st.Repaired, Decided: w.st.Decided, ClosedBy: closedBy}
}

// stepCtx is for short activities; longCtx for those that loop and heartbeat (a page of
// checks, the Redis walk, a page of repairs, a Redis purge).
func (w *reconciler) stepCtx() workflow.Context {
	return stepOptions(w.ctx, w.in.StepAttempts, w.in.StepTimeout)
}

func (w *reconciler) longCtx() workflow.Context {
	ctx := stepOptions(w.ctx, w.in.StepAttempts, w.in.StepTimeout)
	opts := workflow.GetActivityOptions(ctx)
	opts.StartToCloseTimeout = 30 * time.Minute
	opts.HeartbeatTimeout = time.Minute
	return workflow.WithActivityOptions(ctx, opts)
}

func (w *reconciler) continueAsNew() error {
	next := w.in
	next.State = w.st
	return workflow.NewContinueAsNewError(w.ctx, ReconcileTenants, next)
}

func (w *reconciler) run() (ReconcileResult, error) {
	ctx, in := w.ctx, w.in
	if !w.st.Reported {
		if !w.st.Begun {
			var b activities.ReconcileBeginResult
			if err := workflow.ExecuteActivity(w.stepCtx(), a.BeginReconciliation, activities.ReconcileBeginInput{
				RunID: in.RunID, RequestedBy: cmp.Or(in.RequestedBy, "schedule"), IDPrefix: in.IDPrefix,
				AutoRepair: in.AutoRepair, StartedAt: w.st.StartedAt,
			}).Get(ctx, &b); err != nil {
				return w.result(""), err
			}
			w.st.Begun, w.st.AutoRepair = true, b.AutoRepair
		}
		perRun := positive(in.TenantsPerRun, DefaultReconcileTenantsPerRun)
		thisRun := 0
		for {
			var page activities.ReconcilePageResult
			if err := workflow.ExecuteActivity(w.longCtx(), a.ReconcileTenantPage, activities.ReconcilePageInput{
				RunID: in.RunID, IDPrefix: in.IDPrefix, After: w.st.After,
				Limit: positive(in.PageSize, DefaultReconcilePage), Parallel: positive(in.Parallel, DefaultReconcileParallel),
			}).Get(ctx, &page); err != nil {
				return w.result(""), err
			}
			w.st.Checked += page.Checked
			w.st.Skipped += page.Skipped
			if page.Last != "" {
				w.st.After = page.Last
			}
			thisRun += page.Checked
			if !page.More || page.Checked == 0 {
				break
			}
			if thisRun >= perRun {
				return w.result(""), w.continueAsNew()
			}
		}
		orphans := activities.ReconcileOrphanInput{RunID: in.RunID, IDPrefix: in.IDPrefix, Count: in.RedisScanCount}
		if err := workflow.ExecuteActivity(w.stepCtx(), a.FindMongoOrphans, orphans).Get(ctx, nil); err != nil {
			return w.result(""), err
		}
		if err := workflow.ExecuteActivity(w.longCtx(), a.FindRedisOrphans, orphans).Get(ctx, nil); err != nil {
			return w.result(""), err
		}
		now := workflow.Now(ctx)
		if err := workflow.ExecuteActivity(w.stepCtx(), a.FinishReconciliation, activities.ReconcileFinishInput{
			RunID: in.RunID, At: now, Checked: w.st.Checked, Skipped: w.st.Skipped,
		}).Get(ctx, &w.st.Summary); err != nil {
			return w.result(""), err
		}
		w.st.Reported = true
		w.st.Deadline = now.Add(positiveDuration(in.DecisionWindow, DefaultDecisionWindow))
		w.phase = PhaseAwaiting
		if w.st.AutoRepair && w.st.Summary.SafeOpen > 0 {
			if err := w.repairAll("auto-repair"); err != nil {
				return w.result(""), err
			}
		}
	}
	return w.await()
}

// await handles repair, decide and close signals until nothing is left to do, the window ends,
// or close arrives; then it closes the report.
func (w *reconciler) await() (ReconcileResult, error) {
	ctx := w.ctx
	repairCh := workflow.GetSignalChannel(ctx, RepairSignal)
	decideCh := workflow.GetSignalChannel(ctx, DecideSignal)
	closeCh := workflow.GetSignalChannel(ctx, CloseSignal)
	closedBy := ""
	w.verified = decisionsVerified(ctx)
	if wait := w.st.Deadline.Sub(workflow.Now(ctx)); wait > 0 && w.actionable() {
		tctx, cancelTimer := workflow.WithCancel(ctx)
		timer := workflow.NewTimer(tctx, wait)
		for closedBy == "" && w.actionable() {
			if workflow.GetInfo(ctx).GetCurrentHistoryLength() > reconcileHistoryLimit || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
				// Signals already delivered are handled first: a new run would not see them.
				for w.handleOne(repairCh, decideCh, closeCh, &closedBy, false) {
				}
				if closedBy == "" && w.actionable() {
					cancelTimer()
					return w.result(""), w.continueAsNew()
				}
				break
			}
			w.handleOne(repairCh, decideCh, closeCh, &closedBy, true, timer)
		}
		cancelTimer()
	}
	switch {
	case closedBy != "":
	case !w.actionable():
		closedBy = "nothing left to do"
	default:
		closedBy = "decision window over"
	}
	w.phase = PhaseClosed
	err := workflow.ExecuteActivity(w.stepCtx(), a.CloseReconciliation, activities.ReconcileCloseInput{RunID: w.in.RunID, At: workflow.Now(ctx)}).Get(ctx, nil)
	return w.result(closedBy), err
}

// handleOne receives one signal (blocking, with the window's timer, when block is set) and
// acts on it after the receive; it reports whether it received one.
func (w *reconciler) handleOne(repairCh, decideCh, closeCh workflow.ReceiveChannel, closedBy *string, block bool, timer ...workflow.Future) bool {
	var received, by string
	var decision DecisionSignal
	sel := workflow.NewSelector(w.ctx)
	sel.AddReceive(repairCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(w.ctx, &by); received = RepairSignal })
	sel.AddReceive(decideCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(w.ctx, &decision); received = DecideSignal })
	sel.AddReceive(closeCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(w.ctx, &by); received = CloseSignal })
	for _, t := range timer {
		sel.AddFuture(t, func(workflow.Future) { *closedBy = "decision window over" })
	}
	if !block && !sel.HasPending() {
		return false
	}
	sel.Select(w.ctx)
	log := workflow.GetLogger(w.ctx)
	if w.verified && received != "" {
		value := by
		if received == DecideSignal {
			value = decision.Decision
		}
		d, refused := w.decisions.claim(w.stepCtx(), received, value, decideRoles, "")
		if refused != "" {
			w.refuse(received, refused)
			return true
		}
		by, decision = d.By, DecisionSignal{DriftID: d.Subject, By: d.By}
	}
	switch received {
	case RepairSignal:
		if err := w.repairAll(cmp.Or(by, "operator")); err != nil {
			log.Error("reconciliation safe repairs failed", "run_id", w.in.RunID, "err", err)
		}
	case DecideSignal:
		if err := w.decide(decision); err != nil {
			log.Error("reconciliation decision failed", "run_id", w.in.RunID, "drift", decision.DriftID, "err", err)
		}
	case CloseSignal:
		*closedBy = "closed by " + cmp.Or(by, "operator")
	}
	return received != ""
}

// refuse records a refused signal: progress, log, and the platform audit (a reconciliation is
// about many tenants). The run goes on waiting.
func (w *reconciler) refuse(kind, reason string) {
	w.decisions.refused++
	w.lastRefusal = fmt.Sprintf("%s signal refused: %s", kind, reason)
	workflow.GetLogger(w.ctx).Warn("signal refused", "run_id", w.in.RunID, "signal", kind, "reason", reason)
	if w.decisions.refused > refusalsAudited {
		return
	}
	ev := refusalEvent(w.ctx, "", "reconciliation/"+w.in.RunID, kind, reason, w.decisions.refused)
	if err := record(w.stepCtx(), activities.AuditInput{Event: ev, Platform: true}); err != nil {
		workflow.GetLogger(w.ctx).Error("could not audit a refused signal", "run_id", w.in.RunID, "signal", kind, "err", err)
	}
}

func (w *reconciler) actionable() bool {
	return w.st.Summary.SafeOpen > 0 || w.st.Summary.DecisionsOpen > 0
}

// repairAll runs the safe repairs of the whole report, a page per activity.
func (w *reconciler) repairAll(by string) error {
	after := ""
	for {
		var r activities.RepairSafeResult
		if err := workflow.ExecuteActivity(w.longCtx(), a.RepairSafeDrifts, activities.RepairSafeInput{
			RunID: w.in.RunID, ApprovedBy: by, At: workflow.Now(w.ctx), After: after, Limit: 100,
		}).Get(w.ctx, &r); err != nil {
			return err
		}
		w.st.Repaired += r.Repaired
		if !r.More || r.Last == "" {
			break
		}
		after = r.Last
	}
	w.st.Summary.SafeOpen = 0
	return nil
}

// decide carries out one decision: re-check (PlanDecision), the actions through the lifecycle
// activities, then the outcome (CompleteDecision). A decision naming a drift no decision can
// repair is ignored (logged and audited by PlanDecision's failed step).
func (w *reconciler) decide(d DecisionSignal) error {
	ctx, by := w.ctx, cmp.Or(d.By, "operator")
	var plan activities.DecisionPlan
	err := workflow.ExecuteActivity(w.stepCtx(), a.PlanDecision, activities.DecisionInput{
		RunID: w.in.RunID, DriftID: d.DriftID, By: by, At: workflow.Now(ctx),
	}).Get(ctx, &plan)
	if err != nil {
		return err
	}
	if len(plan.Actions) == 0 {
		w.st.Summary.DecisionsOpen = max(0, w.st.Summary.DecisionsOpen-1)
		return nil
	}
	ref := activities.TenantRef{TenantID: plan.TenantID}
	var actErr error
	for _, act := range plan.Actions {
		sctx := w.stepCtx()
		switch act {
		case activities.RepairDestroyKeys:
			actErr = workflow.ExecuteActivity(sctx, a.DestroyKeys, ref).Get(ctx, nil)
		case activities.RepairPurgePostgres:
			actErr = workflow.ExecuteActivity(sctx, a.DeprovisionPostgres, ref).Get(ctx, nil)
		case activities.RepairDropMongo:
			actErr = workflow.ExecuteActivity(sctx, a.DeprovisionMongo, activities.DeprovisionInput{TenantID: plan.TenantID}).Get(ctx, nil)
		case activities.RepairPurgeRedis:
			actErr = workflow.ExecuteActivity(w.longCtx(), a.PurgeRedis, ref).Get(ctx, nil)
		case activities.RepairEnsureKeys:
			actErr = workflow.ExecuteActivity(sctx, a.EnsureKeys, ref).Get(ctx, nil)
		case activities.RepairProvisionMongo:
			actErr = workflow.ExecuteActivity(sctx, a.ProvisionMongo, ref).Get(ctx, nil)
		default:
			actErr = temporal.NewNonRetryableApplicationError("unknown repair action "+act, activities.ErrTypeInvalidInput, nil)
		}
		if actErr != nil {
			break
		}
	}
	in := activities.CompleteDecisionInput{RunID: w.in.RunID, DriftID: d.DriftID, By: by, At: workflow.Now(ctx), Actions: plan.Actions}
	if actErr != nil {
		in.Error = actErr.Error()
	}
	var done activities.CompleteDecisionResult
	if err := workflow.ExecuteActivity(w.stepCtx(), a.CompleteDecision, in).Get(ctx, &done); err != nil {
		return err
	}
	w.st.Decided++
	if done.State != "failed" {
		w.st.Summary.DecisionsOpen = max(0, w.st.Summary.DecisionsOpen-1)
	}
	return actErr
}

func positive(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func positiveDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}
