package workflows_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
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

// An onboarding that places its tenant records the cell in the same upsert as its final
// status: findable by CellId, at no extra visibility write.
func TestOnboardingRecordsItsCellWithItsFinalStatus(t *testing.T) {
	t.Parallel()
	env, _ := lifecycleEnv(t, nil)
	var upserts []string
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		attrs := args.Get(0).(temporal.SearchAttributes)
		status, _ := attrs.GetKeyword(workflows.TenantStatusAttribute)
		cell, _ := attrs.GetKeyword(workflows.CellIDAttribute)
		upserts = append(upserts, status+"@"+cell)
	}).Return(nil)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", Placement: &workflows.Placement{}})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"active@eu-1"}, upserts)
}

// An onboarding waiting for approval is found in the onboarding status while it waits.
func TestOnboardingWaitingForApprovalUpsertsItsStatusFirst(t *testing.T) {
	t.Parallel()
	env, _ := lifecycleEnv(t, nil)
	got := statusUpserts(env)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, []string{"onboarding"}, *got, "upserted before the wait")
		env.SignalWorkflow(workflows.ApproveSignal, decided("bob"))
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

// getVersionCalls counts the run's calls to GetVersion("search-attributes"), answering as a new
// run would (the newest version).
func getVersionCalls(env *testsuite.TestWorkflowEnvironment) *atomic.Int32 {
	var n atomic.Int32
	env.OnGetVersion("search-attributes", workflow.DefaultVersion, workflows.SearchAttributesVersion).
		Run(func(mock.Arguments) { n.Add(1) }).Return(workflow.Version(workflows.SearchAttributesVersion))
	return &n
}

// A run started with its search-attribute version in its input (as the API starts them now)
// records no GetVersion marker, so the SDK upserts no TemporalChangeVersion: one visibility
// write fewer per run. It behaves as that version says.
func TestARunWithItsVersionInItsInputRecordsNoMarker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		version int
		want    []string
	}{
		{"current", workflows.SearchAttributesVersion, []string{"active"}},
		{"version 1", 1, []string{"onboarding", "active"}},
		{"newer than this code: runs as the newest", workflows.SearchAttributesVersion + 5, []string{"active"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _ := lifecycleEnv(t, nil)
			calls := getVersionCalls(env)
			got := statusUpserts(env)
			env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme", SearchAttributesVersion: tc.version})
			require.NoError(t, env.GetWorkflowError())
			require.Zero(t, calls.Load(), "no GetVersion marker")
			require.Equal(t, tc.want, *got)
		})
	}
	// Without it in the input (a run started before), the marker decides, as it did.
	env, _ := lifecycleEnv(t, nil)
	calls := getVersionCalls(env)
	env.ExecuteWorkflow(workflows.OnboardTenant, workflows.OnboardInput{TenantID: "acme"})
	require.NoError(t, env.GetWorkflowError())
	require.Positive(t, calls.Load())
}

// Every lifecycle workflow that upserts search attributes takes the version from its input.
func TestEveryLifecycleWorkflowTakesItsVersionFromItsInput(t *testing.T) {
	t.Parallel()
	v := workflows.SearchAttributesVersion
	for name, run := range map[string]func(env *testsuite.TestWorkflowEnvironment){
		"suspend": func(env *testsuite.TestWorkflowEnvironment) {
			env.ExecuteWorkflow(workflows.SuspendTenant, workflows.StatusChangeInput{TenantID: "acme", SearchAttributesVersion: v})
		},
		"offboard": func(env *testsuite.TestWorkflowEnvironment) {
			env.ExecuteWorkflow(workflows.OffboardTenant, workflows.OffboardInput{TenantID: "acme", SearchAttributesVersion: v})
		},
		"profile change": func(env *testsuite.TestWorkflowEnvironment) {
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(workflows.ApproveSignal, decided("bob")) }, time.Hour)
			env.ExecuteWorkflow(workflows.ChangeTenantProfile, workflows.ProfileChangeInput{
				Change: activities.ProfileChange{TenantID: "acme", Type: tenant.TypeEnterprise}, RequestedBy: "alice", SearchAttributesVersion: v,
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			env, _ := lifecycleEnv(t, nil)
			calls := getVersionCalls(env)
			var upserts atomic.Int32
			env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(mock.Arguments) { upserts.Add(1) }).Return(nil)
			run(env)
			require.NoError(t, env.GetWorkflowError())
			require.Positive(t, upserts.Load(), "it upserts its search attributes")
			require.Zero(t, calls.Load(), "no GetVersion marker")
		})
	}
}
