package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/misybot/tenancy/activities"
)

// MasterKeyRotationID is the id of the master key rotation: one at a time for the platform.
const MasterKeyRotationID = "master-key-rotation"

// rewrapPage is how many tenants a rotation lists at a time, and rewrapsPerRun how many it
// re-wraps before it continues as new (bounding its history whatever the number of tenants).
const (
	rewrapPage     = 100
	rewrapsPerRun  = 500
	rewrapParallel = 4
)

// RotateMasterKeyInput starts (or continues) a master key rotation.
type RotateMasterKeyInput struct {
	RequestedBy string
	// Version is the master key version to end under; 0: the worker's current one.
	Version int
	// Tenants, when set, limits the rotation to these tenants (a partial run); empty: every
	// tenant that still holds keys.
	Tenants []string
	// After, Done, DataKeys and Secrets carry the position and counts across continue-as-new.
	After    string
	Done     int
	DataKeys int
	Secrets  int
	// StepAttempts and StepTimeout as for every lifecycle workflow.
	StepAttempts int32
	StepTimeout  time.Duration
}

// RotateMasterKeyResult counts what the rotation re-wrapped.
type RotateMasterKeyResult struct {
	Version  int
	Tenants  int
	DataKeys int
	Secrets  int
	// Cells counts the cells whose store addresses were re-sealed (runs started before
	// resealCellStoresChange re-seal none).
	Cells int
}

// resealCellStoresChange is the GetVersion change id of the step that re-seals the cells' store
// addresses after the tenants: runs started before it replay without the step.
const resealCellStoresChange = "reseal-cell-stores"

// RotateMasterKey re-wraps every tenant's data keys and re-seals its secrets under the current
// master key version (start it once every worker and API process runs with the new
// TENANT_MASTER_KEY and the old one in TENANT_MASTER_KEY_PREVIOUS), then re-seals every cell's
// store addresses. Data keys do not change, so no data is re-encrypted. Resumable: it pages
// through tenants by id and continues as new every rewrapsPerRun tenants; each re-wrap and the
// re-seal are idempotent. Audited per tenant (step events) and once at the end, in the
// platform chain.
func RotateMasterKey(ctx workflow.Context, in RotateMasterKeyInput) (RotateMasterKeyResult, error) {
	r, err := newRun(ctx, "rotate-master-key", "", in.StepAttempts, in.StepTimeout)
	if err != nil {
		return RotateMasterKeyResult{}, err
	}
	r.progress.RequestedBy = in.RequestedBy
	sctx := r.ctx // with the step options
	if in.Version == 0 {
		var v activities.MasterKeyVersionResult
		if err := workflow.ExecuteActivity(sctx, a.MasterKeyVersion).Get(ctx, &v); err != nil {
			return RotateMasterKeyResult{}, err
		}
		in.Version = v.Version
	}
	res := RotateMasterKeyResult{Version: in.Version, Tenants: in.Done, DataKeys: in.DataKeys, Secrets: in.Secrets}
	thisRun := 0
	for {
		var page activities.TenantIDs
		if len(in.Tenants) > 0 {
			page = pageOf(in.Tenants, in.After, rewrapPage)
		} else if err := workflow.ExecuteActivity(sctx, a.ListRewrapTargets, activities.TenantPage{After: in.After, Limit: rewrapPage}).Get(ctx, &page); err != nil {
			return res, err
		}
		if len(page.IDs) > 0 {
			if err := r.step(fmt.Sprintf("rewrap after %q", in.After), func(ctx workflow.Context) error {
				// Counted only once the whole page is done: an operator's retry of a parked
				// page runs it again from its start.
				var pageRes RotateMasterKeyResult
				if err := rewrapAll(ctx, page.IDs, in.Version, &pageRes); err != nil {
					return err
				}
				res.Tenants, res.DataKeys, res.Secrets = res.Tenants+pageRes.Tenants, res.DataKeys+pageRes.DataKeys, res.Secrets+pageRes.Secrets
				return nil
			}); err != nil {
				r.progress.State = StateFailed
				return res, err
			}
			in.After = page.IDs[len(page.IDs)-1]
			thisRun += len(page.IDs)
		}
		if !page.More {
			break
		}
		if thisRun >= rewrapsPerRun {
			in.Done, in.DataKeys, in.Secrets = res.Tenants, res.DataKeys, res.Secrets
			return res, workflow.NewContinueAsNewError(ctx, RotateMasterKey, in)
		}
	}
	// The cells' store addresses are sealed under the master key too: without this step they
	// would stop opening, and every tenant on those cells with them, once the previous key goes.
	resealCells := workflow.GetVersion(ctx, resealCellStoresChange, workflow.DefaultVersion, 1) >= 1
	if resealCells {
		if err := r.step("reseal cells", func(ctx workflow.Context) error {
			var rc activities.ResealCellsResult
			if err := workflow.ExecuteActivity(ctx, a.ResealCellStores, activities.ResealCellsInput{Version: in.Version}).Get(ctx, &rc); err != nil {
				return err
			}
			res.Cells = rc.Cells
			return nil
		}); err != nil {
			r.progress.State = StateFailed
			return res, err
		}
	}
	info := workflow.GetInfo(ctx)
	if err := r.step("audit", func(ctx workflow.Context) error {
		ev := r.event("", "platform.master-key.rotate", operator(in.RequestedBy), activities.OutcomeSuccess, "")
		// One event per rotation to a version, across the run's continue-as-new chain.
		ev.ID, ev.Resource = fmt.Sprintf("%s/v%d/%s/done", info.WorkflowExecution.ID, in.Version, info.OriginalRunID), "platform"
		ev.Details = map[string]string{"version": fmt.Sprint(in.Version), "tenants": fmt.Sprint(res.Tenants),
			"dataKeysRewrapped": fmt.Sprint(res.DataKeys), "secretsResealed": fmt.Sprint(res.Secrets)}
		if resealCells {
			ev.Details["cellStoresResealed"] = fmt.Sprint(res.Cells)
		}
		return record(ctx, activities.AuditInput{Event: ev, Platform: true})
	}); err != nil {
		r.progress.State = StateFailed
		return res, err
	}
	r.progress.State = StateCompleted
	return res, nil
}

// rewrapAll re-wraps the tenants of one page, rewrapParallel at a time, and adds to res.
func rewrapAll(ctx workflow.Context, ids []string, version int, res *RotateMasterKeyResult) error {
	for start := 0; start < len(ids); start += rewrapParallel {
		batch := ids[start:min(start+rewrapParallel, len(ids))]
		futures := make([]workflow.Future, len(batch))
		for i, id := range batch {
			futures[i] = workflow.ExecuteActivity(ctx, a.RewrapTenantKeys, activities.RewrapInput{TenantID: id, Version: version})
		}
		for _, f := range futures {
			var rr activities.RewrapResult
			if err := f.Get(ctx, &rr); err != nil {
				return err
			}
			res.Tenants++
			res.DataKeys += rr.DataKeys
			if rr.Secret {
				res.Secrets++
			}
		}
	}
	return nil
}

// pageOf pages through an explicit, sorted-as-given tenant list.
func pageOf(ids []string, after string, limit int) activities.TenantIDs {
	start := 0
	if after != "" {
		for i, id := range ids {
			if id == after {
				start = i + 1
				break
			}
		}
	}
	end := min(start+limit, len(ids))
	return activities.TenantIDs{IDs: ids[start:end], More: end < len(ids)}
}
