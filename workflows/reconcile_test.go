package workflows_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/workflows"
)

// reconcileMocks records what a reconciliation run asked of its activities.
type reconcileMocks struct {
	mu        sync.Mutex
	pages     []activities.ReconcilePageInput
	repairs   []activities.RepairSafeInput
	decisions []activities.CompleteDecisionInput
	dropped   []string
	closed    int
}

// reconcileEnv mocks a registry of the given tenant ids (paged as asked) and a report with the
// given summary; decisions plan a database drop.
func reconcileEnv(t *testing.T, ids []string, summary activities.ReconcileSummary) (*testsuite.TestWorkflowEnvironment, *reconcileMocks) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	workflows.Register(env)
	env.RegisterActivity(act)
	mockClaims(env)
	m := &reconcileMocks{}
	env.OnActivity(act.BeginReconciliation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcileBeginInput) (activities.ReconcileBeginResult, error) {
			return activities.ReconcileBeginResult{AutoRepair: in.AutoRepair}, nil
		})
	env.OnActivity(act.ReconcileTenantPage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcilePageInput) (activities.ReconcilePageResult, error) {
			m.mu.Lock()
			m.pages = append(m.pages, in)
			m.mu.Unlock()
			var res activities.ReconcilePageResult
			for _, id := range ids {
				if id <= in.After {
					continue
				}
				if res.Checked == in.Limit {
					res.More = true
					break
				}
				res.Checked++
				res.Last = id
			}
			return res, nil
		})
	env.OnActivity(act.FindMongoOrphans, mock.Anything, mock.Anything).Return(activities.ReconcileOrphanResult{}, nil)
	env.OnActivity(act.FindRedisOrphans, mock.Anything, mock.Anything).Return(activities.ReconcileOrphanResult{}, nil)
	env.OnActivity(act.FinishReconciliation, mock.Anything, mock.Anything).Return(summary, nil)
	env.OnActivity(act.RepairSafeDrifts, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RepairSafeInput) (activities.RepairSafeResult, error) {
			m.mu.Lock()
			m.repairs = append(m.repairs, in)
			m.mu.Unlock()
			return activities.RepairSafeResult{Repaired: summary.SafeOpen}, nil
		})
	env.OnActivity(act.PlanDecision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DecisionInput) (activities.DecisionPlan, error) {
			return activities.DecisionPlan{TenantID: "gone-1", Actions: []string{activities.RepairDropMongo}}, nil
		})
	env.OnActivity(act.DeprovisionMongo, mock.Anything, mock.Anything).Return(likeActivity(act.DeprovisionMongo, func(in activities.DeprovisionInput) {
		m.mu.Lock()
		m.dropped = append(m.dropped, in.TenantID)
		m.mu.Unlock()
	}))
	env.OnActivity(act.CompleteDecision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CompleteDecisionInput) (activities.CompleteDecisionResult, error) {
			m.mu.Lock()
			m.decisions = append(m.decisions, in)
			m.mu.Unlock()
			return activities.CompleteDecisionResult{State: "repaired"}, nil
		})
	env.OnActivity(act.CloseReconciliation, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ReconcileCloseInput) error {
			m.mu.Lock()
			m.closed++
			m.mu.Unlock()
			return nil
		})
	return env, m
}

// likeActivity returns a mock of the activity fn (func(context.Context, In) (Out, error)) that
// calls record with its input and returns Out's zero value: the mock follows the activity's
// result type wherever it is declared.
func likeActivity[In any](fn any, record func(In)) any {
	t := reflect.TypeOf(fn)
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		record(args[1].Interface().(In))
		return []reflect.Value{reflect.Zero(t.Out(0)), reflect.Zero(t.Out(1))}
	}).Interface()
}

