package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
)

// auditSignalsChange versions the audit of operator decisions on parked steps: runs recorded
// before it (without the marker) replay without the extra activity.
const auditSignalsChange = "audit-operator-signals"

// auditDecision records an operator's decision on a step parked in awaiting_operator (the
// retry or abort signal, or a cancellation of the workflow), with who decided and which step
// after how many attempts. The other signals are audited where they are handled (approve in
// onboarding, cancel-offboard in offboarding); every workflow step is audited by the worker's
// interceptor (activities.NewAuditInterceptor).
//
// Exactly once: the event id is the workflow id, run id, signal, step and attempt count,
// all fixed by history, so a replay or a retried activity writes it once. The decision is not
// held up by the audit: a write that keeps failing is logged and the run goes on. It runs in a
// disconnected context, so a cancellation of the workflow is still recorded.
func (r *run) auditDecision(proceed bool, by string) {
	if workflow.GetVersion(r.ctx, auditSignalsChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	step, attempts := "", 0
	for _, s := range r.progress.Steps {
		if s.Status == StepAwaitingOperator {
			step, attempts = s.Name, s.Attempts
		}
	}
	signal, actor := AbortSignal, operator(by)
	switch {
	case proceed:
		signal = RetrySignal
	case r.ctx.Err() != nil:
		signal, actor = "cancel", activities.AuditActor{Type: activities.ActorSystem, ID: "workflow cancellation"}
	}
	ev := r.event(fmt.Sprintf("signal/%s/%s/%d", signal, step, attempts), "workflow.signal."+signal, actor,
		activities.OutcomeSuccess, fmt.Sprintf("step %s parked after %d attempt(s)", step, attempts))
	ev.Details = map[string]string{"step": step, "workflowType": workflow.GetInfo(r.ctx).WorkflowType.Name}
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	err := record(ctx, activities.AuditInput{Event: ev, Route: true})
	if err != nil {
		workflow.GetLogger(r.ctx).Error("could not audit an operator decision", "tenant_id", r.progress.TenantID, "step", step, "err", err)
	}
}
