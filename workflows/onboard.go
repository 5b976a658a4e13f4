package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
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
	// SearchAttributesVersion is the search-attribute behaviour of the run (the starter sets
	// SearchAttributesVersion; 0, in runs started before, leaves it to a GetVersion marker).
	SearchAttributesVersion int
	// Placement asks for the tenant's cell. The starter always sets it; a run started before
	// cells has none, places nothing, and its tenant lives on the default cell. Carried in the
	// input rather than behind a GetVersion marker: a marker costs every onboarding a
	// visibility write (see docs/lifecycle.md, "Changing workflow code").
	Placement *Placement `json:",omitempty"`
}

// Placement is what an operator asked of a tenant's cell: a cell, a region, or neither.
type Placement struct {
	Cell   string `json:",omitempty"`
	Region string `json:",omitempty"`
}

// OnboardResult is what an onboarding did.
type OnboardResult struct {
	TenantID    string
	Status      tenant.Status
	ApprovedBy  string `json:",omitempty"`
	Cell        string `json:",omitempty"`
	Provisioned ProvisionResult
}

// OnboardTenant takes a pending (or failed) tenant to active: mark onboarding, wait for
// approval when its type needs it, create its key material, provision PostgreSQL, MongoDB and
// Redis in a ProvisionTenant child, audit, mark active. A permanent failure, or an operator's
// abort, undoes the steps done so far in reverse and leaves the tenant failed with the reason.
func OnboardTenant(ctx workflow.Context, in OnboardInput) (OnboardResult, error) {
	ctx = withSearchAttributesVersion(ctx, in.SearchAttributesVersion)
	r, err := newRun(ctx, "onboard", in.TenantID, in.StepAttempts, in.StepTimeout)
	if err != nil {
		return OnboardResult{}, err
	}
	r.progress.RequestedBy = in.RequestedBy
	res := OnboardResult{TenantID: in.TenantID}
	// The onboarding's own events: by the system, for whoever requested it.
	event := func(step, action, outcome, reason string) activities.AuditEvent {
		ev := r.event(step, action, activities.AuditActor{Type: activities.ActorSystem, ID: OnboardWorkflow}, outcome, reason)
		ev.Details = map[string]string{"requestedBy": in.RequestedBy}
		return ev
	}
	sctx := r.ctx // with the step options

	err = r.onboard(sctx, in, &res, event)
	if err == nil {
		setTenantSearchAttributesIn(sctx, tenant.StatusActive, "", res.Cell)
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
	auditErr := record(dctx, activities.AuditInput{Event: event("onboard-failed", "tenant.onboard", activities.OutcomeFailure, reason), Platform: true})
	r.progress.State = StateFailed
	res.Status = tenant.StatusFailed
	if extra := errors.Join(rbErr, markErr, auditErr); extra != nil {
		workflow.GetLogger(ctx).Error("onboarding failed and its clean-up did not finish", "tenant_id", in.TenantID, "err", extra)
	}
	// Keep the original error's type and retryability for callers (the API, the Web UI).
	return res, err
}

func (r *run) onboard(ctx workflow.Context, in OnboardInput, res *OnboardResult, event func(step, action, outcome, reason string) activities.AuditEvent) error {
	if err := r.step("mark-onboarding", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.TransitionStatus, activities.TransitionInput{
			TenantID: in.TenantID, To: tenant.StatusOnboarding, From: OnboardFrom, Reason: "onboarding requested by " + in.RequestedBy,
		}).Get(ctx, nil)
	}); err != nil {
		return err
	}
	r.passStatus(ctx, tenant.StatusOnboarding)

	if in.NeedsApproval {
		approver, proceed := r.awaitApproval(in.RequestedBy)
		if !proceed {
			return temporal.NewNonRetryableApplicationError("onboarding rejected by "+cmp.Or(approver, "an operator"), ErrTypeAborted, nil)
		}
		res.ApprovedBy = cmp.Or(approver, "operator")
		if err := record(ctx, activities.AuditInput{
			Event: event("approved", "tenant.onboard.approve", activities.OutcomeSuccess, "approved by "+res.ApprovedBy), Platform: true,
		}); err != nil {
			return err
		}
	}

	// The cell first: every store the next steps touch is the cell's. No compensation: a
	// failed tenant keeps its cell, so onboarding it again finds what the first try left.
	if in.Placement != nil {
		if err := r.step("place", func(ctx workflow.Context) error {
			var placed activities.PlaceResult
			err := workflow.ExecuteActivity(ctx, a.PlaceTenant, activities.PlaceInput{
				TenantID: in.TenantID, Cell: in.Placement.Cell, Region: in.Placement.Region,
			}).Get(ctx, &placed)
			res.Cell = placed.Cell
			return err
		}); err != nil {
			return err
		}
	}

	r.compensate("destroy-keys", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.DestroyKeys, activities.TenantRef{TenantID: in.TenantID}).Get(ctx, nil)
	})
	if err := r.step("generate-keys", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.EnsureKeys, activities.TenantRef{TenantID: in.TenantID}).Get(ctx, nil)
	}); err != nil {
		return err
	}

	r.compensate("deprovision-stores", func(ctx workflow.Context) error {
		return deprovisionStores(ctx, in.TenantID)
	})
	if err := r.step("provision", func(ctx workflow.Context) error {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: ProvisionWorkflowID(in.TenantID)})
		return workflow.ExecuteChildWorkflow(cctx, ProvisionTenant, ProvisionInput{TenantID: in.TenantID, StepAttempts: in.StepAttempts, StepTimeout: in.StepTimeout}).
			Get(ctx, &res.Provisioned)
	}); err != nil {
		return err
	}

	if err := r.step("audit", func(ctx workflow.Context) error {
		ev := event("onboarded", "tenant.onboard", activities.OutcomeSuccess, "")
		ev.Details["postgresSettings"] = fmt.Sprint(res.Provisioned.Postgres.SettingsCreated)
		ev.Details["mongoDatabase"] = res.Provisioned.Mongo.Database
		return record(ctx, activities.AuditInput{Event: ev})
	}); err != nil {
		return err
	}

	return r.step("mark-active", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.TransitionStatus, activities.TransitionInput{
			TenantID: in.TenantID, To: tenant.StatusActive, From: []tenant.Status{tenant.StatusOnboarding}, Reason: "onboarded",
		}).Get(ctx, nil)
	})
}
