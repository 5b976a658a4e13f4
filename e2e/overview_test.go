package e2e

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// The overview against the real servers: operations of the stack's task queue counted by
// outcome, hour and type (exact: the queue is this test's own); the latest runs; a run waiting
// for an approval and one parked in awaiting_operator, each with what it accepts; tenants by
// status. The registry is shared with tests running at the same time, so tenant counts are
// checked against this test's own tenants (at least them), and exactly in
// internal/domain/registry's TestCountByStatus.
func TestOverview(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()

	code, empty := s.do(http.MethodGet, api.OverviewPath, "")
	require.Equal(t, http.StatusOK, code, empty)
	require.Equal(t, map[string]any{"url": api.DefaultTemporalUIURL, "namespace": "default"}, empty["temporalUi"])
	ops := empty["operations"].(map[string]any)
	require.Empty(t, ops["totals"], "a new task queue has run nothing")
	require.Len(t, ops["hours"], 24)
	require.Empty(t, ops["recent"])
	require.Empty(t, ops["waiting"])

	// suspended (onboarded, then suspended): two completed operations.
	active := testenv.TenantID("ov")
	code, body := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(active, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	onboardRun := body["runId"]
	code, body = s.do(http.MethodPost, api.TenantsPath+"/"+active+"/suspend", "")
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	suspendRun := body["runId"]
	// pending: registered only.
	pending := testenv.TenantID("ov")
	code, body = s.do(http.MethodPost, api.TenantsPath, onboardBody(pending, "standard"))
	require.Equal(t, http.StatusCreated, code, body)
	// onboarding, waiting for an approval (an owner tenant).
	waiting := testenv.TenantID("ov")
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(waiting, "owner"))
	require.Equal(t, http.StatusAccepted, code, body)
	approvalRun := body["runId"]
	t.Cleanup(func() { _ = s.temporal.TerminateWorkflow(ctx, workflows.WorkflowID(waiting), "", "test over") })
	require.Eventually(t, func() bool {
		_, op := s.do(http.MethodGet, api.TenantsPath+"/"+waiting+"/operations/current", "")
		p, _ := op["progress"].(map[string]any)
		return p != nil && p["state"] == workflows.StateAwaitingApproval
	}, 30*time.Second, 50*time.Millisecond)
	// A second active tenant whose offboarding parks: its export step fails while the export
	// directory is a file, after its one attempt.
	parkedID := testenv.TenantID("ov")
	code, body = s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(parkedID, "standard"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, s.wait(body))
	require.NoError(t, os.RemoveAll(s.exports))
	require.NoError(t, os.WriteFile(s.exports, nil, 0o600))
	parked, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(parkedID), TaskQueue: s.queue},
		workflows.OffboardTenant, workflows.OffboardInput{TenantID: parkedID, RequestedBy: "overview-test", StepAttempts: 1, StepTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.temporal.TerminateWorkflow(ctx, parked.GetID(), parked.GetRunID(), "test over") })
	require.Eventually(t, func() bool {
		v, err := s.temporal.QueryWorkflow(ctx, parked.GetID(), parked.GetRunID(), workflows.ProgressQuery)
		var p workflows.Progress
		return err == nil && v.Get(&p) == nil && p.State == workflows.StateAwaitingOperator
	}, 30*time.Second, 100*time.Millisecond)

	code, got := s.do(http.MethodGet, api.OverviewPath, "")
	require.Equal(t, http.StatusOK, code, got)
	require.NotContains(t, got, "operationsError")
	ops = got["operations"].(map[string]any)
	// Onboard ×3 (two completed, one running), suspend completed, offboard running.
	require.Equal(t, map[string]any{"completed": 3.0, "running": 2.0}, ops["totals"])
	byType := map[string]any{}
	for _, tc := range ops["byType"].([]any) {
		tc := tc.(map[string]any)
		byType[tc["workflow"].(string)] = tc["counts"]
	}
	require.Equal(t, map[string]any{"completed": 2.0, "running": 1.0}, byType[workflows.OnboardWorkflow])
	require.Equal(t, map[string]any{"completed": 1.0}, byType[workflows.SuspendWorkflow])
	require.Equal(t, map[string]any{"running": 1.0}, byType[workflows.OffboardWorkflow])
	require.Equal(t, map[string]any{}, byType[workflows.RestoreWorkflow])
	hourly := map[string]float64{}
	for _, h := range ops["hours"].([]any) {
		for k, n := range h.(map[string]any)["counts"].(map[string]any) {
			hourly[k] += n.(float64)
		}
	}
	require.Equal(t, map[string]float64{"completed": 3, "running": 2}, hourly, "the hours add up to the totals")

	recent := map[any]map[string]any{}
	for _, r := range ops["recent"].([]any) {
		r := r.(map[string]any)
		recent[r["runId"]] = r
	}
	require.Len(t, recent, 5, "ProvisionTenant, a child, is not an operation")
	require.Equal(t, "completed", recent[onboardRun]["status"])
	require.Equal(t, workflows.WorkflowID(active), recent[onboardRun]["workflowId"])
	require.Equal(t, active, recent[onboardRun]["tenantId"])
	require.Equal(t, workflows.SuspendWorkflow, recent[suspendRun]["workflow"])
	require.Equal(t, "running", recent[approvalRun]["status"])

	waits := map[any]map[string]any{}
	for _, w := range ops["waiting"].([]any) {
		w := w.(map[string]any)
		waits[w["tenantId"]] = w
	}
	require.Len(t, waits, 2, "%v", ops["waiting"])
	require.Equal(t, 2.0, ops["runningChecked"], "the waiting onboarding (its child starts after the approval) and the offboarding")
	approval := waits[waiting]
	require.Equal(t, workflows.StateAwaitingApproval, approval["state"])
	require.Equal(t, "onboard", approval["operation"])
	require.Equal(t, approvalRun, approval["runId"])
	require.Equal(t, []any{workflows.ApproveSignal, workflows.AbortSignal}, approval["signals"])
	require.Equal(t, "await-approval", approval["step"])
	require.Equal(t, "bootstrap", approval["requestedBy"], "the operator of the bootstrap token")
	park := waits[parkedID]
	require.Equal(t, workflows.StateAwaitingOperator, park["state"])
	require.Equal(t, parked.GetRunID(), park["runId"])
	require.Equal(t, []any{workflows.RetrySignal, workflows.AbortSignal}, park["signals"])
	require.NotEmpty(t, park["step"])
	require.NotEmpty(t, park["lastError"])

	tenants := got["tenants"].(map[string]any)
	by := tenants["byStatus"].(map[string]any)
	require.Len(t, by, 7, "every status")
	for status, mine := range map[string]float64{"pending": 1, "suspended": 1, "onboarding": 1, "offboarding": 1} {
		require.GreaterOrEqual(t, by[status].(float64), mine, status)
	}
	sum := 0.0
	for _, n := range by {
		sum += n.(float64)
	}
	require.Equal(t, tenants["total"], sum)

	code, cfg := s.do(http.MethodGet, api.DashboardConfigPath, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, empty["temporalUi"], cfg["temporalUi"])
	code, _ = s.doAs("wrong-token-0123456789", http.MethodGet, api.OverviewPath, "")
	require.Equal(t, http.StatusUnauthorized, code)
}
