package workflows

import (
	"cmp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
)

// ProfileChangeWorkflow is the workflow type of an approved profile change.
const ProfileChangeWorkflow = "ChangeTenantProfile"

// ProfileWorkflowID is the id of a tenant's pending profile change: apart from the lifecycle
// id, so that a change waiting for approval never blocks a suspension.
func ProfileWorkflowID(tenantID string) string { return "tenant-profile:" + tenantID }

// ProfileChangeInput is a profile change that raises the tenant's ceiling (a higher type, an
// added permission): it waits for a platform-admin other than the requester.
type ProfileChangeInput struct {
	Change      activities.ProfileChange
	RequestedBy string
	// Raises says what the change raises, for the approver and the audit.
	Raises       []string
	StepAttempts int32
	StepTimeout  time.Duration
	// SearchAttributesVersion is the search-attribute behaviour of the run (the starter sets
	// SearchAttributesVersion; 0, in runs started before, leaves it to a GetVersion marker).
	SearchAttributesVersion int
}

// ProfileChangeResult says who decided and whether the change was applied.
type ProfileChangeResult struct {
	Applied    bool
	ApprovedBy string `json:",omitempty"`
	RejectedBy string `json:",omitempty"`
}

// ChangeTenantProfile waits for approval of a change that raises a tenant's ceiling (approve by
// a platform-admin other than the requester, or reject with abort), then applies it to the
// registry and the Redis context record, and audits the decision either way.
func ChangeTenantProfile(ctx workflow.Context, in ProfileChangeInput) (ProfileChangeResult, error) {
	ctx = withSearchAttributesVersion(ctx, in.SearchAttributesVersion)
	id := in.Change.TenantID
	r, err := newRun(ctx, "profile-change", id, in.StepAttempts, in.StepTimeout)
	if err != nil {
		return ProfileChangeResult{}, err
	}
	r.progress.RequestedBy = in.RequestedBy
	var res ProfileChangeResult
	approver, proceed := r.awaitApproval(in.RequestedBy)
	decision := func(ctx workflow.Context, outcome, reason string) error {
		ev := r.event("decision", "tenant.profile.change", operator(approver), outcome, reason)
		ev.Details = map[string]string{"requestedBy": in.RequestedBy, "raises": strings.Join(in.Raises, ", "), "type": string(in.Change.Type)}
		return record(ctx, activities.AuditInput{Event: ev, Route: true})
	}
	if !proceed {
		res.RejectedBy = cmp.Or(approver, "operator")
		if err := r.step("audit", func(ctx workflow.Context) error {
			return decision(ctx, activities.OutcomeDenied, "rejected by "+res.RejectedBy)
		}); err != nil {
			r.progress.State = StateFailed
			return res, err
		}
		r.progress.State = StateCancelled
		return res, temporal.NewNonRetryableApplicationError("profile change rejected by "+res.RejectedBy, ErrTypeAborted, nil)
	}
	res.ApprovedBy = approver
	if err := r.step("apply", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.ApplyProfileChange, in.Change).Get(ctx, nil)
	}); err != nil {
		r.progress.State = StateFailed
		return res, err
	}
	res.Applied = true
	setTenantSearchAttributes(ctx, "", in.Change.Type)
	if err := r.step("audit", func(ctx workflow.Context) error {
		return decision(ctx, activities.OutcomeSuccess, "approved by "+approver)
	}); err != nil {
		r.progress.State = StateFailed
		return res, err
	}
	r.progress.State = StateCompleted
	return res, nil
}
