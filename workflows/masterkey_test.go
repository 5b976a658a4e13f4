package workflows_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/workflows"
)

// rotationEnv mocks the master key rotation's activities: two tenants, each with one data key
// and a secret to re-wrap, and three cells to re-seal. audits collects the audit events.
func rotationEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *recorder, *[]activities.AuditEvent) {
	t.Helper()
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	workflows.Register(env)
	env.RegisterActivity(act)
	rec := &recorder{}
	var audits []activities.AuditEvent
	env.OnActivity(act.MasterKeyVersion, mock.Anything).Return(activities.MasterKeyVersionResult{Version: 2}, nil)
	env.OnActivity(act.ListRewrapTargets, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.TenantPage) (activities.TenantIDs, error) {
			rec.add("ListRewrapTargets")
			if in.After != "" {
				return activities.TenantIDs{}, nil
			}
			return activities.TenantIDs{IDs: []string{"acme", "globex"}}, nil
		})
	env.OnActivity(act.RewrapTenantKeys, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RewrapInput) (activities.RewrapResult, error) {
			rec.add("RewrapTenantKeys")
			return activities.RewrapResult{DataKeys: 1, Secret: true}, nil
		})
	env.OnActivity(act.ResealCellStores, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ResealCellsInput) (activities.ResealCellsResult, error) {
			rec.add("ResealCellStores")
			require.Equal(t, 2, in.Version, "the rotation's version")
			return activities.ResealCellsResult{Cells: 3}, nil
		})
	env.OnActivity(act.RecordAudit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AuditInput) (bool, error) {
			rec.add("RecordAudit:" + in.Event.Action)
			audits = append(audits, in.Event)
			return true, nil
		})
	return env, rec, &audits
}

// After the tenants, the rotation re-seals the cells' store addresses, counts them in its
// result and says so in its final audit event.
func TestRotateMasterKeyResealsTheCellsAfterTheTenants(t *testing.T) {
	t.Parallel()
	env, rec, audits := rotationEnv(t)
	env.ExecuteWorkflow(workflows.RotateMasterKey, workflows.RotateMasterKeyInput{RequestedBy: "ops"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.RotateMasterKeyResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.RotateMasterKeyResult{Version: 2, Tenants: 2, DataKeys: 2, Secrets: 2, Cells: 3}, res)

	calls := rec.list()
	require.Equal(t, []string{"ResealCellStores", "RecordAudit:platform.master-key.rotate"}, calls[len(calls)-2:])
	require.Len(t, *audits, 1)
	require.Equal(t, "3", (*audits)[0].Details["cellStoresResealed"])
	require.Equal(t, "2", (*audits)[0].Details["secretsResealed"])
	steps := stepNames(progress(t, env))
	require.Equal(t, []string{"reseal cells=completed", "audit=completed"}, steps[len(steps)-2:])
}

// A run started before the change (no marker: GetVersion answers DefaultVersion) goes from
// the tenants to the audit, as it did when it started, so it replays unchanged.
func TestRotateMasterKeyStartedBeforeTheChangeResealsNoCell(t *testing.T) {
	t.Parallel()
	env, rec, audits := rotationEnv(t)
	env.OnGetVersion("reseal-cell-stores", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	env.ExecuteWorkflow(workflows.RotateMasterKey, workflows.RotateMasterKeyInput{RequestedBy: "ops"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.RotateMasterKeyResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.RotateMasterKeyResult{Version: 2, Tenants: 2, DataKeys: 2, Secrets: 2}, res)
	require.NotContains(t, rec.list(), "ResealCellStores")
	require.Len(t, *audits, 1)
	require.NotContains(t, (*audits)[0].Details, "cellStoresResealed")
}
