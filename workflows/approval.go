package workflows

import (
	"cmp"

	"go.temporal.io/sdk/workflow"
)

// separateApproverChange is the GetVersion change id of the rule that the requester cannot
// approve their own request: runs started before it keep the old behaviour on replay.
const separateApproverChange = "approver-differs-from-requester"

// awaitApproval adds an await-approval step and waits for the approve signal (its value: who
// approves), the abort signal (who rejects) or the run's cancellation. It reports who decided
// and whether to proceed.
//
// Four eyes: an approval from the requester is not one. The API refuses it before it signals
// (the approver is the authenticated platform-admin); the workflow ignores it too, since a
// signal can also come straight from Temporal (`temporal workflow signal`).
func (r *run) awaitApproval(requestedBy string) (approver string, proceed bool) {
	i := r.add("await-approval")
	r.progress.Steps[i].Status, r.progress.Steps[i].Attempts, r.progress.Steps[i].StartedAt = StepAwaitingApproval, 1, workflow.Now(r.ctx)
	approve := workflow.GetSignalChannel(r.ctx, ApproveSignal)
	separate := workflow.GetVersion(r.ctx, separateApproverChange, workflow.DefaultVersion, 1) >= 1
	rule := decisionRule{step: i, goRoles: approveRoles, abortRoles: decideRoles, goNotBy: requestedBy}
	approver, proceed = r.awaitDecision(StateAwaitingApproval, ApproveSignal, approve, func(approver string) bool {
		if separate && (approver == "" || approver == requestedBy) {
			workflow.GetLogger(r.ctx).Warn("approval ignored: the requester cannot approve their own request", "approver", approver)
			r.progress.Steps[i].LastError = "an approval from " + cmp.Or(approver, "nobody") + " was ignored: the approver must differ from the requester"
			return false
		}
		return true
	}, rule)
	r.progress.Steps[i].EndedAt = workflow.Now(r.ctx)
	if proceed {
		r.progress.Steps[i].Status, r.progress.Steps[i].LastError = StepCompleted, ""
	} else {
		r.progress.Steps[i].Status = StepFailed
	}
	return approver, proceed
}
