package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/workflows"
)

// statusUpserts records the TenantStatus values a run upserts, in order.
func statusUpserts(env *testsuite.TestWorkflowEnvironment) *[]string {
	var got []string
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(workflows.TenantStatusAttribute); ok {
			got = append(got, v)
		}
	}).Return(nil)
	return &got
}

// At version 2 an onboarding that waits for nobody upserts its status once, at the end: the
// onboarding status it passes through costs no visibility write.
func TestOnboardingUpsertsOnlyTheStatusItEndsIn(t *testing.T) {
	t.Parallel()
	env, _ := lifecycleEnv(t, nil)
	got := statusUpserts(env)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme"})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"active"}, *got)
}

// An onboarding waiting for approval is found in the onboarding status while it waits.
func TestOnboardingWaitingForApprovalUpsertsItsStatusFirst(t *testing.T) {
	t.Parallel()
	env, _ := lifecycleEnv(t, nil)
	got := statusUpserts(env)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, []string{"onboarding"}, *got, "upserted before the wait")
		env.SignalWorkflow(workflows.ApproveSignal, "bob")
	}, time.Hour)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", NeedsApproval: true, RequestedBy: "alice"})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"onboarding", "active"}, *got)
}

// A run that recorded version 1 keeps upserting every status at once.
func TestARunAtSearchAttributesVersion1UpsertsEveryStatus(t *testing.T) {
	t.Parallel()
	env, _ := lifecycleEnv(t, nil)
	env.OnGetVersion("search-attributes", workflow.DefaultVersion, 2).Return(workflow.Version(1))
	got := statusUpserts(env)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme"})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"onboarding", "active"}, *got)
}
