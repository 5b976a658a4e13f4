package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"

	"github.com/misybot/tenancy/internal/domain/decision"
)

// ClaimDecisionInput asks whether the decision a signal named may be acted on by the calling
// run, for the signal Kind: recorded for this workflow (and run), of this kind, by one of
// Roles, and not by NotBy (the requester of an approval). Consumer names this use of it,
// fixed by the run's history ("<workflowId>/<runId>/<n>").
type ClaimDecisionInput struct {
	DecisionID string
	Kind       string
	Roles      []string
	NotBy      string
	Consumer   string
}

// ClaimDecisionResult is the decision read back: who decided, with which role, about what
// (Subject: a drift id), or why it was refused (Refused non-empty: the run must not act).
type ClaimDecisionResult struct {
	Accepted bool
	By       string
	Role     string
	Subject  string
	Refused  string `json:",omitempty"`
}

// ClaimDecision reads back the operator decision a signal named (table operator_decisions,
// written by the API or the operator CLI after their role checks) and claims it for the
// calling run: the workflow and run come from the activity's own info, not from its input.
// A signal whose value names no recorded decision, or one for another run, another signal or
// a role the step does not accept, or an approval by its requester, is refused: Refused says
// why, and nothing changes.
//
// Idempotent by construction: the claim is a conditional UPDATE that sets the consumer once
// (decision.Store.Claim); a retry with the same Consumer (a lost answer, a replay) finds the
// decision claimed by itself and answers the same, while any other consumer is refused, so a
// decision is acted on at most once. Refusals write nothing.
func (a *Activities) ClaimDecision(ctx context.Context, in ClaimDecisionInput) (ClaimDecisionResult, error) {
	if a.Decisions == nil {
		return ClaimDecisionResult{}, errors.New("activities: no decision store configured")
	}
	info := activity.GetInfo(ctx)
	d, refused, err := a.Decisions.Claim(ctx, in.DecisionID, decision.Want{
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		Kind: in.Kind, Roles: in.Roles, NotBy: in.NotBy, Consumer: in.Consumer,
	})
	if err != nil {
		return ClaimDecisionResult{}, err
	}
	if refused != "" {
		activity.GetLogger(ctx).Warn("operator decision refused", "kind", in.Kind, "reason", refused)
		return ClaimDecisionResult{Refused: refused}, nil
	}
	return ClaimDecisionResult{Accepted: true, By: d.By, Role: d.Role, Subject: d.Subject}, nil
}
