// Package workflows holds the tenant lifecycle as Temporal workflows: onboard (with its
// ProvisionTenant child), suspend, restore and offboard. Workflow code is deterministic: no
// clock, randomness, goroutines, map iteration or I/O of its own; every side effect is an
// activity (package activities). Inputs and results are structs so they can grow without
// breaking runs in flight; none carries a secret or a key.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
)

// Query and signal names, for the API and for `temporal workflow query|signal --name …`.
const (
	// ProgressQuery answers with Progress.
	ProgressQuery = "progress"
	// RetrySignal re-runs a step parked in awaiting_operator.
	RetrySignal = "retry"
	// AbortSignal gives up a parked step (or a pending approval): compensations run.
	AbortSignal = "abort"
	// ApproveSignal lets an onboarding that needs approval go on.
	ApproveSignal = "approve"
	// CancelOffboardSignal ends an offboarding's grace period by restoring the tenant.
	CancelOffboardSignal = "cancel-offboard"
)

// Workflow type names (the functions' names), as the API reports them.
const (
	OnboardWorkflow   = "OnboardTenant"
	ProvisionWorkflow = "ProvisionTenant"
	SuspendWorkflow   = "SuspendTenant"
	RestoreWorkflow   = "RestoreTenant"
	OffboardWorkflow  = "OffboardTenant"
)

// WorkflowID is the deterministic id of a tenant's lifecycle operation. One id per tenant (not
// per operation) with a conflict policy that refuses a second start while one runs means two
// operations can never run at once for a tenant, and a retried request finds the run already
// started.
func WorkflowID(tenantID string) string { return "tenant-lifecycle:" + tenantID }

// ProvisionWorkflowID is the id of an onboarding's ProvisionTenant child.
func ProvisionWorkflowID(tenantID string) string { return "tenant-provision:" + tenantID }

// a is the nil receiver used only to name activity methods; the worker registers the real one.
var a *activities.Activities

// DefaultStepAttempts is each step's retry budget before it parks for an operator, and
// DefaultStepTimeout bounds each attempt.
const (
	DefaultStepAttempts = 5
	DefaultStepTimeout  = 2 * time.Minute
)

// Sources of each status transition, shared with the API's precondition checks.
var (
	OnboardFrom = []tenant.Status{tenant.StatusPending, tenant.StatusFailed}
	SuspendFrom = []tenant.Status{tenant.StatusActive}
	RestoreFrom = []tenant.Status{tenant.StatusSuspended}
	// Offboarding also accepts a tenant left offboarding by a failed run: every step is
	// idempotent, so running it again finishes the job.
	OffboardFrom = []tenant.Status{tenant.StatusActive, tenant.StatusSuspended, tenant.StatusFailed, tenant.StatusOffboarding}
)

// stepOptions is the activity policy of a step: a bounded retry budget, after which the step
// parks for an operator instead of failing the workflow.
// timeout bounds one attempt (0: DefaultStepTimeout); a worker that dies mid-attempt is noticed
// when it runs out, and the attempt is retried on another worker.
func stepOptions(ctx workflow.Context, attempts int32, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, StepActivityOptions(attempts, timeout))
}

// StepActivityOptions are the activity options of a step (see stepOptions): exported so that
// the bench's floor workflows schedule their no-op activities exactly as the steps they mirror
// (the attempt timeout decides when Temporal fires each attempt's timeout timer).
func StepActivityOptions(attempts int32, timeout time.Duration) workflow.ActivityOptions {
	if attempts <= 0 {
		attempts = DefaultStepAttempts
	}
	if timeout <= 0 {
		timeout = DefaultStepTimeout
	}
	return workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    attempts,
		},
	}
}

// longStep is for activities that loop over a tenant's data (export, Redis purge): ctx carries
// the step options, whose attempt timeout becomes the heartbeat timeout (at most 30 s), so a
// dead worker is noticed quickly and the retry resumes, while the attempt may take an hour.
func longStep(ctx workflow.Context) workflow.Context {
	opts := workflow.GetActivityOptions(ctx)
	opts.HeartbeatTimeout = min(30*time.Second, max(opts.StartToCloseTimeout, time.Second))
	opts.StartToCloseTimeout = time.Hour
	return workflow.WithActivityOptions(ctx, opts)
}
