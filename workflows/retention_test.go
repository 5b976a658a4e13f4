package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/workflows"
)

// retentionEnv mocks the listing with the given tenants (in pages of the asked size) and
// records every PruneAudit input; prune answers per tenant (default: 3 events removed).
func retentionEnv(t *testing.T, targets []activities.RetentionTarget, prune map[string]func() (activities.PruneAuditResult, error)) (*testsuite.TestWorkflowEnvironment, *[]activities.PruneAuditInput) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	workflows.Register(env)
	env.RegisterActivity(act)
	env.OnActivity(act.ListRetentionTargets, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RetentionTargetsInput) (activities.RetentionTargetsPage, error) {
			var page activities.RetentionTargetsPage
			for _, tg := range targets {
				if tg.TenantID <= in.After {
					continue
				}
				if len(page.Targets) == in.Limit {
					page.More = true
					break
				}
				page.Targets = append(page.Targets, tg)
			}
			return page, nil
		})
	var mu sync.Mutex
	calls := &[]activities.PruneAuditInput{}
	env.OnActivity(act.PruneAudit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PruneAuditInput) (activities.PruneAuditResult, error) {
			mu.Lock()
			*calls = append(*calls, in)
			mu.Unlock()
			if f, ok := prune[in.TenantID]; ok {
				return f()
			}
			return activities.PruneAuditResult{Removed: 3, CheckpointSeq: 10}, nil
		})
	return env, calls
}

func target(id string, days int, hold bool) activities.RetentionTarget {
	return activities.RetentionTarget{TenantID: id, RetentionDays: days, LegalHold: hold}
}

// Every open tenant without a legal hold is pruned at workflow time minus its own retention;
// a held tenant is not touched; a tenant that fails or whose chain is broken is reported and
// the others still run.
func TestApplyAuditRetention(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	env, calls := retentionEnv(t, []activities.RetentionTarget{
		target("t-a", 365, false), target("t-b", 30, true), target("t-c", 7, false),
		target("t-d", 365, false), target("t-e", 365, false), target("t-f", 365, false),
	}, map[string]func() (activities.PruneAuditResult, error){
		"t-d": func() (activities.PruneAuditResult, error) {
			return activities.PruneAuditResult{}, permanent("mongo is gone")
		},
		"t-e": func() (activities.PruneAuditResult, error) {
			return activities.PruneAuditResult{Broken: &activities.AuditBreak{Seq: 4, Problem: audit.ProblemEdited}}, nil
		},
		"t-f": func() (activities.PruneAuditResult, error) {
			return activities.PruneAuditResult{Skipped: "legal hold"}, nil // set after the listing
		},
	})
	env.SetStartTime(start)
	env.ExecuteWorkflow(workflows.ApplyAuditRetention, workflows.AuditRetentionInput{PageSize: 2})
	require.NoError(t, env.GetWorkflowError())
	var res workflows.AuditRetentionResult
	require.NoError(t, env.GetWorkflowResult(&res))

	cutoffs := map[string]time.Time{}
	for _, c := range *calls {
		require.True(t, c.At.Equal(start), "the checkpoint time is workflow time")
		cutoffs[c.TenantID] = c.Cutoff
	}
	require.NotContains(t, cutoffs, "t-b", "legal hold: not pruned")
	require.True(t, cutoffs["t-a"].Equal(start.Add(-365*24*time.Hour)), "%v", cutoffs["t-a"])
	require.True(t, cutoffs["t-c"].Equal(start.Add(-7*24*time.Hour)))
	require.Len(t, cutoffs, 5)

	require.Equal(t, 6, res.Tenants)
	require.Equal(t, 2, res.Held, "one listed with a hold, one found held at pruning")
	require.Equal(t, 2, res.Pruned)
	require.EqualValues(t, 6, res.Removed)
	require.Equal(t, 1, res.FailedCount)
	require.Len(t, res.Failed, 1)
	require.Contains(t, res.Failed[0], "t-d")
	require.Equal(t, 1, res.BrokenCount)
	require.Equal(t, []string{"t-e: seq 4 edited"}, res.Broken)
}

// Past TenantsPerRun the run continues as new after the last tenant it did, with the same
// reference time and its totals.
func TestApplyAuditRetentionContinuesAsNew(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	env, calls := retentionEnv(t, []activities.RetentionTarget{
		target("t-a", 365, false), target("t-b", 365, false), target("t-c", 365, false), target("t-d", 365, false), target("t-e", 365, false),
	}, nil)
	env.SetStartTime(start)
	env.ExecuteWorkflow(workflows.ApplyAuditRetention, workflows.AuditRetentionInput{PageSize: 2, TenantsPerRun: 3})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "%v", err)
	require.Equal(t, workflows.AuditRetentionWorkflow, can.WorkflowType.Name)
	var next workflows.AuditRetentionInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, "t-d", next.After, "two pages done (four tenants): the next run starts after t-d")
	require.True(t, next.Now.Equal(start), "the same reference time")
	require.Equal(t, 4, next.Totals.Tenants)
	require.EqualValues(t, 12, next.Totals.Removed)
	require.Len(t, *calls, 4)
}
