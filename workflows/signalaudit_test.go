package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/model/tenant"
	"github.com/misybot/tenancy/workflows"
)

// suspendParked runs SuspendTenant with RevokeSessions failing (retryably) once, so the step
// parks for an operator; decide acts on the parked run. It returns every audit input.
func suspendParked(t *testing.T, decide func(env *testsuite.TestWorkflowEnvironment)) (*testsuite.TestWorkflowEnvironment, []activities.AuditInput) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	workflows.Register(env)
	env.RegisterActivity(act)
	mockClaims(env)
	var mu sync.Mutex
	var audits []activities.AuditInput
	revokes := 0
	env.OnActivity(act.TransitionStatus, mock.Anything, mock.Anything).Return(activities.TransitionResult{Status: tenant.StatusSuspended, Changed: true}, nil)
	env.OnActivity(act.RevokeSessions, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.TenantRef) (activities.RevokeSessionsResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if revokes++; revokes == 1 {
				return activities.RevokeSessionsResult{}, errors.New("redis down")
			}
			return activities.RevokeSessionsResult{Revoked: 1}, nil
		})
	env.OnActivity(act.RecordAudit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AuditInput) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			audits = append(audits, in)
			return true, nil
		})
	env.RegisterDelayedCallback(func() { decide(env) }, time.Hour)
	env.ExecuteWorkflow(workflows.SuspendTenant, workflows.StatusChangeInput{TenantID: "acme", StepAttempts: 1})
	mu.Lock()
	defer mu.Unlock()
	return env, audits
}

func signalEvents(audits []activities.AuditInput) []activities.AuditEvent {
	var out []activities.AuditEvent
	for _, in := range audits {
		if len(in.Event.Action) > len("workflow.signal.") && in.Event.Action[:len("workflow.signal.")] == "workflow.signal." {
			out = append(out, in.Event)
		}
	}
	return out
}

// An operator's retry of a parked step, an abort, and a cancellation of the workflow each leave
// one event naming who decided and which step, routed to the chain the tenant's state allows.
func TestOperatorDecisionsAreAudited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		decide  func(env *testsuite.TestWorkflowEnvironment)
		action  string
		actor   activities.AuditActor
		failed  bool
		suspend bool
	}{
		{"retry", func(env *testsuite.TestWorkflowEnvironment) {
			env.SignalWorkflow(workflows.RetrySignal, decided("alice"))
		},
			"workflow.signal.retry", activities.AuditActor{Type: activities.ActorOperator, ID: "alice"}, false, true},
		{"abort", func(env *testsuite.TestWorkflowEnvironment) {
			env.SignalWorkflow(workflows.AbortSignal, decided("bob"))
		},
			"workflow.signal.abort", activities.AuditActor{Type: activities.ActorOperator, ID: "bob"}, true, false},
		{"cancel", func(env *testsuite.TestWorkflowEnvironment) { env.CancelWorkflow() },
			"workflow.signal.cancel", activities.AuditActor{Type: activities.ActorSystem, ID: "workflow cancellation"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, audits := suspendParked(t, tc.decide)
			require.Equal(t, tc.failed, env.GetWorkflowError() != nil, "%v", env.GetWorkflowError())
			events := signalEvents(audits)
			require.Len(t, events, 1, "one event per decision")
			ev := events[0]
			require.Equal(t, tc.action, ev.Action)
			require.Equal(t, tc.actor, ev.Actor)
			require.Equal(t, "acme", ev.TenantID)
			require.Equal(t, "revoke-sessions", ev.Details["step"])
			require.Contains(t, ev.ID, "/signal/"+tc.action[len("workflow.signal."):]+"/revoke-sessions/1")
			for _, in := range audits {
				if in.Event.ID == ev.ID {
					require.True(t, in.Route, "routed: the tenant may be in any state")
				}
			}
			suspended := false
			for _, in := range audits {
				suspended = suspended || in.Event.Action == "tenant.suspend"
			}
			require.Equal(t, tc.suspend, suspended)
		})
	}
}
