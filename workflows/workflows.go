// Package workflows holds the tenant lifecycle as Temporal workflows. Workflow code is
// deterministic: no clock, randomness, goroutines or I/O of its own; every side effect is an
// activity (package activities).
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/tenant"
)

// ProgressQuery is the query every lifecycle workflow answers with its Progress.
const ProgressQuery = "progress"

// WorkflowID is the deterministic id of a tenant's lifecycle operation. One id per tenant (not
// per operation) plus a duplicate-rejecting policy means two operations can never run at once
// for a tenant, and a retried request finds the run already started.
func WorkflowID(tenantID string) string { return "tenant-lifecycle:" + tenantID }

// a is the nil receiver used only to name activity methods; the worker registers the real one.
var a *activities.Activities

// Step is one unit of a lifecycle workflow, as reported by ProgressQuery.
type Step struct {
	Name      string    `json:"name"`
	Status    string    `json:"status"` // pending, running, completed, failed
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// Progress is the answer to ProgressQuery.
type Progress struct {
	Operation string `json:"operation"`
	TenantID  string `json:"tenantId"`
	Steps     []Step `json:"steps"`
}

func shortActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
	})
}

// StatusChangeInput names the tenant of a suspend or restore.
type StatusChangeInput struct {
	TenantID string
}

// StatusChangeResult is the tenant's status at the end and whether the run changed it.
type StatusChangeResult struct {
	Status  tenant.Status
	Changed bool
}

// Sources of each status transition, shared with the API's precondition checks.
var (
	SuspendFrom = []tenant.Status{tenant.StatusActive}
	RestoreFrom = []tenant.Status{tenant.StatusSuspended}
)

// SuspendTenant moves an active tenant to suspended. Running it again on a suspended tenant
// is a no-op success.
func SuspendTenant(ctx workflow.Context, in StatusChangeInput) (StatusChangeResult, error) {
	return changeStatus(ctx, "suspend", in, tenant.StatusSuspended, SuspendFrom)
}

// RestoreTenant moves a suspended tenant back to active. Running it again on an active tenant
// is a no-op success.
func RestoreTenant(ctx workflow.Context, in StatusChangeInput) (StatusChangeResult, error) {
	return changeStatus(ctx, "restore", in, tenant.StatusActive, RestoreFrom)
}

func changeStatus(ctx workflow.Context, op string, in StatusChangeInput, to tenant.Status, from []tenant.Status) (StatusChangeResult, error) {
	p := &Progress{Operation: op, TenantID: in.TenantID, Steps: []Step{{Name: "set-status", Status: "pending"}}}
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (Progress, error) { return *p, nil }); err != nil {
		return StatusChangeResult{}, err
	}
	step := &p.Steps[0]
	step.Status, step.StartedAt = "running", workflow.Now(ctx)
	var res activities.TransitionResult
	err := workflow.ExecuteActivity(shortActivity(ctx), a.TransitionStatus, activities.TransitionInput{
		TenantID: in.TenantID, To: to, From: from,
	}).Get(ctx, &res)
	step.EndedAt = workflow.Now(ctx)
	if err != nil {
		step.Status, step.LastError = "failed", err.Error()
		return StatusChangeResult{}, err
	}
	step.Status = "completed"
	workflow.GetLogger(ctx).Info("tenant status change done", "operation", op, "tenant_id", in.TenantID, "changed", res.Changed)
	return StatusChangeResult{Status: res.Status, Changed: res.Changed}, nil
}
