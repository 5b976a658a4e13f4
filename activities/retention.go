package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/misybot/tenancy/internal/domain/audit"
	"github.com/misybot/tenancy/internal/domain/registry"
)

// RetentionTargetsInput asks for one page of tenants for audit retention.
type RetentionTargetsInput struct {
	// After is the last tenant id of the previous page ("" for the first).
	After string
	Limit int
}

// RetentionTargetsPage is one page of tenants whose audit chain is open, with their policy.
type RetentionTargetsPage struct {
	Targets []RetentionTarget
	More    bool
}

// ListRetentionTargets reads one page of active and suspended tenants with their audit
// policy. Read-only, so trivially safe to retry.
func (a *Activities) ListRetentionTargets(ctx context.Context, in RetentionTargetsInput) (RetentionTargetsPage, error) {
	limit := in.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	targets, more, err := a.Registry.RetentionTargets(ctx, in.After, limit)
	if err != nil {
		return RetentionTargetsPage{}, err
	}
	return RetentionTargetsPage{Targets: retentionTargets(targets), More: more}, nil
}

// PruneAuditInput asks to apply retention to one tenant's audit chain.
type PruneAuditInput struct {
	TenantID string
	// Cutoff is the workflow's time minus the tenant's retention when the tenant was listed:
	// only events older than it may go.
	Cutoff time.Time
	// At is the workflow's time, recorded in the checkpoint.
	At time.Time
}

// PruneAuditResult says what retention did to one tenant's chain.
type PruneAuditResult struct {
	Removed       int64
	CheckpointSeq int64
	// Skipped says why nothing was looked at: legal hold, tenant not open, no database.
	Skipped string `json:",omitempty"`
	// Broken is the first broken link of the part to cut; nothing was deleted.
	Broken *AuditBreak `json:",omitempty"`
}

// AuditDetails puts the counts into the step's audit event (see NewAuditInterceptor).
func (r PruneAuditResult) AuditDetails() map[string]string {
	d := map[string]string{"removed": strconv.FormatInt(r.Removed, 10), "checkpointSeq": strconv.FormatInt(r.CheckpointSeq, 10)}
	if r.Skipped != "" {
		d["skipped"] = r.Skipped
	}
	if r.Broken != nil {
		d["brokenSeq"], d["brokenProblem"] = strconv.FormatInt(r.Broken.Seq, 10), r.Broken.Problem
	}
	return d
}

// PruneAudit removes a tenant's audit events older than its retention period, behind a signed
// checkpoint (audit.Chain.Prune). The policy is read again here, right before deleting, so a
// legal hold set (or a retention lengthened) after the workflow listed the tenant still
// applies: the cutoff used is the earlier of the workflow's and the one from the current
// policy, which only ever deletes less.
//
// Idempotent: Prune's checkpoint id is the last seq it removes and deleting what is already
// gone deletes nothing, so a retry, or a run killed between checkpoint and deletion, finishes
// the same cut. A chain whose part to cut does not verify is left untouched and reported
// (Broken), not failed: retrying would not fix it, and the other tenants must go on.
func (a *Activities) PruneAudit(ctx context.Context, in PruneAuditInput) (PruneAuditResult, error) {
	tctx, err := scoped(ctx, in.TenantID)
	if err != nil {
		return PruneAuditResult{}, err
	}
	t, err := a.Registry.Get(ctx, in.TenantID)
	if errors.Is(err, registry.ErrNotFound) {
		return PruneAuditResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeTenantNotFound, err)
	}
	if err != nil {
		return PruneAuditResult{}, err
	}
	if !audit.ChainOpen(t.Status) {
		return PruneAuditResult{Skipped: "tenant is " + string(t.Status)}, nil
	}
	policy, err := a.Registry.AuditPolicy(ctx, in.TenantID)
	if err != nil {
		return PruneAuditResult{}, err
	}
	if policy.LegalHold {
		return PruneAuditResult{Skipped: "legal hold"}, nil
	}
	cutoff := in.Cutoff
	if fresh := in.At.Add(-time.Duration(policy.RetentionDays) * 24 * time.Hour); fresh.Before(cutoff) {
		cutoff = fresh
	}
	// Reading a database that does not exist would create nothing, but say so plainly.
	exists, err := a.Mongo.Exists(tctx)
	if err != nil {
		return PruneAuditResult{}, err
	}
	if !exists {
		return PruneAuditResult{Skipped: "no database"}, nil
	}
	chain, err := a.Audit.TenantChain(tctx)
	if err != nil {
		return PruneAuditResult{}, err
	}
	res, err := chain.Prune(ctx, cutoff, in.At)
	if err != nil {
		return PruneAuditResult{}, fmt.Errorf("prune audit of %s: %w", in.TenantID, err)
	}
	out := PruneAuditResult{Removed: res.Removed, Broken: auditBreak(res.Broken)}
	if res.Checkpoint != nil {
		out.CheckpointSeq = res.Checkpoint.Seq
	}
	log := activity.GetLogger(ctx)
	if res.Broken != nil {
		log.Error("audit chain does not verify; retention left it untouched", "tenant_id", in.TenantID,
			"seq", res.Broken.Seq, "problem", res.Broken.Problem)
	} else if res.Removed > 0 {
		log.Info("audit retention applied", "tenant_id", in.TenantID, "removed", res.Removed, "checkpoint_seq", out.CheckpointSeq)
	}
	return out, nil
}
