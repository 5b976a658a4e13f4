package workflows

import (
	"time"

	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/audit"
	"github.com/misybot/tenancy/internal/tenant"
)

// OnboardInput starts an onboarding. It names the tenant and how to run, nothing secret: the
// tenant secret was sealed by the API at registration, and key material is made in activities.
type OnboardInput struct {
	TenantID string
	// NeedsApproval makes the workflow wait for the approve signal before provisioning.
	NeedsApproval bool
	// RequestedBy is the operator (or system) that asked, for the audit.
	RequestedBy string
	// StepAttempts is each step's retry budget before it parks (0: DefaultStepAttempts).
	StepAttempts int32
	// StepTimeout bounds each activity attempt (0: DefaultStepTimeout).
	StepTimeout time.Duration
}

// OnboardResult is what an onboarding did.
type OnboardResult struct {
	TenantID    string
	Status      tenant.Status
	ApprovedBy  string `json:",omitempty"`
	Provisioned ProvisionResult
}

// OnboardTenant takes a pending (or failed) tenant to active: mark onboarding, wait for
// approval when its type needs it, create its key material, provision PostgreSQL, MongoDB and
// Redis in a ProvisionTenant child, audit, mark active. A permanent failure, or an operator's
// abort, undoes the steps done so far in reverse and leaves the tenant failed with the reason.
func OnboardTenant(ctx workflow.Context, in OnboardInput) (OnboardResult, error) {
	r, err := newRun(ctx, "onboard", in.TenantID)
	if err != nil {
		return OnboardResult{}, err
	}
	r.progress.RequestedBy = in.RequestedBy
	res := OnboardResult{TenantID: in.TenantID}
	info := workflow.GetInfo(ctx)
	event := func(step, action, outcome, reason string) audit.Event {
		return audit.Event{
			ID: audit.WorkflowEventID(info.WorkflowExecution.ID, info.WorkflowExecution.RunID, step), TenantID: in.TenantID,
			Actor: audit.Actor{Type: audit.ActorSystem, ID: OnboardWorkflow}, Action: action, Resource: "tenant/" + in.TenantID,
			Outcome: outcome, Reason: reason, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
			Details: map[string]string{"requestedBy": in.RequestedBy}, At: workflow.Now(ctx),
		}
	}
	sctx := stepOptions(ctx, in.StepAttempts, in.StepTimeout)

	err = r.onboard(sctx, in, &res, event)
	if err == nil {
		setTenantSearchAttributes(sctx, tenant.StatusActive, "")
		r.progress.State = StateCompleted
		res.Status = tenant.StatusActive
		return res, nil
	}

	// Saga: undo in reverse, then record the failure. Both in a disconnected context, so a
	// cancelled workflow still cleans up.
	reason := err.Error()
	rbErr := r.rollback()
	dctx, _ := workflow.NewDisconnectedContext(sctx)
	markErr := workflow.ExecuteActivity(dctx, a.TransitionStatus, activities.TransitionInput{
		TenantID: in.TenantID, To: tenant.StatusFailed, Reason: reason,
		From: []tenant.Status{tenant.StatusOnboarding, tenant.StatusPending, tenant.StatusFailed},
	}).Get(dctx, nil)
	if markErr == nil {
		setTenantSearchAttributes(dctx, tenant.StatusFailed, "")
	}
	ev := event("onboard-failed", "tenant.onboard", audit.OutcomeFailure, reason)
	auditErr := workflow.ExecuteActivity(dctx, a.RecordAudit, activities.AuditInput{Event: ev, Platform: true}).Get(dctx, nil)
	r.progress.State = StateFailed
	res.Status = tenant.StatusFailed
	if extra := joinNonNil(rbErr, markErr, auditErr); extra != nil {
		workflow.GetLogger(ctx).Error("onboarding failed and its clean-up did not finish", "tenant_id", in.TenantID, "err", extra)
	}
	// Keep the original error's type and retryability for callers (the API, the Web UI).
	return res, err
}

func (r *run) onboard(ctx workflow.Context, in OnboardInput, res *OnboardResult, event func(step, action, outcome, reason string) audit.Event) error {
	if err := r.step("mark-onboarding", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(stepOptions(ctx, in.StepAttempts, in.StepTimeout), a.TransitionStatus, activities.TransitionInput{
			TenantID: in.TenantID, To: tenant.StatusOnboarding, From: OnboardFrom, Reason: "onboarding requested by " + in.RequestedBy,
		}).Get(ctx, nil)
	}); err != nil {
		return err
	}
	setTenantSearchAttributes(ctx, tenant.StatusOnboarding, "")

	if in.NeedsApproval {
		approver, proceed := r.awaitApproval(in.RequestedBy)
		if !proceed {
			return temporal.NewNonRetryableApplicationError("onboarding rejected by "+nonEmpty(approver, "an operator"), ErrTypeAborted, nil)
		}
		res.ApprovedBy = nonEmpty(approver, "operator")
		if err := workflow.ExecuteActivity(ctx, a.RecordAudit, activities.AuditInput{
			Event: event("approved", "tenant.onboard.approve", audit.OutcomeSuccess, "approved by "+res.ApprovedBy), Platform: true,
		}).Get(ctx, nil); err != nil {
			return err
		}
	}

	r.compensate("destroy-keys", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(stepOptions(ctx, in.StepAttempts, in.StepTimeout), a.DestroyKeys, activities.TenantRef{TenantID: in.TenantID}).Get(ctx, nil)
	})
	if err := r.step("generate-keys", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(stepOptions(ctx, in.StepAttempts, in.StepTimeout), a.EnsureKeys, activities.TenantRef{TenantID: in.TenantID}).Get(ctx, nil)
	}); err != nil {
		return err
	}

	r.compensate("deprovision-stores", func(ctx workflow.Context) error {
		return deprovisionStores(ctx, in.TenantID, in.StepAttempts, in.StepTimeout)
	})
	if err := r.step("provision", func(ctx workflow.Context) error {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: ProvisionWorkflowID(in.TenantID)})
		return workflow.ExecuteChildWorkflow(cctx, ProvisionTenant, ProvisionInput{TenantID: in.TenantID, StepAttempts: in.StepAttempts, StepTimeout: in.StepTimeout}).
			Get(ctx, &res.Provisioned)
	}); err != nil {
		return err
	}

	if err := r.step("audit", func(ctx workflow.Context) error {
		ev := event("onboarded", "tenant.onboard", audit.OutcomeSuccess, "")
		ev.Details["postgresSettings"] = fmt.Sprint(res.Provisioned.Postgres.SettingsCreated)
		ev.Details["mongoDatabase"] = res.Provisioned.Mongo.Database
		return workflow.ExecuteActivity(stepOptions(ctx, in.StepAttempts, in.StepTimeout), a.RecordAudit, activities.AuditInput{Event: ev}).Get(ctx, nil)
	}); err != nil {
		return err
	}

	return r.step("mark-active", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(stepOptions(ctx, in.StepAttempts, in.StepTimeout), a.TransitionStatus, activities.TransitionInput{
			TenantID: in.TenantID, To: tenant.StatusActive, From: []tenant.Status{tenant.StatusOnboarding}, Reason: "onboarded",
		}).Get(ctx, nil)
	})
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func joinNonNil(errs ...error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return fmt.Errorf("%v", out)
}
