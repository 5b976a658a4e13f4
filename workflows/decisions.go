package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/decision"
	"github.com/misybot/tenancy/internal/platform/operators"
)

// operatorDecisionsChange versions signals that carry a recorded decision: from version 1 a
// signal that grants or destroys (approve, abort, retry, cancel-offboard, and a
// reconciliation's repair, decide and close) carries the id of a decision the API or the
// operator CLI recorded after its role checks (internal/domain/decision), and the run acts on it only
// once ClaimDecision has read it back. A bare name (`--input '"anyone"'`) is refused, shown in
// the progress and audited, and the run keeps waiting. Runs that reached their wait before
// the change (no marker) keep taking the signal's value as the decider's name.
//
// The marker is recorded where a run first waits for a person, so a run that never waits (an
// onboarding without approval that parks nowhere) records none and makes no extra visibility
// write.
const operatorDecisionsChange = "operator-decisions"

// decisionsVerified reports whether this run acts only on recorded decisions.
func decisionsVerified(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, operatorDecisionsChange, workflow.DefaultVersion, 1) >= 1
}

// Roles whose recorded decisions a run accepts. Approvals need a platform-admin through the
// API (the CLI authenticates nobody, so four eyes could not hold); retry, which only runs a
// step again, also an operator; everything else a platform-admin or the operator CLI.
var (
	approveRoles = []string{string(operators.RoleAdmin)}
	retryRoles   = []string{string(operators.RoleAdmin), string(operators.RoleOperator), decision.RoleCLI}
	decideRoles  = []string{string(operators.RoleAdmin), decision.RoleCLI}
)

// refusalsAudited bounds the refusals a run audits one by one: past it they are still refused,
// counted and shown in the progress, but a flood of forged signals cannot flood the audit.
const refusalsAudited = 20

// claims numbers a run's claims of decisions: the n of each claim's consumer id. Signals are
// received in history order, so the numbering is the same on every replay.
type claims struct {
	n       int
	refused int
}

// claim reads back the decision a signal's value names and claims it for this run. It returns
// the decision, or why it was refused (never acting on it). A value that cannot be a
// decision's id is refused without asking the database.
func (c *claims) claim(ctx workflow.Context, kind, value string, roles []string, notBy string) (activities.ClaimDecisionResult, string) {
	if !decisionID(value) {
		return activities.ClaimDecisionResult{}, fmt.Sprintf("the %s signal carried %q, which is not a recorded decision: decide through the API or `starter decide`", kind, clip(value))
	}
	c.n++
	info := workflow.GetInfo(ctx)
	var res activities.ClaimDecisionResult
	err := workflow.ExecuteActivity(ctx, a.ClaimDecision, activities.ClaimDecisionInput{
		DecisionID: value, Kind: kind, Roles: roles, NotBy: notBy,
		Consumer: fmt.Sprintf("%s/%s/%d", info.WorkflowExecution.ID, info.WorkflowExecution.RunID, c.n),
	}).Get(ctx, &res)
	switch {
	case err != nil:
		return res, "the decision could not be read back (" + err.Error() + "); send it again"
	case !res.Accepted:
		return res, res.Refused
	}
	return res, ""
}

// decisionID reports whether v has the shape of a decision id (32 lowercase hex digits).
func decisionID(v string) bool {
	if len(v) != 32 {
		return false
	}
	for i := range len(v) {
		if c := v[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// clip shortens a signal's value for a message: it is whatever the sender typed.
func clip(v string) string {
	if len(v) > 64 {
		return v[:64] + "…"
	}
	return v
}

// refusalEvent is the audit event of a refused signal: who sent it is unknown (it proved
// nothing), so the actor is the system that refused it. Its id holds the refusal's number, fixed
// by history, so a replay or a retry writes it once.
func refusalEvent(ctx workflow.Context, tenantID, resource, kind, reason string, n int) activities.AuditEvent {
	info := workflow.GetInfo(ctx)
	return activities.AuditEvent{
		ID:       activities.WorkflowEventID(info.WorkflowExecution.ID, info.WorkflowExecution.RunID, fmt.Sprintf("signal-refused/%s/%d", kind, n)),
		TenantID: tenantID, Actor: activities.AuditActor{Type: activities.ActorSystem, ID: "unverified signal"},
		Action: "workflow.signal.refused", Resource: resource, Outcome: activities.OutcomeDenied, Reason: reason,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, At: workflow.Now(ctx),
		Details: map[string]string{"signal": kind, "workflowType": info.WorkflowType.Name},
	}
}

// refuse records a refused signal of a lifecycle run: the progress shows it (LastRefusal, and
// the waiting step's LastError when the step has no error of its own), the log and the audit
// trail (the tenant's chain while it is open, else the platform's) keep it. The run goes on
// waiting.
func (r *run) refuse(kind, reason string, step int, ownError bool) {
	r.decisions.refused++
	msg := fmt.Sprintf("%s signal refused: %s", kind, reason)
	r.progress.LastRefusal, r.progress.Refusals = msg, r.decisions.refused
	if step >= 0 && step < len(r.progress.Steps) && !ownError {
		r.progress.Steps[step].LastError = msg
	}
	workflow.GetLogger(r.ctx).Warn("signal refused", "tenant_id", r.progress.TenantID, "signal", kind, "reason", reason)
	if r.decisions.refused > refusalsAudited {
		return
	}
	resource, in := "tenant/"+r.progress.TenantID, activities.AuditInput{Route: true}
	if r.progress.TenantID == "" {
		resource, in = "platform", activities.AuditInput{Platform: true}
	}
	in.Event = refusalEvent(r.ctx, r.progress.TenantID, resource, kind, reason, r.decisions.refused)
	if err := record(r.ctx, in); err != nil {
		workflow.GetLogger(r.ctx).Error("could not audit a refused signal", "tenant_id", r.progress.TenantID, "signal", kind, "err", err)
	}
}
