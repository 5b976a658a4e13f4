package activities_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/audit"
)

// A failed step's event keeps the error's text for operators and its stable type apart, for
// readers who may not see the text (tenants).
func TestStepEventRecordsTheErrorType(t *testing.T) {
	info := activity.Info{ActivityType: activity.Type{Name: "TransitionStatus"}, ActivityID: "5", Attempt: 2,
		WorkflowExecution: workflow.Execution{ID: "tenant-lifecycle:acme", RunID: "r1"}}
	e := activities.StepEvent(info, "acme", temporal.NewNonRetryableApplicationError("tenant acme is offboarded", activities.ErrTypeIllegalTransition, nil), nil)
	require.Equal(t, audit.OutcomeFailure, e.Outcome)
	require.Contains(t, e.Reason, "tenant acme is offboarded")
	require.Equal(t, activities.ErrTypeIllegalTransition, e.Details["errorType"])

	plain := activities.StepEvent(info, "acme", errors.New("dial tcp 10.0.0.7:5432: refused"), nil)
	require.Empty(t, plain.Details["errorType"], "no type to give")
	require.Equal(t, "tenant-lifecycle:acme/r1/activity/5", plain.ID)
}