// The registry is read a page per activity, and the run continues as new once TenantsPerRun
// tenants are checked, carrying where it stopped and its counts; the next run resumes there,
// searches orphans once, reports, and closes at once when there is nothing to repair.
func TestReconcilePagesAndContinuesAsNew(t *testing.T) {
	t.Parallel()
	ids := []string{"t-a", "t-b", "t-c", "t-d", "t-e", "t-f", "t-g"}
	env, m := reconcileEnv(t, ids, activities.ReconcileSummary{})
	env.ExecuteWorkflow(workflows.ReconcileTenants, workflows.ReconcileInput{RunID: "rc-1", PageSize: 2, TenantsPerRun: 3})
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "%v", env.GetWorkflowError())
	require.Equal(t, workflows.ReconcileWorkflow, can.WorkflowType.Name)
	var next workflows.ReconcileInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, "t-d", next.State.After, "two pages (four tenants) done")
	require.Equal(t, 4, next.State.Checked)
	require.True(t, next.State.Begun)
	require.Equal(t, "rc-1", next.RunID)
	require.Len(t, m.pages, 2)
	require.Zero(t, m.closed, "continuing as new does not close the report")

	env2, m2 := reconcileEnv(t, ids, activities.ReconcileSummary{})
	env2.ExecuteWorkflow(workflows.ReconcileTenants, next)
	require.NoError(t, env2.GetWorkflowError())
	var res workflows.ReconcileResult
	require.NoError(t, env2.GetWorkflowResult(&res))
	require.Equal(t, 7, res.Checked)
	require.Equal(t, "nothing left to do", res.ClosedBy)
	require.Equal(t, "t-d", m2.pages[0].After, "resumes after the last tenant checked")
	require.Len(t, m2.pages, 2)
	require.Equal(t, 1, m2.closed)
	env2.AssertNotCalled(t, "BeginReconciliation", mock.Anything, mock.Anything)
}

// Safe repairs wait for the repair signal, and a deletion runs only on a decision naming the
// drift, through offboarding's purge activity; the run closes once nothing is left to do.
func TestReconcileRepairsOnlyOnSignals(t *testing.T) {
	t.Parallel()
	env, m := reconcileEnv(t, []string{"t-a"}, activities.ReconcileSummary{Total: 3, SafeOpen: 2, DecisionsOpen: 1})
	env.RegisterDelayedCallback(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		require.Empty(t, m.repairs, "no repair before the approval")
		require.Empty(t, m.dropped, "no deletion before the decision")
		env.SignalWorkflow(workflows.RepairSignal, decided("alice"))
	}, time.Hour)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(workflows.DecideSignal, workflows.DecisionSignal{Decision: decidedAbout("bob", "platform-admin", "d1")})
	}, 2*time.Hour)
	env.ExecuteWorkflow(workflows.ReconcileTenants, workflows.ReconcileInput{RunID: "rc-2"})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "nothing left to do", res.ClosedBy)
	require.Equal(t, 2, res.Repaired)
	require.Equal(t, 1, res.Decided)
	require.Len(t, m.repairs, 1)
	require.Equal(t, "alice", m.repairs[0].ApprovedBy)
	require.Equal(t, []string{"gone-1"}, m.dropped)
	require.Len(t, m.decisions, 1)
	require.Equal(t, "bob", m.decisions[0].By)
	require.Empty(t, m.decisions[0].Error)
	require.Equal(t, 1, m.closed)
}

// Without approval the run waits out its decision window and closes, repairing nothing.
func TestReconcileWindowEndsWithoutRepairs(t *testing.T) {
	t.Parallel()
	env, m := reconcileEnv(t, []string{"t-a"}, activities.ReconcileSummary{Total: 1, SafeOpen: 1})
	env.ExecuteWorkflow(workflows.ReconcileTenants, workflows.ReconcileInput{RunID: "rc-3", DecisionWindow: time.Hour})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "decision window over", res.ClosedBy)
	require.Empty(t, m.repairs)
	require.Equal(t, 1, m.closed)
}

// With auto-repair the safe repairs run right after the report, approved by "auto-repair".
func TestReconcileAutoRepair(t *testing.T) {
	t.Parallel()
	env, m := reconcileEnv(t, []string{"t-a"}, activities.ReconcileSummary{Total: 1, SafeOpen: 1})
	env.ExecuteWorkflow(workflows.ReconcileTenants, workflows.ReconcileInput{RunID: "rc-4", AutoRepair: true})
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, m.repairs, 1)
	require.Equal(t, "auto-repair", m.repairs[0].ApprovedBy)
}
