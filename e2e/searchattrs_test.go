package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/misybot/tenancy/api"
	"github.com/misybot/tenancy/internal/testkit/testenv"
	"github.com/misybot/tenancy/workflows"
)

// A tenant's finished runs are found by its id through the visibility store, as
// `temporal workflow list --query 'TenantId="…"'` and the Web UI find them, each carrying its
// operation, the tenant's type and the status the run left it in.
func TestRunsAreFoundByTenant(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()
	id := testenv.TenantID("search")

	code, run := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "standard"))
	require.Equal(t, http.StatusAccepted, code, run)
	require.NoError(t, s.wait(run))
	code, run = s.do(http.MethodPost, api.TenantsPath+"/"+id+"/suspend", `{"reason":"test"}`)
	require.Equal(t, http.StatusAccepted, code, run)
	require.NoError(t, s.wait(run))

	// Visibility is updated asynchronously: list until both closed runs are there.
	var found []*workflowpb.WorkflowExecutionInfo
	require.Eventually(t, func() bool {
		resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: `TenantId="` + id + `" AND ExecutionStatus="Completed"`,
		})
		if err != nil {
			return false
		}
		found = resp.GetExecutions()
		return len(found) == 2
	}, time.Minute, 200*time.Millisecond, "the tenant's two completed runs are listed by TenantId")

	attr := func(info *workflowpb.WorkflowExecutionInfo, name string) string {
		p := info.GetSearchAttributes().GetIndexedFields()[name]
		require.NotNil(t, p, "%s on %s", name, info.GetType().GetName())
		var v string
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &v))
		return v
	}
	byType := map[string]*workflowpb.WorkflowExecutionInfo{}
	for _, info := range found {
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, info.GetStatus())
		byType[info.GetType().GetName()] = info
	}
	onboard, suspend := byType[workflows.OnboardWorkflow], byType[workflows.SuspendWorkflow]
	require.NotNil(t, onboard)
	require.NotNil(t, suspend)
	require.Equal(t, id, attr(onboard, "TenantId"))
	require.Equal(t, "onboard", attr(onboard, "LifecycleOperation"))
	require.Equal(t, "standard", attr(onboard, "TenantType"))
	require.Equal(t, "active", attr(onboard, "TenantStatus"), "updated by the run: it started with pending")
	require.Equal(t, "suspend", attr(suspend, "LifecycleOperation"))
	require.Equal(t, "suspended", attr(suspend, "TenantStatus"), "updated by the run: it started with active")

	// The operation narrows the search.
	resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: `TenantId="` + id + `" AND LifecycleOperation="suspend"`,
	})
	require.NoError(t, err)
	require.Len(t, resp.GetExecutions(), 1)
	require.Equal(t, workflows.SuspendWorkflow, resp.GetExecutions()[0].GetType().GetName())
}

// An onboarding waiting for approval is found in the onboarding status while it waits (the
// status it passes through is upserted before the run waits for a person), and in active once
// approved.
func TestARunWaitingForApprovalIsFoundInItsStatus(t *testing.T) {
	t.Parallel()
	s := newStack(t, true)
	ctx := context.Background()
	id := testenv.TenantID("search")
	code, run := s.do(http.MethodPost, api.TenantsPath+"/onboard", onboardBody(id, "enterprise"))
	require.Equal(t, http.StatusAccepted, code, run)

	count := func(query string) int {
		resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			return -1
		}
		return len(resp.GetExecutions())
	}
	require.Eventually(t, func() bool {
		return count(`TenantId="`+id+`" AND TenantStatus="onboarding" AND ExecutionStatus="Running"`) == 1
	}, time.Minute, 200*time.Millisecond, "the waiting run is found by TenantStatus=onboarding")

	s.approve(id) // through the API: a raw signal is refused (operator decisions)
	require.NoError(t, s.wait(run))
	require.Eventually(t, func() bool {
		return count(`TenantId="`+id+`" AND TenantStatus="active" AND ExecutionStatus="Completed"`) == 1
	}, time.Minute, 200*time.Millisecond, "the finished run is found by TenantStatus=active")
}
