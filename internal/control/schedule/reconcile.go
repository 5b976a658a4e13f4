package schedule

import (
	"context"

	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/workflows"
)

// ReconciliationID is the id of the daily reconciliation schedule of the deployment whose
// workers poll taskQueue (one per task queue, as AuditRetentionID). Its runs take this id with
// the scheduled time appended, and that is their report's id.
func ReconciliationID(taskQueue string) string { return "reconcile:" + taskQueue }

// ReconciliationSpec is when reconciliation runs: daily at 04:41 UTC, after audit retention.
var ReconciliationSpec = client.ScheduleSpec{
	Calendars: []client.ScheduleCalendarSpec{{
		Hour: []client.ScheduleRange{{Start: 4}}, Minute: []client.ScheduleRange{{Start: 41}},
		Comment: "reconciliation of the registry with the stores, daily",
	}},
}

// EnsureReconciliation creates the daily reconciliation schedule for taskQueue unless it
// exists, and reports whether it created it. Idempotent like EnsureAuditRetention: "already
// exists" is success and an existing schedule is left as it is. Runs never overlap (a run
// still waiting for decisions when the next is due makes the next one skip; runs wait at most
// workflows.DefaultDecisionWindow, under a day), and a run missed while the service was down is
// made up once within a day. Whether safe repairs run without approval is the worker's
// RECONCILE_AUTO_REPAIR, read when each run starts, not fixed here.
func EnsureReconciliation(ctx context.Context, c client.Client, taskQueue string) (bool, error) {
	return ensure(ctx, c, ReconciliationID(taskQueue), ReconciliationSpec, workflows.ReconcileTenants,
		workflows.ReconcileInput{RequestedBy: "schedule"}, taskQueue)
}
