package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
)

// AuditRetentionWorkflow is the type name of ApplyAuditRetention.
const AuditRetentionWorkflow = "ApplyAuditRetention"

// Defaults of an audit retention run.
const (
	// DefaultRetentionPage is how many tenants are listed, and pruned in parallel, at a time.
	DefaultRetentionPage = 25
	// DefaultRetentionTenantsPerRun bounds one run's history: past it, the run continues as
	// new where it stopped.
	DefaultRetentionTenantsPerRun = 1000
	// maxRetentionReport bounds the lists of broken and failed tenants in the result.
	maxRetentionReport = 100
)

// AuditRetentionInput starts (or continues) an audit retention run. The zero value is what the
// daily schedule starts.
type AuditRetentionInput struct {
	// Now is the run's reference time, from which each tenant's cutoff is counted. Zero: the
	// workflow's time at start. Carried across continue-as-new, so one run applies one time.
	Now time.Time
	// After resumes the tenant listing after this id (continue-as-new).
	After string
	// PageSize and TenantsPerRun override DefaultRetentionPage and
	// DefaultRetentionTenantsPerRun (0 keeps them).
	PageSize      int
	TenantsPerRun int
	StepAttempts  int32
	StepTimeout   time.Duration
	// Totals are the counts of the runs this one continues.
	Totals AuditRetentionResult
}

// AuditRetentionResult counts what a run did, over all its continuations.
type AuditRetentionResult struct {
	// Tenants counts the tenants looked at (active or suspended).
	Tenants int
	// Held counts tenants skipped for a legal hold; Skipped those skipped for another reason
	// found at pruning time (no longer open, no database).
	Held    int
	Skipped int
	// Pruned counts tenants that lost at least one event; Removed the events.
	Pruned  int
	Removed int64
	// Broken lists tenants whose chain did not verify (left untouched), Failed those whose
	// pruning failed; at most maxRetentionReport entries each, the counts are exact.
	BrokenCount int
	Broken      []string `json:",omitempty"`
	FailedCount int
	Failed      []string `json:",omitempty"`
}

// ApplyAuditRetention applies every open tenant's audit retention: for each active or
// suspended tenant without a legal hold, the events older than now minus its retention period
// are removed behind a signed checkpoint (activities.PruneAudit, which checks the policy
// again before deleting). A Temporal Schedule starts it daily (internal/control/schedule).
//
// Deterministic: the cutoffs come from workflow time (Now), never the clock of an activity. A
// tenant that fails, or whose chain does not verify, is reported and the run goes on with the
// others; only a listing that keeps failing fails the run (the next day's run starts over).
// Tenants are read in pages and the run continues as new every TenantsPerRun tenants, so its
// history stays bounded however many tenants there are.
func ApplyAuditRetention(ctx workflow.Context, in AuditRetentionInput) (AuditRetentionResult, error) {
	if in.Now.IsZero() {
		in.Now = workflow.Now(ctx)
	}
	pageSize := in.PageSize
	if pageSize <= 0 {
		pageSize = DefaultRetentionPage
	}
	perRun := in.TenantsPerRun
	if perRun <= 0 {
		perRun = DefaultRetentionTenantsPerRun
	}
	res := in.Totals
	if err := workflow.SetQueryHandler(ctx, ProgressQuery, func() (AuditRetentionResult, error) { return res, nil }); err != nil {
		return res, err
	}
	listCtx := stepOptions(ctx, in.StepAttempts, in.StepTimeout)
	// Pruning a large chain is one deleteMany: give an attempt more time than a usual step.
	pruneCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: max(in.StepTimeout, 10*time.Minute),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: max(in.StepAttempts, DefaultStepAttempts),
		},
	})

	after, done := in.After, 0
	for {
		var page activities.RetentionTargetsPage
		if err := workflow.ExecuteActivity(listCtx, a.ListRetentionTargets, activities.RetentionTargetsInput{After: after, Limit: pageSize}).Get(ctx, &page); err != nil {
			return res, err
		}
		type pending struct {
			tenantID string
			f        workflow.Future
		}
		var running []pending
		for _, t := range page.Targets {
			res.Tenants++
			if t.LegalHold {
				res.Held++
				continue
			}
			cutoff := in.Now.Add(-time.Duration(t.RetentionDays) * 24 * time.Hour)
			running = append(running, pending{t.TenantID, workflow.ExecuteActivity(pruneCtx, a.PruneAudit,
				activities.PruneAuditInput{TenantID: t.TenantID, Cutoff: cutoff, At: in.Now})})
		}
		for _, p := range running {
			var r activities.PruneAuditResult
			err := p.f.Get(ctx, &r)
			switch {
			case err != nil:
				res.FailedCount++
				if len(res.Failed) < maxRetentionReport {
					res.Failed = append(res.Failed, p.tenantID+": "+err.Error())
				}
				workflow.GetLogger(ctx).Error("audit retention failed for a tenant", "tenant_id", p.tenantID, "err", err)
			case r.Broken != nil:
				res.BrokenCount++
				if len(res.Broken) < maxRetentionReport {
					res.Broken = append(res.Broken, fmt.Sprintf("%s: seq %d %s", p.tenantID, r.Broken.Seq, r.Broken.Problem))
				}
			case r.Skipped == "legal hold":
				res.Held++
			case r.Skipped != "":
				res.Skipped++
			}
			if r.Removed > 0 {
				res.Pruned++
				res.Removed += r.Removed
			}
		}
		done += len(page.Targets)
		if !page.More || len(page.Targets) == 0 {
			return res, nil
		}
		after = page.Targets[len(page.Targets)-1].TenantID
		if done >= perRun {
			next := in
			next.After, next.Totals = after, res
			return res, workflow.NewContinueAsNewError(ctx, ApplyAuditRetention, next)
		}
	}
}
