package lifecycle

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/workflows"
)

// ProfileChange is the operation of a profile change waiting for approval.
const ProfileChange Operation = "profile-change"

// StartProfileChange starts the approval workflow of a change that raises a tenant's ceiling
// (see tenant.Raises). One pending change per tenant: a second is refused naming the first
// (BusyError), and it never blocks the tenant's lifecycle operations (its own workflow id).
func (s *Service) StartProfileChange(ctx context.Context, in workflows.ProfileChangeInput) (Run, error) {
	id := workflows.ProfileWorkflowID(in.Change.TenantID)
	in.StepAttempts, in.StepTimeout = s.opts.StepAttempts, s.opts.StepTimeout
	in.SearchAttributesVersion = workflows.SearchAttributesVersion
	wr, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.opts.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		// The type is set on the run once the change is applied.
		TypedSearchAttributes: workflows.StartSearchAttributes(in.Change.TenantID, string(ProfileChange), "", "", ""),
	}, workflows.ChangeTenantProfile, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return Run{}, &BusyError{WorkflowID: id, RunID: started.RunId, Workflow: workflows.ProfileChangeWorkflow}
	}
	if err != nil {
		return Run{}, fmt.Errorf("lifecycle: start %s: %w", workflows.ProfileChangeWorkflow, err)
	}
	return Run{WorkflowID: id, RunID: wr.GetRunID(), Workflow: workflows.ProfileChangeWorkflow}, nil
}

// ErrNothingToApprove: no run of the tenant waits for an approval.
var ErrNothingToApprove = errors.New("nothing of this tenant waits for an approval")

// ErrSelfApproval: the approver asked for the change themselves.
var ErrSelfApproval = errors.New("a platform-admin other than the requester must decide")

// Decide approves (approve true) or rejects the tenant's run waiting for approval: a pending
// profile change first, else an onboarding. The decider must not be the requester. The
// decision is recorded (who, role, when) and the run is signalled with its id only, so the run
// acts on what the API checked, never on a name typed into a signal.
func (s *Service) Decide(ctx context.Context, tenantID string, decider Decider, approve bool) (Run, error) {
	if tenant.ValidateID(tenantID) != nil {
		return Run{}, ErrNothingToApprove
	}
	for _, id := range []string{workflows.ProfileWorkflowID(tenantID), workflows.WorkflowID(tenantID)} {
		run, p, err := s.waitingRun(ctx, id)
		if err != nil {
			return Run{}, err
		}
		if run == nil || p.State != workflows.StateAwaitingApproval {
			continue
		}
		if p.RequestedBy == decider.Name {
			return Run{}, ErrSelfApproval
		}
		signal := workflows.ApproveSignal
		if !approve {
			signal = workflows.AbortSignal
		}
		if _, err := sendDecision(ctx, s.temporal, s.opts.Decisions, run.WorkflowID, run.RunID, signal, "", decider, nil); err != nil {
			return Run{}, err
		}
		return *run, nil
	}
	return Run{}, ErrNothingToApprove
}
