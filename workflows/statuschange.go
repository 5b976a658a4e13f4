package workflows

import (
	"cmp"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
)

// StatusChangeInput names the tenant of a suspend or restore, and who asked.
type StatusChangeInput struct {
	TenantID     string
	RequestedBy  string
	Reason       string
	StepAttempts int32
	// StepTimeout bounds each activity attempt (0: DefaultStepTimeout).
	StepTimeout time.Duration
	// SearchAttributesVersion is the search-attribute behaviour of the run (the starter sets
	// SearchAttributesVersion; 0, in runs started before, leaves it to a GetVersion marker).
	SearchAttributesVersion int
}

// StatusChangeResult is the tenant's status at the end and whether the run changed it.
type StatusChangeResult struct {
	Status  tenant.Status
	Changed bool
	// SessionsRevoked counts the sessions a suspend revoked.
	SessionsRevoked int64 `json:",omitempty"`
}

// SuspendTenant moves an active tenant to suspended (PostgreSQL and the Redis context record,
// so requests are refused at once), revokes its sessions and audits. Running it again on a
// suspended tenant changes nothing.
func SuspendTenant(ctx workflow.Context, in StatusChangeInput) (StatusChangeResult, error) {
	return changeStatus(ctx, "suspend", in, tenant.StatusSuspended, SuspendFrom)
}

// RestoreTenant moves a suspended tenant back to active and audits. Running it again on an
// active tenant changes nothing.
func RestoreTenant(ctx workflow.Context, in StatusChangeInput) (StatusChangeResult, error) {
	return changeStatus(ctx, "restore", in, tenant.StatusActive, RestoreFrom)
}

func changeStatus(ctx workflow.Context, op string, in StatusChangeInput, to tenant.Status, from []tenant.Status) (StatusChangeResult, error) {
	ctx = withSearchAttributesVersion(ctx, in.SearchAttributesVersion)
	r, err := newRun(ctx, op, in.TenantID, in.StepAttempts, in.StepTimeout)
	if err != nil {
		return StatusChangeResult{}, err
	}
	var res StatusChangeResult
	var tr activities.TransitionResult
	reason := cmp.Or(in.Reason, op+" requested by "+cmp.Or(in.RequestedBy, "operator"))
	if err := r.step("set-status", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.TransitionStatus, activities.TransitionInput{
			TenantID: in.TenantID, To: to, From: from, Reason: reason,
		}).Get(ctx, &tr)
	}); err != nil {
		r.progress.State = StateFailed
		return res, err
	}
	res.Status, res.Changed = tr.Status, tr.Changed
	setTenantSearchAttributes(ctx, tr.Status, "")

	if to == tenant.StatusSuspended {
		var rs activities.RevokeSessionsResult
		if err := r.step("revoke-sessions", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(longStep(ctx), a.RevokeSessions, activities.TenantRef{TenantID: in.TenantID}).Get(ctx, &rs)
		}); err != nil {
			r.progress.State = StateFailed
			return res, err
		}
		res.SessionsRevoked = rs.Revoked
	}

	if err := r.step("audit", func(ctx workflow.Context) error {
		ev := r.event(op, "tenant."+op, operator(in.RequestedBy), activities.OutcomeSuccess, reason)
		if !tr.Changed {
			ev.Reason = "already " + string(to) + "; nothing changed"
		}
		return record(ctx, activities.AuditInput{Event: ev})
	}); err != nil {
		r.progress.State = StateFailed
		return res, err
	}
	r.progress.State = StateCompleted
	workflow.GetLogger(ctx).Info("tenant status change done", "operation", op, "tenant_id", in.TenantID, "changed", res.Changed)
	return res, nil
}
