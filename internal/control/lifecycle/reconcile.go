package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/workflows"
)

// ErrReconciliationClosed: the reconciliation run no longer takes repairs or decisions (its
// window is over, it was closed, or there is no such run).
var ErrReconciliationClosed = errors.New("the reconciliation run is closed: start a new one")

// Reconciler starts reconciliation runs and signals their repairs and decisions, for the API
// and the CLI.
type Reconciler struct {
	temporal  client.Client
	taskQueue string
	decisions *decision.Store
	// now is the clock that names on-demand runs (tests replace it).
	now func() time.Time
}

// NewReconciler returns a Reconciler starting runs on taskQueue and recording its repairs,
// decisions and closes in decisions (nil: those are refused with ErrNoDecisions).
func NewReconciler(c client.Client, taskQueue string, decisions *decision.Store) *Reconciler {
	return &Reconciler{temporal: c, taskQueue: taskQueue, decisions: decisions, now: time.Now}
}

// ReconcileOptions are what an on-demand run may set.
type ReconcileOptions struct {
	RequestedBy string
	// IDPrefix limits the run to tenants whose id starts with it.
	IDPrefix   string
	AutoRepair bool
}

// Start starts an on-demand reconciliation run. Its workflow id, which is also its report's
// id, is the schedule's id with the time of the request ("reconcile:<queue>-manual-<time>"),
// so on-demand and scheduled reports sort together; a second request in the same millisecond
// finds the first run (Existing).
func (r *Reconciler) Start(ctx context.Context, opts ReconcileOptions) (Run, error) {
	id := "reconcile:" + r.taskQueue + "-manual-" + r.now().UTC().Format("2006-01-02T15:04:05.000Z")
	wr, err := r.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: r.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.ReconcileWorkflow, workflows.ReconcileInput{
		RequestedBy: opts.RequestedBy, IDPrefix: opts.IDPrefix, AutoRepair: opts.AutoRepair,
	})
	if err != nil {
		return Run{}, fmt.Errorf("lifecycle: start reconciliation: %w", err)
	}
	return Run{WorkflowID: id, RunID: wr.GetRunID(), Workflow: workflows.ReconcileWorkflow}, nil
}

// Approve sends the repair signal to a run: its safe repairs run, each audited with by. Like
// Decide and Close, it records the decision first and signals its id only; the run acts once
// it has read the decision back.
func (r *Reconciler) Approve(ctx context.Context, runID string, by Decider) error {
	return r.signal(ctx, runID, workflows.RepairSignal, "", by, nil)
}

// Decide sends a platform admin's decision to repair one drift of a run: the drift is the
// recorded decision's subject, not a field of the signal.
func (r *Reconciler) Decide(ctx context.Context, runID, driftID string, by Decider) error {
	return r.signal(ctx, runID, workflows.DecideSignal, driftID, by, func(id string) any {
		return workflows.DecisionSignal{Decision: id}
	})
}

// Close ends a run's wait for approval and decisions.
func (r *Reconciler) Close(ctx context.Context, runID string, by Decider) error {
	return r.signal(ctx, runID, workflows.CloseSignal, "", by, nil)
}

// signal records and sends a decision to the run (any run of its workflow id: a run waiting
// for decisions continues as new).
func (r *Reconciler) signal(ctx context.Context, runID, name, subject string, by Decider, arg func(string) any) error {
	_, err := sendDecision(ctx, r.temporal, r.decisions, runID, "", name, subject, by, arg)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return ErrReconciliationClosed
	}
	return err
}
