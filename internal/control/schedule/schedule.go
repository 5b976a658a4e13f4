// Package schedule creates the Temporal Schedules the control plane relies on: the daily audit
// retention run (workflows.ApplyAuditRetention) and the daily reconciliation
// (workflows.ReconcileTenants). The worker makes sure of them at start, so a deployment cannot
// forget them and no separate job runner is needed.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/workflows"
)

// AuditRetentionID is the id of the audit retention schedule of the deployment whose workers
// poll taskQueue. One schedule per task queue, so deployments sharing a Temporal namespace
// (development next to test runs, which use their own queues) never start each other's runs;
// the daily runs also take this id (Temporal appends the scheduled time).
func AuditRetentionID(taskQueue string) string { return "audit-retention:" + taskQueue }

// AuditRetentionSpec is when retention runs: daily at 03:17 UTC, off the hour when other
// scheduled jobs crowd the servers.
var AuditRetentionSpec = client.ScheduleSpec{
	Calendars: []client.ScheduleCalendarSpec{{
		Hour: []client.ScheduleRange{{Start: 3}}, Minute: []client.ScheduleRange{{Start: 17}},
		Comment: "audit retention, daily",
	}},
}

// EnsureAuditRetention creates the audit retention schedule for taskQueue unless it exists,
// and reports whether it created it. Idempotent: "already exists" is success, and an existing
// schedule is left exactly as it is (an operator may have paused or changed it with `temporal
// schedule`). Runs never overlap (a run still going when the next is due makes the next one
// skip), and a run missed while the service was down is made up once within a day.
func EnsureAuditRetention(ctx context.Context, c client.Client, taskQueue string) (bool, error) {
	return ensure(ctx, c, AuditRetentionID(taskQueue), AuditRetentionSpec, workflows.ApplyAuditRetention,
		workflows.AuditRetentionInput{}, taskQueue)
}

// ensure creates a daily schedule that starts workflow with arg on taskQueue, unless a
// schedule with its id exists; it reports whether it created it. The policy is the same for
// every schedule here: runs never overlap (one still going when the next is due makes the next
// skip), and a run missed while the service was down is made up once within a day. An existing
// schedule is left exactly as it is: an operator may have paused or changed it.
func ensure(ctx context.Context, c client.Client, id string, spec client.ScheduleSpec, workflow, arg any, taskQueue string) (bool, error) {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            id,
		Spec:          spec,
		Action:        &client.ScheduleWorkflowAction{ID: id, Workflow: workflow, Args: []any{arg}, TaskQueue: taskQueue},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: 24 * time.Hour,
		Note:          "created by the worker at start (internal/control/schedule)",
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("schedule %s: %w", id, err)
	}
	return true, nil
}
