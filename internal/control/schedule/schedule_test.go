package schedule_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/internal/control/schedule"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// The schedule is created once, found on every later start, runs the retention workflow daily
// on the deployment's own task queue, and never overlaps itself.
func TestEnsureAuditRetention(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testenv.TemporalClient(t)
	queue := "sched-" + testenv.TenantID("q")
	id := schedule.AuditRetentionID(queue)
	t.Cleanup(func() { _ = c.ScheduleClient().GetHandle(context.Background(), id).Delete(context.Background()) })

	created, err := schedule.EnsureAuditRetention(ctx, c, queue)
	require.NoError(t, err)
	require.True(t, created)
	created, err = schedule.EnsureAuditRetention(ctx, c, queue)
	require.NoError(t, err)
	require.False(t, created, "a second start finds it")

	desc, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	require.NoError(t, err)
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok, "%T", desc.Schedule.Action)
	require.Equal(t, workflows.AuditRetentionWorkflow, action.Workflow)
	require.Equal(t, queue, action.TaskQueue)
	require.Len(t, desc.Schedule.Spec.Calendars, 1)
	require.NotEqual(t, schedule.AuditRetentionID("other"), id, "one schedule per task queue")
	next := desc.Info.NextActionTimes
	require.NotEmpty(t, next)
	if len(next) > 1 {
		require.Equal(t, 24*time.Hour, next[1].Sub(next[0]), "daily")
	}
}

// The reconciliation schedule is created once per task queue, runs ReconcileTenants daily on
// that queue, and never overlaps itself.
func TestEnsureReconciliation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testenv.TemporalClient(t)
	queue := "sched-" + testenv.TenantID("rq")
	id := schedule.ReconciliationID(queue)
	t.Cleanup(func() { _ = c.ScheduleClient().GetHandle(context.Background(), id).Delete(context.Background()) })

	created, err := schedule.EnsureReconciliation(ctx, c, queue)
	require.NoError(t, err)
	require.True(t, created)
	created, err = schedule.EnsureReconciliation(ctx, c, queue)
	require.NoError(t, err)
	require.False(t, created, "a second start finds it")

	desc, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	require.NoError(t, err)
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok, "%T", desc.Schedule.Action)
	require.Equal(t, workflows.ReconcileWorkflow, action.Workflow)
	require.Equal(t, queue, action.TaskQueue)
	require.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, desc.Schedule.Policy.Overlap)
	next := desc.Info.NextActionTimes
	require.NotEmpty(t, next)
	if len(next) > 1 {
		require.Equal(t, 24*time.Hour, next[1].Sub(next[0]), "daily")
	}
}
