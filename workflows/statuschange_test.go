package workflows_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/tenant"
	"github.com/misybot/tenancy/workflows"
)

func TestSuspendTenant(t *testing.T) {
	t.Parallel()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.OnActivity(a.TransitionStatus, mock.Anything, activities.TransitionInput{
		TenantID: "acme", To: tenant.StatusSuspended, From: workflows.SuspendFrom,
	}).Return(activities.TransitionResult{Status: tenant.StatusSuspended, Changed: true}, nil).Once()

	env.ExecuteWorkflow(workflows.SuspendTenant, workflows.StatusChangeInput{TenantID: "acme"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.StatusChangeResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, workflows.StatusChangeResult{Status: tenant.StatusSuspended, Changed: true}, res)

	q, err := env.QueryWorkflow(workflows.ProgressQuery)
	require.NoError(t, err)
	var p workflows.Progress
	require.NoError(t, q.Get(&p))
	require.Equal(t, "suspend", p.Operation)
	require.Len(t, p.Steps, 1)
	require.Equal(t, "completed", p.Steps[0].Status)
	env.AssertExpectations(t)
}

// An illegal transition is permanent: the activity runs once, the workflow fails with the
// activity's error type, and the progress names the failure.
func TestRestoreIllegalTransitionFailsWithoutRetry(t *testing.T) {
	t.Parallel()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.OnActivity(a.TransitionStatus, mock.Anything, mock.Anything).
		Return(activities.TransitionResult{Status: tenant.StatusPending},
			temporal.NewNonRetryableApplicationError("tenant acme is pending", activities.ErrTypeIllegalTransition, nil)).Once()

	env.ExecuteWorkflow(workflows.RestoreTenant, workflows.StatusChangeInput{TenantID: "acme"})
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, activities.ErrTypeIllegalTransition, appErr.Type())

	q, qerr := env.QueryWorkflow(workflows.ProgressQuery)
	require.NoError(t, qerr)
	var p workflows.Progress
	require.NoError(t, q.Get(&p))
	require.Equal(t, "failed", p.Steps[0].Status)
	require.Contains(t, p.Steps[0].LastError, "pending")
	env.AssertExpectations(t)
}
